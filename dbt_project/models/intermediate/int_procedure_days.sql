{{ config(
    materialized='incremental',
    incremental_strategy='append',
    indexes=[{'columns': ['unit_code', 'cohort_date']}, {'columns': ['unit_code', 'procedure_code', 'cohort_date'], 'unique': true}],
    pre_hook="{{ engine_prepare_incremental('cohorts', kind='dossier') }}"
) }}
-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_engine_changes') }}
-- depends_on: {{ ref('int_engine_previous_procedure_days') }}
-- The received dossiers collapsed to one row per (receiving unit, reception day, procedure), with the
-- features any of them showed (macros/procedure_indicators.sql): what the procedure-based sub-indicators
-- and plan metrics count is whether a procedure had a feature on a day, not how many dossiers did. A unit's procedures ×
-- days rather than its dossiers.
-- Incremental (docs/engine-incremental.md): a nightly build deletes and recomputes the (unit, reception
-- day) pairs of the changed dossiers (int_engine_changes), as they were before being kept by
-- int_engine_previous_procedure_days.
with dossiers as (

    select dossiers.*
    from {{ ref('fct_dossiers') }} as dossiers
    {% if engine_is_incremental() %}
    inner join ({{ engine_changed_pairs(['dossier']) }}) as changed
        on changed.unit_code = dossiers.unit_code and changed.cohort_date = dossiers.received_date
    {% endif %}
    where dossiers.is_received
      and dossiers.unit_code is not null
      and dossiers.received_date is not null
      and dossiers.procedure_code is not null

)

select
    unit_code,
    received_date as cohort_date,
    procedure_code,
    {%- set features = procedure_features() %}
    {%- do features.update(plan_procedure_features()) %}
    {%- for feature, expression in features.items() %}
    bool_or({{ expression }}) as {{ feature }}{{ "," if not loop.last }}
    {%- endfor %}
from dossiers
group by 1, 2, 3
