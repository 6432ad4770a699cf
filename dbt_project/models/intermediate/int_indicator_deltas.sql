{{ config(
    materialized='incremental',
    incremental_strategy='append',
    indexes=[{'columns': ['unit_code', 'period_type', 'period_start', 'indicator_code', 'event_date']}],
    pre_hook="{{ engine_prepare_incremental('periods') }}"
) }}
-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_engine_reopened_periods') }}
-- depends_on: {{ ref('int_engine_previous_deltas') }}
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
-- after removes what it had contributed.
--
-- Incremental (docs/engine-incremental.md): a nightly build deletes and recomputes only the (unit,
-- period type, period) buckets of int_engine_reopened_periods, each from all of its events (the
-- window-closing deltas are sums over the bucket).
{% set incremental = engine_is_incremental() %}
with {% if incremental %}reopened as (

    select unit_code, period_type, period_start from {{ ref('int_engine_reopened_periods') }}

),

{% endif %}member_events as (

    select * from {{ ref('int_dossier_indicator_events') }}
    {% if incremental %}where cohort_date >= (select min(period_start) from reopened){% endif %}
    union all
    select * from {{ ref('int_feedback_indicator_events') }}
    {% if incremental %}where cohort_date >= (select min(period_start) from reopened){% endif %}

),

units as (

    select unit_code, unit_kind from {{ ref('dim_units') }}

),

routes as (

    -- member events → reporting unit
    select lineage.member_unit_code as source_unit_code, lineage.reporting_unit_code,
           lineage.window_from, lineage.window_to, 'member' as route_kind
    from {{ ref('int_unit_lineage') }} as lineage

    union all

    -- province publication events → every unit of the province (and the province itself)
    select lineage.reporting_unit_code, lineage.member_unit_code,
           lineage.window_from, lineage.window_to, 'province' as route_kind
    from {{ ref('int_unit_lineage') }} as lineage
    inner join units as province
        on province.unit_code = lineage.reporting_unit_code and province.unit_kind = 'PROVINCE'

),

routed as (

    select
        routes.reporting_unit_code                          as unit_code,
        periods.period_type,
        {{ period_start('periods.period_type', 'events.cohort_date') }} as period_start,
        events.indicator_code,
        greatest(events.event_date, routes.window_from)     as event_date,
        routes.window_to,
        events.numerator_delta,
        events.denominator_delta
    from (
        select *, 'member' as route_kind from member_events
        union all
        select *, 'province' as route_kind from {{ ref('int_publication_indicator_events') }}
    ) as events
    inner join routes
        on routes.source_unit_code = events.unit_code
       and routes.route_kind = events.route_kind
    cross join {{ period_types_relation() }} as periods
    -- What takes effect after the window has closed never counts for this reporting unit.
    where (routes.window_to is null or greatest(events.event_date, routes.window_from) <= routes.window_to)
    {% if incremental %}
      and (routes.reporting_unit_code, periods.period_type,
           {{ period_start('periods.period_type', 'events.cohort_date') }}) in (select * from reopened)
    {% endif %}

),

deltas as (

    select unit_code, period_type, period_start, indicator_code, event_date, numerator_delta, denominator_delta
    from routed

    union all

    -- The day after a window closes, take back what the member had contributed.
    select unit_code, period_type, period_start, indicator_code, window_to + 1,
           -sum(numerator_delta), -sum(denominator_delta)
    from routed
    where window_to is not null
    group by unit_code, period_type, period_start, indicator_code, window_to

    union all

    select reporting_unit_code, period_type, period_start, indicator_code, event_date,
           numerator_delta, denominator_delta
    from {{ ref('int_procedure_indicator_events') }}
    {% if incremental %}
    where (reporting_unit_code, period_type, period_start) in (select * from reopened)
    {% endif %}

)

select
    unit_code,
    period_type,
    period_start,
    indicator_code,
    event_date,
    sum(numerator_delta)::bigint   as numerator_delta,
    sum(denominator_delta)::bigint as denominator_delta
from deltas
group by unit_code, period_type, period_start, indicator_code, event_date
having sum(numerator_delta) <> 0 or sum(denominator_delta) <> 0
