-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_engine_changes') }}
-- The PAKN and publication events of the changed (unit, cohort day) pairs as the previous build stored
-- them, kept before int_feedback_indicator_events and int_publication_indicator_events replace them
-- (dossier events change by their dossiers' difference instead: int_dossier_indicator_event_changes):
-- int_indicator_delta_changes subtracts them (macros/engine_changed_periods.sql). Empty on a complete
-- rebuild.
{% set columns = {'unit_code': 'text', 'cohort_date': 'date', 'indicator_code': 'text', 'event_date': 'date',
                  'numerator_delta': 'bigint', 'denominator_delta': 'bigint'} %}
select 'feedback' as source_kind, previous.*
from ({{ engine_previous_rows('int_feedback_indicator_events', 'cohorts', columns, kinds=['feedback']) }}) as previous
union all
select 'publication', previous.*
from ({{ engine_previous_rows('int_publication_indicator_events', 'cohorts', columns, kinds=['publication']) }}) as previous
