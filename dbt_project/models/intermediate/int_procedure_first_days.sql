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
{%- set features = procedure_features().keys() | list %}
{% if engine_is_incremental() %}
select
    reporting_unit_code,
    period_type,
    period_start,
    procedure_code,
    {%- for f in procedure_first_day_features() %}
    new_first_{{ f }} as first_{{ f }}{{ "," if not loop.last }}
    {%- endfor %}
from {{ ref('int_procedure_first_day_changes') }}
where new_first_received is not null
{% else %}
select
    lineage.reporting_unit_code,
    periods.period_type,
    {{ period_start('periods.period_type', 'days.cohort_date') }} as period_start,
    days.procedure_code,
    min(days.cohort_date) as first_received,
    {%- for f in features %}
    min(days.cohort_date) filter (where days.{{ f }}) as first_{{ f }}{{ "," if not loop.last }}
    {%- endfor %}
from {{ ref('int_procedure_days') }} as days
inner join {{ ref('int_unit_lineage') }} as lineage on lineage.member_unit_code = days.unit_code
cross join {{ period_types_relation() }} as periods
group by 1, 2, 3, 4
{% endif %}
