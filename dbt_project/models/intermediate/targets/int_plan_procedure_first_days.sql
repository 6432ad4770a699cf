{{ config(
    materialized='incremental',
    incremental_strategy='append',
    indexes=[{'columns': ['reporting_unit_code', 'period_type', 'period_start', 'procedure_code'], 'unique': true}],
    pre_hook="{{ engine_prepare_incremental('keys', changes=ref('int_plan_procedure_first_day_changes'),
                                            key_columns=['reporting_unit_code', 'period_type', 'period_start', 'procedure_code']) }}"
) }}
-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_plan_procedure_first_day_changes') }}
-- Per reporting unit, period and procedure, the first day in the period on which a dossier of the unit
-- (its members' while their lineage window holds, taking effect no earlier than its first day) had each
-- plan feature of macros/procedure_indicators.sql: a dossier of a procedure eligible for online service,
-- online, eligible, fully online. The state from which int_plan_procedure_metric_events counts
-- procedures. Incremental (docs/engine-incremental.md): a nightly build replaces the keys whose first
-- days int_plan_procedure_first_day_changes found moved.
{% if engine_is_incremental() %}
{{ procedure_first_days_moved(ref('int_plan_procedure_first_day_changes'), plan_procedure_first_day_features()) }}
{% else %}
{{ procedure_first_days_complete(plan_procedure_first_day_features(), windowed=true) }}
{% endif %}
