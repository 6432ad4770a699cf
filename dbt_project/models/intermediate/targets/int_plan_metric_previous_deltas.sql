-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_engine_reopened_periods') }}
-- The plan-metric deltas the previous build had stored for the buckets this build reopens, kept before
-- int_plan_metric_deltas recomputes them (macros/engine_changed_periods.sql).
{{ engine_previous_deltas('int_plan_metric_deltas', 'metric_code') }}
