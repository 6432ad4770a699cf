{{ config(
    materialized='incremental',
    incremental_strategy='append',
    indexes=[{'columns': ['reporting_unit_code', 'period_type', 'period_start', 'procedure_code'], 'unique': true}],
    pre_hook="{{ engine_prepare_incremental('keys', changes=ref('int_procedure_first_day_changes'),
                                            key_columns=['reporting_unit_code', 'period_type', 'period_start', 'procedure_code']) }}"
) }}
-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_procedure_first_day_changes') }}
-- Per reporting unit, period and procedure, the first day in the period on which a dossier of the unit
-- (its members' for a parent or successor, int_unit_lineage) had each feature of
-- macros/procedure_indicators.sql; null for a feature never shown in the period. The state from which the
-- procedure-based sub-indicators are counted (int_procedure_indicator_events): distinct counts cannot be
-- patched dossier by dossier, first days can.
-- Incremental (docs/engine-incremental.md): a nightly build replaces the keys whose first days
-- int_procedure_first_day_changes found moved (deleted by the pre-hook, re-inserted unless the procedure
-- left the period altogether).
{% if engine_is_incremental() %}
{{ procedure_first_days_moved(ref('int_procedure_first_day_changes'), procedure_first_day_features()) }}
{% else %}
{{ procedure_first_days_complete(procedure_first_day_features(), windowed=false) }}
{% endif %}
