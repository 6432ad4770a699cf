-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_engine_reopened_periods') }}
-- The procedure events of the reopened buckets as the previous build stored them, kept before
-- int_procedure_indicator_events recomputes those buckets: int_indicator_delta_changes subtracts them
-- (macros/engine_changed_periods.sql). Empty on a complete rebuild.
{{ engine_previous_rows('int_procedure_indicator_events', 'periods',
    {'reporting_unit_code': 'text', 'period_type': 'text', 'period_start': 'date', 'indicator_code': 'text',
     'event_date': 'date', 'numerator_delta': 'bigint', 'denominator_delta': 'bigint'},
    unit_column='reporting_unit_code') }}
