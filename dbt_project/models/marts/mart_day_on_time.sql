{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['business_date', 'unit_code'],
    indexes=[{'columns': ['business_date', 'unit_code'], 'unique': true}],
    pre_hook="{{ engine_prepare_incremental('keys', changes=ref('int_day_on_time_changed_days'),
                                            key_columns=['business_date']) }}"
) }}
-- depends_on: {{ ref('int_engine_run') }}
-- The day's on-time figure of the nightly e-mail (seed report_day_measures, DAY_ON_TIME): per business
-- date and reporting unit, the dossiers that ended that day (on time or not) and those that became
-- overdue that day while still open. ON_TIME's own day value counts the day's received dossiers, open
-- ones not yet due as on time, and so read 100 everywhere.
--
-- Incremental, on the engine's change set (docs/engine-incremental.md): a night recounts exactly the
-- business dates int_day_on_time_changed_days lists (the dates loaded since the last build, and the days
-- the night's changed dossiers ended or fell overdue on, before and after the change), whole: the
-- pre-hook deletes them first, so a unit left with no dossier on such a day loses its row. The dossiers of
-- a day are found through fct_dossiers' indexes on ended_date and overdue_from_date, so the cost follows
-- the days recounted, not the history.
with days as (

    {% if engine_is_incremental() %}
    select business_date from {{ ref('int_day_on_time_changed_days') }}
    {% else %}
    {{ business_days() | replace('as_of_date', 'business_date') }}
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
