-- The 766 scores as a leader reads them: one row per day, unit and period (day, month, quarter, year to
-- date) with the unit's and its province's names, the six group scores, the total, the class in
-- Vietnamese (score_classes) and the ranks "x/y". Columns are the contract (unit_scores.yml).
select
    scores.business_date,
    scores.period_type,
    scores.period_start,
    scores.period_end,
    scores.unit_code,
    units.unit_name,
    scores.unit_kind,
    scores.province_unit_code,
    provinces.unit_name                                                as province_name,
    scores.district_unit_code,
    scores.ckmb_score,
    scores.tdgq_score,
    scores.online_score,
    scores.tttt_score,
    scores.mdsh_score,
    scores.mdhl_score,
    scores.total_score,
    scores.class_code,
    scores.class_name_vi                                               as class_name,
    scores.rank_in_peer_set                                            as rank_in_province,
    scores.peer_count                                                  as units_in_province,
    scores.rank_in_peer_set || '/' || scores.peer_count                as rank_in_province_text,
    scores.rank_in_kind,
    scores.kind_peer_count                                             as units_of_kind_in_province,
    scores.rank_in_district,
    scores.district_peer_count                                         as communes_in_district,
    scores.change_since_previous_day,
    scores.change_since_previous_period
from {{ ref('fct_unit_scores') }} as scores
left join {{ ref('dim_units') }} as units on units.unit_code = scores.unit_code
left join {{ ref('dim_units') }} as provinces on provinces.unit_code = scores.province_unit_code
