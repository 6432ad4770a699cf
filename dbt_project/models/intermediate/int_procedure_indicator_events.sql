{{ config(materialized='view') }}
-- The procedure-based sub-indicators (macros/procedure_indicators.sql) as events per reporting unit and
-- period: a procedure enters a side of a sub-indicator on its first day with the feature that side
-- counts (int_procedure_first_days). Read whole only by a complete build of int_indicator_deltas; a
-- nightly build takes the change of these events from int_procedure_first_day_changes instead.
select reporting_unit_code, period_type, period_start, measure_code as indicator_code, event_date,
       numerator_delta, denominator_delta
from ({{ procedure_first_day_events(ref('int_procedure_first_days'), 'first_', procedure_indicator_sides()) }}) as events
