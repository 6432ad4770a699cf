{{ config(materialized='view') }}
-- The procedure-level plan metrics as events per reporting unit and period: distinct procedures, so
-- counted per reporting unit and period rather than summed from members. A procedure enters the
-- denominator on the first day it has a dossier of the kind in the period and the numerator on the first
-- day it meets the condition (int_plan_procedure_first_days; macros/procedure_indicators.sql). Read whole
-- only by a complete build of int_plan_metric_deltas; a nightly build takes the change of these events
-- from int_plan_procedure_first_day_changes instead.
select reporting_unit_code as unit_code, period_type, period_start, measure_code as metric_code, event_date,
       numerator_delta, denominator_delta
from ({{ procedure_first_day_events(ref('int_plan_procedure_first_days'), 'first_', plan_procedure_metric_sides(),
                                    delta_type='numeric') }}) as events
