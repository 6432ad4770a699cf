-- Sub-indicator values per business date (as of its end) × unit × period × sub-indicator: numerator,
-- denominator, rate and score under the active rule version. Periods are the day, month, quarter and
-- year containing the business date, each to date (the year is the portal's year-to-date view).
-- Every (day, unit, period, indicator) of the spine has a row, with 0/0 where a unit had nothing,
-- so a missing unit is visible rather than silently absent.
with business_days as (

    select distinct business_date as as_of_date
    from {{ source('portal', 'load_ledger') }}
    where entity = 'dossiers' and status = 'loaded'

),

as_of_days as (

    -- Every day from the first business date to the last, so running sums never skip a day's deltas.
    select day::date as as_of_date
    from generate_series((select min(as_of_date) from business_days),
                         (select max(as_of_date) from business_days), interval '1 day') as day

),

units as (

    select unit_code, unit_kind, valid_from, valid_to from {{ ref('dim_units') }}

),

rules as (

    select * from ({{ active_rules() }}) as active

),

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
    rule.rule_version
from valued
inner join rules as rule
    on rule.indicator_code = valued.indicator_code
   and {{ rule_in_force('rule', 'valued.as_of_date') }}
