{{ config(
    materialized='incremental',
    incremental_strategy='append',
    indexes=[{'columns': ['unit_code', 'cohort_date']}],
    pre_hook="{{ engine_prepare_incremental('cohorts', 'dossier') }}"
) }}
-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_engine_changes') }}
-- depends_on: {{ ref('int_engine_previous_events') }}
-- Dossier-based sub-indicator events per receiving unit, reception day and effective day: the
-- contributions of fct_dossier_indicator_contributions summed (see there for the rules).
-- Incremental (docs/engine-incremental.md): a nightly build deletes and recomputes only the (unit,
-- reception day) cohorts of the dossiers changed since the last build (int_engine_changes).
select
    unit_code,
    cohort_date,
    indicator_code,
    event_date,
    sum(numerator_delta)::bigint   as numerator_delta,
    sum(denominator_delta)::bigint as denominator_delta
from {{ ref('fct_dossier_indicator_contributions') }}
{% if engine_is_incremental() %}
where (unit_code, cohort_date) in (
    select unit_code, cohort_date from {{ ref('int_engine_changes') }} where source_kind = 'dossier')
{% endif %}
group by unit_code, cohort_date, indicator_code, event_date
