{{ config(
    materialized='incremental',
    incremental_strategy='append',
    indexes=[{'columns': ['unit_code', 'period_type', 'period_start']}],
    pre_hook="{{ engine_prepare_incremental('periods') }}"
) }}
-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_engine_reopened_periods') }}
-- depends_on: {{ ref('int_plan_metric_previous_procedure_events') }}
-- The procedure-level plan metrics as events per reporting unit and period: distinct procedures, so
-- counted per reporting unit and period rather than summed from members. A procedure enters the
-- denominator on the first day it has a dossier in the period and the numerator on the first day it
-- meets the condition.
-- Incremental (docs/engine-incremental.md): a nightly build deletes and recomputes only the reopened
-- buckets (int_engine_reopened_periods), from all of their dossiers (a distinct count cannot be patched
-- by one dossier); int_plan_metric_delta_changes turns them into changes of int_plan_metric_deltas.
{% set incremental = engine_is_incremental() %}
with {% if incremental %}reopened as materialized (

    select unit_code, period_type, period_start from {{ ref('int_engine_reopened_periods') }}

),

{% endif %}routes as (

    select member_unit_code, reporting_unit_code, window_from, window_to from {{ ref('int_unit_lineage') }}

),

-- Many dossiers share a unit, a procedure and a received day; what counts is whether any of them
-- qualified the procedure that day. Collapsing them first gives the same first days from a fraction of
-- the rows (a unit's procedures × days rather than its dossiers) before routes and periods multiply them.
procedure_days as (

    -- Dossiers of procedures eligible for online service, per member unit, procedure and received day.
    select
        dossiers.unit_code,
        dossiers.procedure_code,
        dossiers.received_date,
        bool_or(dossiers.is_online)                                                     as any_online,
        bool_or(dossiers.is_full_online_eligible)                                       as any_eligible,
        bool_or(dossiers.is_full_online_eligible and dossiers.online_level = 'TOAN_TRINH') as any_full_online
    from {{ ref('fct_dossiers') }} as dossiers
    where dossiers.is_received and dossiers.received_date is not null and dossiers.procedure_code is not null
      and (dossiers.is_full_online_eligible or dossiers.online_level in ('TOAN_TRINH', 'MOT_PHAN'))
    {% if incremental %}
      -- Only the members of reopened units, received in or after the earliest reopened period.
      and dossiers.unit_code in (select routes.member_unit_code from routes
                                 where routes.reporting_unit_code in (select unit_code from reopened))
      and dossiers.received_date >= (select min(period_start) from reopened)
    {% endif %}
    group by 1, 2, 3

),

procedure_dossiers as (

    -- The same per reporting unit and period.
    select
        routes.reporting_unit_code                                              as unit_code,
        periods.period_type,
        {{ period_start('periods.period_type', 'procedure_days.received_date') }} as period_start,
        procedure_days.procedure_code,
        greatest(procedure_days.received_date, routes.window_from)              as effective_date,
        procedure_days.any_online,
        procedure_days.any_eligible,
        procedure_days.any_full_online
    from procedure_days
    inner join routes on routes.member_unit_code = procedure_days.unit_code
    cross join {{ period_types_relation() }} as periods
    where (routes.window_to is null or greatest(procedure_days.received_date, routes.window_from) <= routes.window_to)
    {% if incremental %}
      and (routes.reporting_unit_code, periods.period_type,
           {{ period_start('periods.period_type', 'procedure_days.received_date') }}) in (select * from reopened)
    {% endif %}

),

procedure_firsts as (

    select
        unit_code, period_type, period_start, procedure_code,
        min(effective_date)                                                 as first_dossier_day,
        min(effective_date) filter (where any_online)                       as first_online_day,
        min(effective_date) filter (where any_eligible)                     as first_eligible_day,
        min(effective_date) filter (where any_full_online)                  as first_full_online_day
    from procedure_dossiers
    group by unit_code, period_type, period_start, procedure_code

),

events as (

    select unit_code, period_type, period_start, 'ELIGIBLE_PROCEDURES_RECEIVED_ONLINE' as metric_code,
           first_dossier_day as event_date, 0 as numerator_delta, 1 as denominator_delta
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
from events
group by unit_code, period_type, period_start, metric_code, event_date
