-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_engine_reopened_periods') }}
-- The procedure-level plan-metric events of the reopened buckets as the previous build stored them, kept
-- before int_plan_procedure_metric_events recomputes those buckets: int_plan_metric_delta_changes
-- subtracts them (macros/engine_changed_periods.sql). Empty on a complete rebuild.
{{ engine_previous_rows('int_plan_procedure_metric_events', 'periods',
    {'unit_code': 'text', 'period_type': 'text', 'period_start': 'date', 'metric_code': 'text',
     'event_date': 'date', 'numerator_delta': 'numeric', 'denominator_delta': 'numeric'}) }}
