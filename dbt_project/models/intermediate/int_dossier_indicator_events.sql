{{ config(
    materialized='incremental',
    incremental_strategy='additive',
    unique_key=['unit_code', 'cohort_date', 'indicator_code', 'event_date'],
    indexes=[{'columns': ['unit_code', 'cohort_date', 'indicator_code', 'event_date'], 'unique': true}],
    pre_hook="{{ engine_prepare_incremental() }}"
) }}
-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_dossier_indicator_event_changes') }}
-- Dossier-based sub-indicator events per receiving unit, reception day and effective day: the
-- contributions of fct_dossier_indicator_contributions summed (see macros/dossier_contributions.sql for
-- the rules).
-- Incremental (docs/engine-incremental.md): a nightly build adds to the stored rows the change that
-- int_dossier_indicator_event_changes computed from the changed dossiers alone (their contributions now
-- minus before; strategy `additive`: one MERGE, a key summing to zero is deleted).
{% if engine_is_incremental() %}
select * from {{ ref('int_dossier_indicator_event_changes') }}
{% else %}
select
    unit_code,
    cohort_date,
    indicator_code,
    event_date,
    sum(numerator_delta)::bigint   as numerator_delta,
    sum(denominator_delta)::bigint as denominator_delta
from {{ ref('fct_dossier_indicator_contributions') }}
group by unit_code, cohort_date, indicator_code, event_date
-- As the additive MERGE keeps none (a contribution's denominator is never negative, so only a key
-- without any contribution could sum to zero).
having sum(numerator_delta) <> 0 or sum(denominator_delta) <> 0
{% endif %}
