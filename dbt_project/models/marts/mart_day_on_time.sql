{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['business_date', 'unit_code'],
    indexes=[{'columns': ['business_date', 'unit_code'], 'unique': true}],
    meta={'engine_table': false}
) }}
-- The day's on-time figure of the nightly e-mail (seed report_day_measures, DAY_ON_TIME): per business
-- date and reporting unit, the dossiers that ended that day (on time or not) and those that became
-- overdue that day while still open. ON_TIME's own day value counts the day's received dossiers, open
-- ones not yet due as on time, and so read 100 everywhere.
--
-- Incremental: a night builds the business dates not built yet and rebuilds the last built week, so a
-- dossier whose end or due date is restated within a week is counted again on its day.
with business_days as (

    {{ business_days() }}

),

days as (

    select as_of_date as business_date from business_days
    {% if is_incremental() %}
    where as_of_date > coalesce((select max(business_date) from {{ this }}), date '1900-01-01') - 7
    {% endif %}

),

decided as (

    -- Ended on the day: on time or late.
    select dossiers.unit_code, dossiers.ended_date as business_date,
           case when dossiers.is_ended_on_time then 1 else 0 end as on_time
    from {{ ref('fct_dossiers') }} as dossiers
    inner join days on days.business_date = dossiers.ended_date
    where dossiers.is_received

    union all

    -- Became overdue on the day and still open at its end: late on that day.
    select dossiers.unit_code, dossiers.overdue_from_date, 0
    from {{ ref('fct_dossiers') }} as dossiers
    inner join days on days.business_date = dossiers.overdue_from_date
    where dossiers.is_received
      and (dossiers.ended_date is null or dossiers.ended_date > dossiers.overdue_from_date)

)

select
    decided.business_date,
    lineage.reporting_unit_code                                             as unit_code,
    'DAY_ON_TIME'::text                                                     as measure_code,
    sum(decided.on_time)::integer                                           as numerator,
    count(*)::integer                                                       as denominator,
    round(100.0 * sum(decided.on_time) / count(*), 2)                       as rate
from decided
inner join {{ ref('int_unit_lineage') }} as lineage
    on lineage.member_unit_code = decided.unit_code
   and decided.business_date >= lineage.window_from
   and (lineage.window_to is null or decided.business_date <= lineage.window_to)
group by 1, 2
