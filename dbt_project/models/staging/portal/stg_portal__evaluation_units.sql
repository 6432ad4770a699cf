-- Every published unit of every loaded capture (provinces, for the national overview): total, ranks and
-- the published blocks as they came.
select
    e.load_id,
    e.business_date as evaluated_on,
    e.province_code,
    e.period_type,
    e.period_year,
    e.period_number,
    e.record ->> 'departmentCode' as unit_code,
    e.record ->> 'childGroup' as unit_group,
    (e.record ->> 'totalScore')::numeric as published_total,
    (e.record ->> 'rank')::integer as published_rank,
    (e.record ->> 'groupRank')::integer as published_group_rank,
    e.record -> 'groupScores' as group_scores,
    e.record -> 'componentIndicators' as component_indicators
from {{ source('portal', 'portal__evaluations') }} as e
