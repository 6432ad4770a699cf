{{ config(
    materialized='incremental',
    incremental_strategy='append',
    indexes=[{'columns': ['unit_code', 'cohort_date']}],
    pre_hook="{{ engine_prepare_incremental('cohorts', ['dossier', 'rating']) }}"
) }}
-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_engine_changes') }}
-- depends_on: {{ ref('int_plan_metric_previous_events') }}
-- Dated changes to the numerators and denominators of the dossier- and rating-level plan metrics
-- (plan_metric_registry, population dossier or rating), per member unit and cohort day: the same shape
-- as the 766 engine's events, so that a value over any period (calendar, campaign window, trailing days)
-- as of any day is a sum of deltas. Numerators of averages are sums (minutes, days), hence numeric.
-- Procedure-level metrics are distinct counts and are computed per reporting unit and period in
-- int_plan_metric_deltas; PROCESSING_TIME_REDUCTION is derived from two averages in fct_plan_metric_values.
-- A dossier's events belong to its reception day, a rating's to the day it was given.
--
-- Incremental (docs/engine-incremental.md): a nightly build deletes and recomputes only the (unit, cohort
-- day) pairs int_engine_changes lists for changed dossiers and their ratings, from fct_dossiers' indexes
-- on (unit, reception day) and (unit, rating day).
{% set incremental = engine_is_incremental() %}
with {% if incremental %}pairs as materialized (

    select distinct unit_code, cohort_date from {{ ref('int_engine_changes') }}
    where source_kind in ('dossier', 'rating')

),

{% endif %}dossiers as (

    select * from {{ ref('fct_dossiers') }}
    where is_received and received_date is not null
    {% if incremental %}
      and (unit_code, received_date) in (select unit_code, cohort_date from pairs)
    {% endif %}

),

rated as (

    -- Online dossiers' latest ratings (fct_dossiers carries them).
    select * from {{ ref('fct_dossiers') }}
    where is_received and received_date is not null and is_online and rated_at is not null
    {% if incremental %}
      and (unit_code, rated_date) in (select unit_code, cohort_date from pairs)
    {% endif %}

),

events as (

    -- Minutes from login to submission, online dossiers with both stamps in order.
    select unit_code, received_date as cohort_date, 'LOGIN_TO_SUBMIT_MINUTES' as metric_code,
           received_date as event_date,
           extract(epoch from submitted_at - logged_in_at) / 60.0 as numerator_delta, 1 as denominator_delta
    from dossiers
    where is_online and logged_in_at is not null and submitted_at is not null and submitted_at >= logged_in_at

    union all

    -- Days from reception to end of processing; a dossier enters the average on the day it ends.
    select unit_code, received_date, case when is_online then 'PROCESSING_DAYS_ONLINE'
                                          else 'PROCESSING_DAYS_DIRECT' end,
           ended_date,
           extract(epoch from ended_at - received_at) / 86400.0, 1
    from dossiers
    where ended_at is not null and ended_at >= received_at
      and (is_online or coalesce(channel_code, 1) = 1)

    union all

    -- Overdue dossiers: the denominator only; apology letters are not in the data (no_data).
    select unit_code, received_date, 'OVERDUE_APOLOGY_SHARE', overdue_from_date, 0, 1
    from dossiers
    where overdue_from_date is not null

    union all

    -- Full-online dossiers among those of procedures eligible for full online service.
    select unit_code, received_date, 'FULL_ONLINE_DOSSIER_SHARE', received_date,
           case when is_online and online_level = 'TOAN_TRINH'
                     and (not coalesce(has_fee, false) or is_paid_online) then 1 else 0 end,
           1
    from dossiers
    where is_full_online_eligible

    union all

    -- Ratings given on the day to online dossiers: RẤT HÀI LÒNG (1) and HÀI LÒNG (2) are satisfied.
    select unit_code, rated_date, 'ONLINE_SERVICE_SATISFACTION', rated_date,
           case when rating_satisfaction_code in (1, 2) then 1 else 0 end, 1
    from rated

)

select
    unit_code,
    cohort_date,
    metric_code,
    event_date,
    round(sum(numerator_delta)::numeric, 4) as numerator_delta,
    sum(denominator_delta)::numeric         as denominator_delta
from events
group by unit_code, cohort_date, metric_code, event_date
