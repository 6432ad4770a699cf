-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_engine_reopened_periods') }}
-- The deltas the previous build had stored for the buckets this build reopens, kept before
-- int_indicator_deltas recomputes them, so that int_engine_changed_periods can find the first day whose
-- deltas really changed (macros/engine_changed_periods.sql).
{{ engine_previous_deltas('int_indicator_deltas', 'indicator_code') }}
