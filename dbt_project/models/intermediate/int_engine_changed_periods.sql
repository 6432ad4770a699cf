-- The reopened buckets and sub-indicators whose deltas this build changed, and the first day they changed:
-- fct_indicator_values recomputes each changed sub-indicator of a bucket from that day, and
-- fct_unit_scores the slices from the bucket's first one (macros/engine_changed_periods.sql).
{{ engine_changed_periods(ref('int_indicator_delta_changes'), measure='indicator_code') }}
