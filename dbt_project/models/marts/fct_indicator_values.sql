{{ config(
    materialized='incremental',
    on_schema_change='append_new_columns',
    incremental_strategy='delete+insert',
    unique_key=['business_date', 'unit_code', 'period_type', 'indicator_code'],
    indexes=[{'columns': ['business_date', 'unit_code', 'period_type', 'indicator_code'], 'unique': true}, {'columns': ['built_at']}],
    pre_hook="{{ engine_prepare_incremental() }}"
) }}
-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_engine_changed_periods') }}
-- Sub-indicator values per business date (as of its end) × unit × period × sub-indicator: numerator,
-- denominator, rate and score under the active rule version. Periods are the day, month, quarter and
-- year containing the business date, each to date (the year is the portal's year-to-date view).
-- Every (day, unit, period, indicator) of the spine has a row, with 0/0 where a unit had nothing,
-- so a missing unit is visible rather than silently absent.
--
-- Incremental (docs/engine-incremental.md): a nightly build computes the rows of the business dates not
-- built yet, and recomputes, for the sub-indicators whose deltas changed in a bucket
-- (int_engine_changed_periods), the rows from their first changed day on; each row is the last stored
-- value of its period before the first recomputed day (its anchor) plus the deltas since, so the cost
-- follows the values that changed, not the history.
-- A complete build (first build, --full-refresh, changed reference data) computes every row at once.
{% set incremental = engine_is_incremental() %}
with business_days as (

    {{ business_days() }}

),

as_of_days as (

    {{ as_of_days() }}

),

units as (

    select unit_code, unit_kind, valid_from, valid_to from {{ ref('dim_units') }}

),

rules as (

    select * from ({{ active_rules() }}) as active

),

{% if incremental %}
new_days as materialized (

    -- Business dates not built yet (the next days, or a day loaded late into a gap).
    select as_of_date from business_days
    where not exists (select 1 from {{ this }} as built where built.business_date = business_days.as_of_date)

),

reopened_days as materialized (

    -- In each reopened bucket, the sub-indicators whose deltas changed, from their first changed day on:
    -- the others' values are running sums of unchanged deltas and stay as stored.
    select reopened.unit_code, reopened.period_type, reopened.period_start, reopened.indicator_code,
           business_days.as_of_date
    from {{ ref('int_engine_changed_periods') }} as reopened
    inner join business_days
        on business_days.as_of_date >= reopened.first_changed_day
       and {{ period_start('reopened.period_type', 'business_days.as_of_date') }} = reopened.period_start

),

indicators as (

    select distinct indicator_code, valid_from, valid_to from rules

),

target_keys as (

    select day.as_of_date, unit.unit_code, periods.period_type, rule.indicator_code
    from new_days as day
    inner join units as unit
        on day.as_of_date >= unit.valid_from
       and (unit.valid_to is null or day.as_of_date <= unit.valid_to)
    cross join {{ period_types_relation() }} as periods
    inner join indicators as rule
        on {{ rule_in_force('rule', 'day.as_of_date') }}

    union

    select reopened_days.as_of_date, reopened_days.unit_code, reopened_days.period_type,
           reopened_days.indicator_code
    from reopened_days
    inner join units as unit
        on unit.unit_code = reopened_days.unit_code
       and reopened_days.as_of_date >= unit.valid_from
       and (unit.valid_to is null or reopened_days.as_of_date <= unit.valid_to)

),

targets as materialized (

    -- The rows to (re)compute, each with the first day of its partition in the full spine.
    select
        target_keys.as_of_date,
        target_keys.unit_code,
        target_keys.period_type,
        {{ period_start('target_keys.period_type', 'target_keys.as_of_date') }} as period_start,
        rule.indicator_code,
        greatest({{ period_start('target_keys.period_type', 'target_keys.as_of_date') }},
                 (select min(as_of_date) from as_of_days), unit.valid_from, rule.valid_from) as first_spine_day
    from target_keys
    inner join units as unit using (unit_code)
    inner join indicators as rule
        on rule.indicator_code = target_keys.indicator_code
       and {{ rule_in_force('rule', 'target_keys.as_of_date') }}

),

partitions as materialized (

    select unit_code, period_type, period_start, indicator_code,
           min(as_of_date) as first_target, min(first_spine_day) as first_spine_day
    from targets
    group by 1, 2, 3, 4

),

anchor_days as materialized (

    -- The last built business date before each first target day.
    select first_target,
           (select max(built.business_date) from {{ this }} as built
            where built.business_date < firsts.first_target) as anchor_date
    from (select distinct first_target from partitions) as firsts

),

anchored as materialized (

    -- Values run from the anchor (same period, built before the first target) or, without one, from
    -- the partition's first spine day.
    select
        partitions.*,
        coalesce(anchor.numerator, 0)                                   as base_numerator,
        coalesce(anchor.denominator, 0)                                 as base_denominator,
        coalesce(anchor.business_date, partitions.first_spine_day - 1)  as after_day
    from partitions
    inner join anchor_days using (first_target)
    left join {{ this }} as anchor
        on anchor.business_date = anchor_days.anchor_date
       and anchor.business_date >= partitions.first_spine_day
       and anchor.unit_code = partitions.unit_code
       and anchor.period_type = partitions.period_type
       and anchor.indicator_code = partitions.indicator_code
       and anchor.period_start = partitions.period_start

),

stream as (

    select unit_code, period_type, period_start, indicator_code, as_of_date as day, 1 as is_target,
           0::bigint as numerator_delta, 0::bigint as denominator_delta
    from targets

    union all

    -- The anchor's value as one delta on its day (0 without an anchor)...
    select unit_code, period_type, period_start, indicator_code, after_day, 0,
           base_numerator, base_denominator
    from anchored

    union all

    -- ... then the deltas since. Deltas dated before the first as-of day take effect on it (as in a
    -- complete build).
    select deltas.unit_code, deltas.period_type, deltas.period_start, deltas.indicator_code,
           greatest(deltas.event_date, (select min(as_of_date) from as_of_days)), 0,
           deltas.numerator_delta, deltas.denominator_delta
    from {{ ref('int_indicator_deltas') }} as deltas
    inner join anchored
        on anchored.unit_code = deltas.unit_code
       and anchored.period_type = deltas.period_type
       and anchored.period_start = deltas.period_start
       and anchored.indicator_code = deltas.indicator_code
    where greatest(deltas.event_date, (select min(as_of_date) from as_of_days)) > anchored.after_day
      and deltas.event_date <= (select max(as_of_date) from as_of_days)

),

running as materialized (

    select
        stream.*,
        sum(numerator_delta) over so_far   as numerator,
        sum(denominator_delta) over so_far as denominator
    from stream
    window so_far as (
        partition by unit_code, period_type, period_start, indicator_code
        order by day, is_target rows between unbounded preceding and current row)

),

valued as (

    select
        day                                           as as_of_date,
        unit_code,
        period_type,
        period_start,
        indicator_code,
        numerator,
        denominator,
        {{ indicator_ratio('numerator', 'denominator') }} as ratio
    from running
    where is_target = 1

)

{% else %}
spine as (

    select
        day.as_of_date,
        unit.unit_code,
        periods.period_type,
        {{ period_start('periods.period_type', 'day.as_of_date') }} as period_start,
        rule.indicator_code
    from as_of_days as day
    inner join units as unit
        on day.as_of_date >= unit.valid_from
       and (unit.valid_to is null or day.as_of_date <= unit.valid_to)
    cross join {{ period_types_relation() }} as periods
    inner join (select distinct indicator_code, valid_from, valid_to from rules) as rule
        on {{ rule_in_force('rule', 'day.as_of_date') }}

),

deltas as (

    -- Deltas dated before the first as-of day take effect on it (the period's earlier days).
    select
        unit_code, period_type, period_start, indicator_code,
        greatest(event_date, (select min(as_of_date) from as_of_days)) as event_date,
        sum(numerator_delta)   as numerator_delta,
        sum(denominator_delta) as denominator_delta
    from {{ ref('int_indicator_deltas') }}
    group by 1, 2, 3, 4, 5

),

running as (

    select
        spine.*,
        sum(coalesce(deltas.numerator_delta, 0)) over period_so_far   as numerator,
        sum(coalesce(deltas.denominator_delta, 0)) over period_so_far as denominator
    from spine
    left join deltas
        on deltas.unit_code = spine.unit_code
       and deltas.period_type = spine.period_type
       and deltas.period_start = spine.period_start
       and deltas.indicator_code = spine.indicator_code
       and deltas.event_date = spine.as_of_date
    window period_so_far as (
        partition by spine.unit_code, spine.period_type, spine.period_start, spine.indicator_code
        order by spine.as_of_date rows between unbounded preceding and current row)

),

valued as (

    select
        running.as_of_date,
        running.unit_code,
        running.period_type,
        running.period_start,
        running.indicator_code,
        running.numerator,
        running.denominator,
        {{ indicator_ratio('running.numerator', 'running.denominator') }} as ratio
    from running
    where running.as_of_date in (select as_of_date from business_days)

)

{% endif %}

select
    valued.as_of_date                                   as business_date,
    valued.unit_code,
    valued.period_type,
    valued.period_start,
    {{ period_end('valued.period_type', 'valued.period_start') }} as period_end,
    valued.indicator_code,
    rule.indicator_group,
    valued.numerator,
    valued.denominator,
    {{ indicator_rate('valued.ratio', 'rule') }}        as rate,
    {{ indicator_score('valued.ratio', 'rule') }}       as score,
    rule.max_points,
    rule.is_scored,
    rule.rule_version,
    {{ engine_built_at() }}                              as built_at
from valued
inner join rules as rule
    on rule.indicator_code = valued.indicator_code
   and {{ rule_in_force('rule', 'valued.as_of_date') }}
