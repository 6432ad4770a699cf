-- Every sub-indicator's value as a leader reads it: rate, counts and score with the sub-indicator's and
-- its group's Vietnamese names (rule registry and indicator_groups seeds, through the dimensions).
select
    indicator_values.business_date,
    indicator_values.period_type,
    indicator_values.period_start,
    indicator_values.period_end,
    indicator_values.unit_code,
    units.unit_name,
    indicator_values.indicator_group                                   as group_code,
    groups.name_vi                                                     as group_name,
    indicator_values.indicator_code,
    indicators.name_vi                                                 as indicator_name,
    indicator_values.numerator,
    indicator_values.denominator,
    indicator_values.rate,
    indicator_values.score,
    indicator_values.max_points,
    indicator_values.is_scored,
    indicator_values.rule_version
from {{ ref('fct_indicator_values') }} as indicator_values
left join {{ ref('dim_units') }} as units on units.unit_code = indicator_values.unit_code
left join {{ ref('dim_indicators') }} as indicators
    on indicators.indicator_code = indicator_values.indicator_code
   and indicators.rule_version = indicator_values.rule_version
left join {{ ref('dim_indicator_groups') }} as groups on groups.group_code = indicator_values.indicator_group
