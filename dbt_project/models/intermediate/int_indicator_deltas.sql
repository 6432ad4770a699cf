{{ config(
    materialized='incremental',
    incremental_strategy='additive',
    unique_key=['unit_code', 'period_type', 'period_start', 'indicator_code', 'event_date'],
    indexes=[{'columns': ['unit_code', 'period_type', 'period_start', 'indicator_code', 'event_date']}],
    pre_hook="{{ engine_prepare_incremental() }}"
) }}
-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_indicator_delta_changes') }}
-- Every change to every reporting unit's indicator counts, per period: on event_date the numerator
-- and the denominator of (unit, period type, period start, indicator) move by the deltas. A value as
-- of day E is the running sum of its period's deltas up to E (fct_indicator_values), so a nightly
-- build adds one day's sums instead of recounting the year.
--
-- Sources:
--   * dossier and PAKN events of member units, pooled into every reporting unit of int_unit_lineage;
--   * publication events of a province, inherited by every unit of that province;
--   * procedure events, already per reporting unit and period (distinct counts).
-- A member counts for a reporting unit only while their lineage window holds: its deltas take
-- effect no earlier than the window's first day, and if the window ends, a cancelling delta the day
-- after removes what it had contributed (macros/engine_changed_periods.sql, engine_routed_deltas).
--
-- Incremental (docs/engine-incremental.md): a nightly build adds to the stored rows the change that
-- int_indicator_delta_changes computed from the changed items alone (strategy `additive`).
{% if engine_is_incremental() %}
select * from {{ ref('int_indicator_delta_changes') }}
{% else %}
with member_events as (

    select * from {{ ref('int_dossier_indicator_events') }}
    union all
    select * from {{ ref('int_feedback_indicator_events') }}

),

procedure_events as (

    select reporting_unit_code as unit_code, period_type, period_start, indicator_code, event_date,
           numerator_delta, denominator_delta
    from {{ ref('int_procedure_indicator_events') }}

),

{{ engine_routed_deltas('indicator_code', 'member_events', ref('int_publication_indicator_events'),
                        'procedure_events', 'bigint') }}
{% endif %}
