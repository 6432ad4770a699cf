-- Ranks of each unit among its peers ("x/y" in a district, in the province's communes, among units of its
-- kind or among all the province's units), by total score and by the sub-indicators the plans compare.
select
    rankings.business_date,
    rankings.period_type,
    rankings.unit_code,
    rankings.unit_name,
    rankings.measure_code,
    indicators.name_vi                                                 as indicator_name,
    rankings.peer_set,
    rankings.peer_set_unit_code,
    rankings.peer_set_name,
    rankings.value,
    rankings.rank,
    rankings.peer_count,
    rankings.rank_text,
    rankings.rank_phrase_vi                                            as rank_phrase
from {{ ref('mart_peer_rankings') }} as rankings
left join {{ ref('dim_indicators') }} as indicators
    on indicators.indicator_code = rankings.measure_code and indicators.is_active_version
