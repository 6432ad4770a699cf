{{ config(
    materialized='incremental',
    incremental_strategy='append',
    indexes=[{'columns': ['dossier_code']}],
    pre_hook="{{ engine_prepare_incremental() }}"
) }}
-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_engine_changes') }}
-- Every (receiving unit, reception day) each dossier has had in any build of the engine: where its
-- contributions were counted. int_engine_changes reads it (by relation, before this build adds to it)
-- to re-open a changed dossier's former cohort as well as its new one. Only ever grows, so a build that
-- fails half way loses nothing (docs/engine-incremental.md).
with dossiers as (

    select dossier_code, unit_code, received_date as cohort_date
    from {{ ref('fct_dossiers') }}
    where received_date is not null and unit_code is not null
    {% if engine_is_incremental() %}
      and dossier_code in (select item_code from {{ ref('int_engine_changes') }} where source_kind = 'dossier')
    {% endif %}

)

select distinct dossier_code, unit_code, cohort_date
from dossiers
{% if engine_is_incremental() %}
where not exists (
    select 1 from {{ this }} as known
    where known.dossier_code = dossiers.dossier_code and known.unit_code = dossiers.unit_code
      and known.cohort_date = dossiers.cohort_date)
{% endif %}
