-- depends_on: {{ ref('int_engine_run') }}
-- How this build changes int_plan_metric_deltas (macros/engine_changed_periods.sql): the plan-metric
-- events of the changed (unit, cohort day) pairs as recomputed now, minus as the previous build stored
-- them (int_plan_metric_previous_events), routed like int_plan_metric_deltas routes all events; plus the
-- reopened buckets' procedure-level events, new minus old. Non-zero changes per delta key, added to
-- int_plan_metric_deltas by its `additive` strategy. Empty on a complete rebuild.
with changed_pairs as (

    {{ engine_changed_pairs(['dossier', 'rating']) }}

),

member_events as (

    select events.*
    from {{ ref('int_plan_metric_events') }} as events
    inner join changed_pairs as pairs
        on pairs.unit_code = events.unit_code and pairs.cohort_date = events.cohort_date

    union all

    select unit_code, cohort_date, metric_code, event_date, -numerator_delta, -denominator_delta
    from {{ ref('int_plan_metric_previous_events') }}

),

procedure_events as (

    select events.*
    from {{ ref('int_plan_procedure_metric_events') }} as events
    inner join {{ ref('int_engine_reopened_periods') }} as reopened
        on reopened.unit_code = events.unit_code
       and reopened.period_type = events.period_type
       and reopened.period_start = events.period_start

    union all

    select unit_code, period_type, period_start, metric_code, event_date, -numerator_delta, -denominator_delta
    from {{ ref('int_plan_metric_previous_procedure_events') }}

),

{{ engine_routed_deltas('metric_code', 'member_events', none, 'procedure_events', 'numeric') }}
