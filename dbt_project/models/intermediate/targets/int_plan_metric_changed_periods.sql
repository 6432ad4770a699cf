-- The reopened buckets whose plan-metric deltas this build changed, and the first day they changed:
-- fct_plan_metric_values recomputes from that day (macros/engine_changed_periods.sql).
{{ engine_changed_periods(ref('int_plan_metric_delta_changes')) }}
