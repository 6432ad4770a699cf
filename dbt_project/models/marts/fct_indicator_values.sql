-- Sub-indicator values per unit and business day: numerator, denominator, rate and score.
-- Every (day, unit, indicator) of the spine has a row, with 0/0 where a unit had no dossiers, so
-- a missing unit is visible rather than silently absent.
with business_days as (

    select distinct business_date
    from {{ source('portal', 'load_ledger') }}
    where entity = 'dossiers' and status = 'loaded'

),

rules as (

    -- The active rule version's rows for the sub-indicators this model computes so far.
    select *
    from ({{ active_rules() }}) as active
    where indicator_code in ('ON_TIME', 'ONLINE_DOSSIER_SHARE')

),

dossiers as (

    select * from {{ ref('fct_dossiers') }} where is_received

),

on_time as (

    -- Population: dossiers received or ended that day. An open dossier is judged at the end of the
    -- day: on time while its due date has not passed (tech-note, domain README §3).
    select
        day.business_date,
        d.unit_code,
        'ON_TIME' as indicator_code,
        count(*) filter (
            where d.due_at is not null
              and least(coalesce(d.ended_at, day.period_end), day.period_end) <= d.due_at
        ) as numerator,
        count(*) as denominator
    from (select business_date, (business_date + 1)::timestamp as period_end from business_days) as day
    inner join dossiers as d
        on d.received_date = day.business_date or d.ended_date = day.business_date
    group by 1, 2

),

online_share as (

    select
        day.business_date,
        d.unit_code,
        'ONLINE_DOSSIER_SHARE' as indicator_code,
        count(*) filter (where d.is_online) as numerator,
        count(*) as denominator
    from business_days as day
    inner join dossiers as d on d.received_date = day.business_date
    group by 1, 2

),

counts as (

    select * from on_time
    union all
    select * from online_share

),

spine as (

    select day.business_date, unit.unit_code, rule.*
    from business_days as day
    inner join {{ ref('dim_units') }} as unit
        on unit.is_evaluated
       and day.business_date >= unit.valid_from
       and (unit.valid_to is null or day.business_date <= unit.valid_to)
    inner join rules as rule
        on {{ rule_in_force('rule', 'day.business_date') }}

),

valued as (

    select
        spine.business_date,
        spine.unit_code,
        spine.indicator_code,
        spine.indicator_group,
        coalesce(counts.numerator, 0)   as numerator,
        coalesce(counts.denominator, 0) as denominator,
        {{ indicator_ratio('counts.numerator', 'counts.denominator') }} as ratio,
        spine.max_points,
        spine.rule_version
    from spine
    left join counts
        on counts.business_date = spine.business_date
       and counts.unit_code = spine.unit_code
       and counts.indicator_code = spine.indicator_code

)

select
    valued.business_date,
    valued.unit_code,
    valued.indicator_code,
    valued.indicator_group,
    valued.numerator,
    valued.denominator,
    {{ indicator_rate('valued.ratio', 'rule') }} as rate,
    {{ indicator_score('valued.ratio', 'rule') }} as score,
    valued.max_points,
    valued.rule_version
from valued
inner join rules as rule
    on rule.indicator_code = valued.indicator_code
