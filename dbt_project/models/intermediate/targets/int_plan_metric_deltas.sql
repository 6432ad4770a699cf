-- depends_on: {{ ref('int_plan_metric_previous_deltas') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    indexes=[{'columns': ['unit_code', 'period_type', 'period_start', 'metric_code', 'event_date']}],
    pre_hook="{{ engine_prepare_incremental('periods') }}"
) }}
-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_engine_reopened_periods') }}
-- Every change to every reporting unit's plan-metric counts, per period (day, month, quarter, year):
-- the member events of int_plan_metric_events pooled through int_unit_lineage exactly as the 766 engine
-- pools its dossier events (a member counts while its lineage window holds; what it contributed is taken
-- back the day after the window closes), plus the procedure-level metrics, counted as distinct procedures
-- per reporting unit and period: a procedure enters the denominator on the first day it has a dossier in
-- the period and the numerator on the first day it meets the condition. Values as of a day are running
-- sums of these deltas (fct_plan_metric_values); a campaign window or trailing days sum the 'day' periods.
--
-- Incremental (docs/engine-incremental.md): like int_indicator_deltas, a nightly build deletes and
-- recomputes only the (unit, period type, period) buckets of int_engine_reopened_periods, whole.
{% set incremental = engine_is_incremental() %}
with {% if incremental %}reopened as materialized (

    select unit_code, period_type, period_start from {{ ref('int_engine_reopened_periods') }}

),

{% endif %}routes as (

    select member_unit_code, reporting_unit_code, window_from, window_to from {{ ref('int_unit_lineage') }}

),

routed as (

    select
        routes.reporting_unit_code                                          as unit_code,
        periods.period_type,
        {{ period_start('periods.period_type', 'events.cohort_date') }}     as period_start,
        events.metric_code,
        greatest(events.event_date, routes.window_from)                     as event_date,
        routes.window_to,
        events.numerator_delta,
        events.denominator_delta
    from {{ ref('int_plan_metric_events') }} as events
    inner join routes on routes.member_unit_code = events.unit_code
    cross join {{ period_types_relation() }} as periods
    where (routes.window_to is null or greatest(events.event_date, routes.window_from) <= routes.window_to)
    {% if incremental %}
      and events.cohort_date >= (select min(period_start) from reopened)
      and (routes.reporting_unit_code, periods.period_type,
           {{ period_start('periods.period_type', 'events.cohort_date') }}) in (select * from reopened)
    {% endif %}

),

procedure_dossiers as (

    -- Dossiers of procedures eligible for online service, per reporting unit and period.
    select
        routes.reporting_unit_code                                          as unit_code,
        periods.period_type,
        {{ period_start('periods.period_type', 'dossiers.received_date') }} as period_start,
        dossiers.procedure_code,
        greatest(dossiers.received_date, routes.window_from)                as effective_date,
        dossiers.is_full_online_eligible,
        dossiers.online_level,
        dossiers.is_online
    from {{ ref('fct_dossiers') }} as dossiers
    inner join routes on routes.member_unit_code = dossiers.unit_code
    cross join {{ period_types_relation() }} as periods
    where dossiers.is_received and dossiers.received_date is not null and dossiers.procedure_code is not null
      and (dossiers.is_full_online_eligible or dossiers.online_level in ('TOAN_TRINH', 'MOT_PHAN'))
      and (routes.window_to is null or greatest(dossiers.received_date, routes.window_from) <= routes.window_to)
    {% if incremental %}
      -- Only the members of reopened units, received in or after the earliest reopened period.
      and routes.reporting_unit_code in (select unit_code from reopened)
      and dossiers.received_date >= (select min(period_start) from reopened)
      and (routes.reporting_unit_code, periods.period_type,
           {{ period_start('periods.period_type', 'dossiers.received_date') }}) in (select * from reopened)
    {% endif %}

),

procedure_firsts as (

    select
        unit_code, period_type, period_start, procedure_code,
        min(effective_date)                                                 as first_dossier_day,
        min(effective_date) filter (where is_online)                        as first_online_day,
        bool_or(is_full_online_eligible)                                    as is_full_online_eligible,
        min(effective_date) filter (where is_full_online_eligible)          as first_eligible_day,
        min(effective_date) filter (where is_full_online_eligible and online_level = 'TOAN_TRINH')
                                                                            as first_full_online_day
    from procedure_dossiers
    group by unit_code, period_type, period_start, procedure_code

),

deltas as (

    select unit_code, period_type, period_start, metric_code, event_date, numerator_delta, denominator_delta
    from routed

    union all

    -- The day after a lineage window closes, take back what the member had contributed.
    select unit_code, period_type, period_start, metric_code, window_to + 1,
           -sum(numerator_delta), -sum(denominator_delta)
    from routed
    where window_to is not null
    group by unit_code, period_type, period_start, metric_code, window_to

    union all

    select unit_code, period_type, period_start, 'ELIGIBLE_PROCEDURES_RECEIVED_ONLINE', first_dossier_day, 0, 1
    from procedure_firsts
    union all
    select unit_code, period_type, period_start, 'ELIGIBLE_PROCEDURES_RECEIVED_ONLINE', first_online_day, 1, 0
    from procedure_firsts where first_online_day is not null

    union all

    select unit_code, period_type, period_start, 'ELIGIBLE_PROCEDURES_FULL_ONLINE', first_eligible_day, 0, 1
    from procedure_firsts where first_eligible_day is not null
    union all
    select unit_code, period_type, period_start, 'ELIGIBLE_PROCEDURES_FULL_ONLINE', first_full_online_day, 1, 0
    from procedure_firsts where first_full_online_day is not null

)

select
    unit_code,
    period_type,
    period_start,
    metric_code,
    event_date,
    sum(numerator_delta)::numeric   as numerator_delta,
    sum(denominator_delta)::numeric as denominator_delta
from deltas
group by unit_code, period_type, period_start, metric_code, event_date
having sum(numerator_delta) <> 0 or sum(denominator_delta) <> 0
