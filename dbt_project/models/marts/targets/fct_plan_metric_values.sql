{{ config(
    materialized='incremental',
    on_schema_change='append_new_columns',
    incremental_strategy='delete+insert',
    unique_key=['business_date', 'unit_code', 'period_type', 'metric_code'],
    indexes=[{'columns': ['business_date', 'unit_code', 'period_type', 'metric_code'], 'unique': true},
             {'columns': ['built_at']}],
    pre_hook="{{ engine_prepare_incremental() }}"
) }}
-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_plan_metric_changed_periods') }}
-- Plan-specific metrics (plan_metric_registry) per business date × unit × period × metric, like
-- fct_indicator_values: the day, month, quarter and year containing the business date, each to date,
-- as running sums of int_plan_metric_deltas. Every unit that exists on the day has a row for every
-- metric computed from our data (survey metrics such as SIPAS_* have none); 0/0 gives a null value;
-- metrics marked no_data (OVERDUE_APOLOGY_SHARE) show their denominator and a null value.
-- The value rules (ratio_percent, average, the derived reduction) are repeated for campaign windows in
-- int_target_actuals: change both together.
--
-- Incremental, as fct_indicator_values (docs/engine-incremental.md): a nightly build computes the rows
-- of the business dates not built yet and, in the buckets whose deltas changed
-- (int_plan_metric_changed_periods), the rows from the first changed day on, each as the last stored
-- value of its period before the first recomputed day (its anchor) plus the deltas since. Every metric
-- of a (day, unit, period) is recomputed together: the processing-time reduction is derived from two.
{% set incremental = engine_is_incremental() %}
with business_days as (

    {{ business_days() }}

),

as_of_days as (

    {{ as_of_days() }}

),

metrics as (

    select * from {{ ref('plan_metric_registry') }}
    where population in ('dossier', 'rating', 'procedure')

),

{% if incremental %}
new_days as materialized (

    -- Business dates not built yet.
    select as_of_date from business_days
    where not exists (select 1 from {{ this }} as built where built.business_date = business_days.as_of_date)

),

target_keys as materialized (

    select day.as_of_date, unit.unit_code, periods.period_type
    from new_days as day
    inner join {{ ref('dim_units') }} as unit
        on day.as_of_date >= unit.valid_from and (unit.valid_to is null or day.as_of_date <= unit.valid_to)
    cross join {{ period_types_relation() }} as periods

    union

    select business_days.as_of_date, changed.unit_code, changed.period_type
    from {{ ref('int_plan_metric_changed_periods') }} as changed
    inner join business_days
        on business_days.as_of_date >= changed.first_changed_day
       and {{ period_start('changed.period_type', 'business_days.as_of_date') }} = changed.period_start
    inner join {{ ref('dim_units') }} as unit
        on unit.unit_code = changed.unit_code
       and business_days.as_of_date >= unit.valid_from
       and (unit.valid_to is null or business_days.as_of_date <= unit.valid_to)

),

targets as materialized (

    select
        target_keys.as_of_date,
        target_keys.unit_code,
        target_keys.period_type,
        {{ period_start('target_keys.period_type', 'target_keys.as_of_date') }} as period_start,
        metric.metric_code,
        greatest({{ period_start('target_keys.period_type', 'target_keys.as_of_date') }},
                 (select min(as_of_date) from as_of_days), unit.valid_from) as first_spine_day
    from target_keys
    inner join {{ ref('dim_units') }} as unit using (unit_code)
    inner join metrics as metric on metric.formula in ('average', 'ratio_percent')

),

partitions as materialized (

    select unit_code, period_type, period_start, metric_code,
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
       and anchor.metric_code = partitions.metric_code
       and anchor.period_start = partitions.period_start

),

stream as (

    select unit_code, period_type, period_start, metric_code, as_of_date as day, 1 as is_target,
           0::numeric as numerator_delta, 0::numeric as denominator_delta
    from targets

    union all

    -- The anchor's value as one delta on its day (0 without an anchor)...
    select unit_code, period_type, period_start, metric_code, after_day, 0, base_numerator, base_denominator
    from anchored

    union all

    -- ... then the deltas since. Deltas dated before the first as-of day take effect on it.
    select deltas.unit_code, deltas.period_type, deltas.period_start, deltas.metric_code,
           greatest(deltas.event_date, (select min(as_of_date) from as_of_days)), 0,
           deltas.numerator_delta, deltas.denominator_delta
    from {{ ref('int_plan_metric_deltas') }} as deltas
    inner join anchored
        on anchored.unit_code = deltas.unit_code
       and anchored.period_type = deltas.period_type
       and anchored.period_start = deltas.period_start
       and anchored.metric_code = deltas.metric_code
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
        partition by unit_code, period_type, period_start, metric_code
        order by day, is_target rows between unbounded preceding and current row)

),

counted as (

    select day as as_of_date, unit_code, period_type, period_start, metric_code, numerator, denominator
    from running
    where is_target = 1

),

{% else %}
spine as (

    select
        day.as_of_date,
        unit.unit_code,
        periods.period_type,
        {{ period_start('periods.period_type', 'day.as_of_date') }} as period_start,
        metric.metric_code
    from as_of_days as day
    inner join {{ ref('dim_units') }} as unit
        on day.as_of_date >= unit.valid_from and (unit.valid_to is null or day.as_of_date <= unit.valid_to)
    cross join {{ period_types_relation() }} as periods
    inner join metrics as metric on metric.formula in ('average', 'ratio_percent')

),

deltas as (

    -- Deltas dated before the first as-of day take effect on it (the period's earlier days).
    select unit_code, period_type, period_start, metric_code,
           greatest(event_date, (select min(as_of_date) from as_of_days)) as event_date,
           sum(numerator_delta) as numerator_delta, sum(denominator_delta) as denominator_delta
    from {{ ref('int_plan_metric_deltas') }}
    where event_date <= (select max(as_of_date) from as_of_days)
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
       and deltas.metric_code = spine.metric_code
       and deltas.event_date = spine.as_of_date
    window period_so_far as (
        partition by spine.unit_code, spine.period_type, spine.period_start, spine.metric_code
        order by spine.as_of_date rows between unbounded preceding and current row)

),

counted as (

    select as_of_date, unit_code, period_type, period_start, metric_code, numerator, denominator
    from running
    where running.as_of_date in (select as_of_date from business_days)

),
{% endif %}

derived as (

    -- PROCESSING_TIME_REDUCTION = 100 × (1 − online average / direct average); numerator and denominator
    -- carry the two averages (days).
    select
        online.as_of_date, online.unit_code, online.period_type, online.period_start,
        'PROCESSING_TIME_REDUCTION' as metric_code,
        round(online.numerator / nullif(online.denominator, 0), 4) as numerator,
        round(direct.numerator / nullif(direct.denominator, 0), 4) as denominator
    from counted as online
    inner join counted as direct
        on direct.as_of_date = online.as_of_date and direct.unit_code = online.unit_code
       and direct.period_type = online.period_type and direct.metric_code = 'PROCESSING_DAYS_DIRECT'
    where online.metric_code = 'PROCESSING_DAYS_ONLINE'

),

valued as (

    select counted.*,
           case
               when metric.data_status <> 'available' or counted.denominator = 0 then null
               when metric.formula = 'average' then round(counted.numerator / counted.denominator, 2)
               else round(100.0 * counted.numerator / counted.denominator, 2)
           end as value
    from counted
    inner join metrics as metric using (metric_code)

    union all

    select derived.*,
           round(100.0 * (1 - derived.numerator / nullif(derived.denominator, 0)), 2) as value
    from derived

)

select
    valued.as_of_date                                               as business_date,
    valued.unit_code,
    valued.period_type,
    valued.period_start,
    {{ period_end('valued.period_type', 'valued.period_start') }}   as period_end,
    valued.metric_code,
    round(valued.numerator, 4)                                      as numerator,
    round(valued.denominator, 4)                                    as denominator,
    valued.value,
    metric.unit_of_measure,
    metric.data_status,
    {{ engine_built_at() }}                                         as built_at
from valued
inner join metrics as metric using (metric_code)
