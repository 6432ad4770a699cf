{{ config(indexes=[{'columns': ['business_date', 'unit_code', 'period_type', 'metric_code'], 'unique': true}]) }}
-- Plan-specific metrics (plan_metric_registry) per business date × unit × period × metric, like
-- fct_indicator_values: the day, month, quarter and year containing the business date, each to date,
-- as running sums of int_plan_metric_deltas. Every unit that exists on the day has a row for every
-- metric computed from our data (survey metrics such as SIPAS_* have none); 0/0 gives a null value;
-- metrics marked no_data (OVERDUE_APOLOGY_SHARE) show their denominator and a null value.
-- The value rules (ratio_percent, average, the derived reduction) are repeated for campaign windows in
-- int_target_actuals: change both together.
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

    select running.* from running
    where running.as_of_date in (select as_of_date from business_days)

),

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
    metric.data_status
from valued
inner join metrics as metric using (metric_code)
