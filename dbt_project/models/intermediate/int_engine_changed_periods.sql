-- The reopened buckets whose indicator deltas this build changed, and the first day they changed:
-- fct_indicator_values and fct_unit_scores recompute from that day (macros/engine_changed_periods.sql).
{{ engine_changed_periods(ref('int_indicator_delta_changes')) }}
