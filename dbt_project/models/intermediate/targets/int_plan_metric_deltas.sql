{{ config(
    materialized='incremental',
    incremental_strategy='additive',
    unique_key=['unit_code', 'period_type', 'period_start', 'metric_code', 'event_date'],
    indexes=[{'columns': ['unit_code', 'period_type', 'period_start', 'metric_code', 'event_date']}],
    pre_hook="{{ engine_prepare_incremental() }}"
) }}
-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_plan_metric_delta_changes') }}
-- Every change to every reporting unit's plan-metric counts, per period (day, month, quarter, year):
-- the member events of int_plan_metric_events pooled through int_unit_lineage exactly as the 766 engine
-- pools its dossier events (a member counts while its lineage window holds; what it contributed is taken
-- back the day after the window closes), plus the procedure-level metrics of
-- int_plan_procedure_metric_events (distinct procedures per reporting unit and period). Values as of a
-- day are running sums of these deltas (fct_plan_metric_values); a campaign window or trailing days sum
-- the 'day' periods.
--
-- Incremental (docs/engine-incremental.md): like int_indicator_deltas, a nightly build adds to the stored
-- rows the change int_plan_metric_delta_changes computed from the changed items alone (strategy `additive`).
{% if engine_is_incremental() %}
select * from {{ ref('int_plan_metric_delta_changes') }}
{% else %}
with {{ engine_routed_deltas('metric_code', ref('int_plan_metric_events'), none,
                             ref('int_plan_procedure_metric_events'), 'numeric') }}
{% endif %}
