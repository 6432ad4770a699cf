-- Ranks by total score, recomputed from the published totals, against the published ranks. Rule: total
-- descending; equal totals are ordered by unit code (the portal's own order of ties is unexplained).
with units as (

    select distinct on (e.province_code, e.period_type, e.period_year, e.period_number, e.record ->> 'departmentCode')
        e.business_date as evaluated_on,
        e.province_code,
        e.period_type,
        e.period_year,
        e.period_number,
        e.record ->> 'departmentCode' as unit_code,
        e.record ->> 'childGroup' as unit_group,
        (e.record ->> 'totalScore')::numeric as published_total,
        (e.record ->> 'rank')::integer as published_rank,
        (e.record ->> 'groupRank')::integer as published_group_rank
    from {{ source('portal', 'portal__evaluations') }} as e
    order by e.province_code, e.period_type, e.period_year, e.period_number, e.record ->> 'departmentCode',
             e.business_date desc, e.load_id desc

),

ranked as (

    select
        *,
        row_number() over (partition by province_code, period_type, period_year, period_number
                           order by published_total desc, unit_code) as rank,
        row_number() over (partition by province_code, period_type, period_year, period_number, unit_group
                           order by published_total desc, unit_code) as group_rank,
        count(*) over (partition by province_code, period_type, period_year, period_number, published_total) > 1
            as is_tied
    from units

)

select
    *,
    rank = published_rank as rank_matches,
    group_rank = published_group_rank as group_rank_matches
from ranked
