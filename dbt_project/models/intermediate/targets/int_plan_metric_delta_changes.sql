-- depends_on: {{ ref('int_engine_run') }}
-- How this build changes int_plan_metric_deltas (macros/engine_changed_periods.sql): the plan-metric
-- events of the changed (unit, cohort day) pairs as recomputed now, minus as the previous build stored
-- them (int_plan_metric_previous_events), routed like int_plan_metric_deltas routes all events; plus the
-- procedure-level events of the first days this build moved (int_plan_procedure_first_day_changes), new
-- minus old. Non-zero changes per delta key, added to
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

    -- The procedures' first days that this build moved: their events now, minus the same events before.
    select reporting_unit_code as unit_code, period_type, period_start, measure_code as metric_code,
           event_date, numerator_delta, denominator_delta
    from ({{ procedure_first_day_events(ref('int_plan_procedure_first_day_changes'), 'new_first_',
                                        plan_procedure_metric_sides(), delta_type='numeric') }}) as now

    union all

    select reporting_unit_code, period_type, period_start, measure_code, event_date,
           numerator_delta, denominator_delta
    from ({{ procedure_first_day_events(ref('int_plan_procedure_first_day_changes'), 'old_first_',
                                        plan_procedure_metric_sides(), sign=-1, delta_type='numeric') }}) as before

),

{{ engine_routed_deltas('metric_code', 'member_events', none, 'procedure_events', 'numeric') }}
