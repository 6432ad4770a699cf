-- The reopened buckets whose indicator deltas this build really changed, and the first day they changed:
-- fct_indicator_values and fct_unit_scores recompute from that day (macros/engine_changed_periods.sql).
{{ engine_changed_periods(ref('int_indicator_deltas'), ref('int_engine_previous_deltas'), 'indicator_code') }}
