-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_engine_changes') }}
-- The plan-metric events of the changed (unit, cohort day) pairs as the previous build stored them, kept
-- before int_plan_metric_events replaces them: int_plan_metric_delta_changes subtracts them
-- (macros/engine_changed_periods.sql). Empty on a complete rebuild.
{{ engine_previous_rows('int_plan_metric_events', 'cohorts',
    {'unit_code': 'text', 'cohort_date': 'date', 'metric_code': 'text', 'event_date': 'date',
     'numerator_delta': 'numeric', 'denominator_delta': 'numeric'},
    kinds=['dossier', 'rating']) }}
