-- The six groups of the 766 index with their Vietnamese names and maximum points, for BI: the names are
-- the seed's (the one place they are written), the maximum the sum of the active rule version's weights.
select
    groups.group_code,
    groups.display_order,
    groups.name_vi,
    groups.name_en,
    coalesce(sum(indicators.max_points) filter (where indicators.is_scored), 0) as max_points,
    groups.source
from {{ ref('indicator_groups') }} as groups
left join {{ ref('dim_indicators') }} as indicators
    on indicators.indicator_group = groups.group_code and indicators.is_active_version
group by groups.group_code, groups.display_order, groups.name_vi, groups.name_en, groups.source
