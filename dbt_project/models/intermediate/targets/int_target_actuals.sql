-- The measured value of each target's indicator for each unit it applies to: as of every business date
-- of the target's window (role 'actual'), and as of its baseline date with its baseline measure (role
-- 'baseline'). Measures (docs/targets.md):
--   * day, month, quarter, year: the calendar period containing the as-of day, to date — read from
--     fct_indicator_values (sub-indicators), fct_unit_scores (groups as a percent of the group's maximum,
--     TOTAL, RANK) or fct_plan_metric_values (plan metrics);
--   * window: items of the days from the target's window_start to the as-of day; trailing_<N>d: items of
--     the N days ending on the as-of day — sums of the 'day' periods' deltas (int_indicator_deltas,
--     int_plan_metric_deltas) dated up to the as-of day, so each item is judged as of that day. Only
--     item-level (additive) measures can be summed this way; chiso.transform.targets rejects the others.
with targets as (

    select
        *,
        case when measure_period like 'trailing\_%' escape '\'
             then substring(measure_period from 'trailing_([0-9]+)d')::int end  as trailing_days,
        case when baseline_measure like 'trailing\_%' escape '\'
             then substring(baseline_measure from 'trailing_([0-9]+)d')::int end as baseline_trailing_days
    from {{ ref('target_registry') }}

),

business_days as (

    {{ business_days() }}

),

rules as (

    select * from ({{ active_rules() }}) as active

),

group_max as (

    select indicator_group, sum(max_points) as max_points
    from rules where is_scored group by indicator_group

),

plan_metrics as (

    select * from {{ ref('plan_metric_registry') }}

),

requests as (

    -- Every business date of the window while the unit is in the target's scope.
    select targets.target_id, units.unit_code, day.as_of_date, 'actual' as role, targets.indicator_code,
           targets.measure_period as measure, targets.trailing_days,
           case when targets.measure_period = 'window' then targets.window_start
                else day.as_of_date - (targets.trailing_days - 1) end as range_start
    from targets
    inner join {{ ref('int_target_units') }} as units using (target_id)
    inner join business_days as day
        on day.as_of_date >= greatest(targets.window_start, units.member_from)
       and (targets.window_end is null or day.as_of_date <= targets.window_end)
       and (units.member_to is null or day.as_of_date <= units.member_to)

    union all

    select targets.target_id, units.unit_code, targets.baseline_date, 'baseline', targets.indicator_code,
           targets.baseline_measure, targets.baseline_trailing_days,
           targets.baseline_date - (coalesce(targets.baseline_trailing_days, 1) - 1)
    from targets
    inner join {{ ref('int_target_units') }} as units using (target_id)
    where targets.baseline_date is not null and targets.baseline_measure is not null

),

classified as (

    select
        requests.*,
        case
            when requests.indicator_code in (select indicator_code from rules) then 'sub_indicator'
            when requests.indicator_code in (select indicator_group from group_max) then 'group'
            when requests.indicator_code in ('TOTAL', 'RANK') then lower(requests.indicator_code)
            when requests.indicator_code in (select metric_code from plan_metrics) then 'plan_metric'
        end as indicator_kind,
        requests.measure in ('day', 'month', 'quarter', 'year') as is_calendar
    from requests

),

calendar_sub_indicators as (

    select requests.target_id, requests.unit_code, requests.as_of_date, requests.role,
           values.numerator::numeric as numerator, values.denominator::numeric as denominator,
           values.rate as value
    from classified as requests
    inner join {{ ref('fct_indicator_values') }} as values
        on values.business_date = requests.as_of_date and values.unit_code = requests.unit_code
       and values.period_type = requests.measure and values.indicator_code = requests.indicator_code
    where requests.is_calendar and requests.indicator_kind = 'sub_indicator'

),

calendar_scores as (

    select requests.target_id, requests.unit_code, requests.as_of_date, requests.role, requests.indicator_kind,
           case requests.indicator_kind
               when 'group' then case requests.indicator_code
                   when 'CKMB' then scores.ckmb_score when 'TDGQ' then scores.tdgq_score
                   when 'ONLINE' then scores.online_score when 'TTTT' then scores.tttt_score
                   when 'MDSH' then scores.mdsh_score when 'MDHL' then scores.mdhl_score end
               when 'total' then scores.total_score
               else coalesce(scores.rank_in_district, scores.rank_in_kind, scores.rank_in_peer_set)
           end::numeric as numerator,
           case requests.indicator_kind
               when 'group' then group_max.max_points
               when 'total' then 100
               else case when scores.rank_in_district is not null then scores.district_peer_count
                         when scores.rank_in_kind is not null then scores.kind_peer_count
                         else scores.peer_count end
           end::numeric as denominator
    from classified as requests
    inner join {{ ref('fct_unit_scores') }} as scores
        on scores.business_date = requests.as_of_date and scores.unit_code = requests.unit_code
       and scores.period_type = requests.measure
    left join group_max on group_max.indicator_group = requests.indicator_code
    where requests.is_calendar and requests.indicator_kind in ('group', 'total', 'rank')

),

calendar_plan_metrics as (

    select requests.target_id, requests.unit_code, requests.as_of_date, requests.role,
           values.numerator, values.denominator, values.value
    from classified as requests
    inner join {{ ref('fct_plan_metric_values') }} as values
        on values.business_date = requests.as_of_date and values.unit_code = requests.unit_code
       and values.period_type = requests.measure and values.metric_code = requests.indicator_code
    where requests.is_calendar and requests.indicator_kind = 'plan_metric'

),

window_sub_indicators as (

    select requests.target_id, requests.unit_code, requests.as_of_date, requests.role,
           coalesce(sum(deltas.numerator_delta), 0)::numeric   as numerator,
           coalesce(sum(deltas.denominator_delta), 0)::numeric as denominator
    from classified as requests
    left join {{ ref('int_indicator_deltas') }} as deltas
        on deltas.unit_code = requests.unit_code and deltas.indicator_code = requests.indicator_code
       and deltas.period_type = 'day'
       and deltas.period_start between requests.range_start and requests.as_of_date
       and deltas.event_date <= requests.as_of_date
    where not requests.is_calendar and requests.indicator_kind = 'sub_indicator'
    group by 1, 2, 3, 4

),

window_plan_metrics as (

    select requests.target_id, requests.unit_code, requests.as_of_date, requests.role, requests.indicator_code,
           coalesce(sum(deltas.numerator_delta) filter (where deltas.metric_code = requests.indicator_code), 0)   as numerator,
           coalesce(sum(deltas.denominator_delta) filter (where deltas.metric_code = requests.indicator_code), 0) as denominator,
           sum(deltas.numerator_delta) filter (where deltas.metric_code = 'PROCESSING_DAYS_ONLINE')
               / nullif(sum(deltas.denominator_delta) filter (where deltas.metric_code = 'PROCESSING_DAYS_ONLINE'), 0)
                                                                                          as online_days,
           sum(deltas.numerator_delta) filter (where deltas.metric_code = 'PROCESSING_DAYS_DIRECT')
               / nullif(sum(deltas.denominator_delta) filter (where deltas.metric_code = 'PROCESSING_DAYS_DIRECT'), 0)
                                                                                          as direct_days
    from classified as requests
    left join {{ ref('int_plan_metric_deltas') }} as deltas
        on deltas.unit_code = requests.unit_code
       and (deltas.metric_code = requests.indicator_code
            or (requests.indicator_code = 'PROCESSING_TIME_REDUCTION'
                and deltas.metric_code in ('PROCESSING_DAYS_ONLINE', 'PROCESSING_DAYS_DIRECT')))
       and deltas.period_type = 'day'
       and deltas.period_start between requests.range_start and requests.as_of_date
       and deltas.event_date <= requests.as_of_date
    where not requests.is_calendar and requests.indicator_kind = 'plan_metric'
    group by 1, 2, 3, 4, 5

),

measured as (

    select target_id, unit_code, as_of_date, role, numerator, denominator, value from calendar_sub_indicators
    union all
    select target_id, unit_code, as_of_date, role, numerator, denominator,
           round(100.0 * numerator / nullif(denominator, 0), 2)
    from calendar_scores where indicator_kind = 'group'
    union all
    -- TOTAL in points (of 100), RANK as the rank (the denominator is the peer count).
    select target_id, unit_code, as_of_date, role, numerator, denominator, numerator
    from calendar_scores where indicator_kind <> 'group'
    union all
    select target_id, unit_code, as_of_date, role, numerator, denominator, value from calendar_plan_metrics
    union all
    select target_id, unit_code, as_of_date, role, numerator, denominator,
           round(100.0 * numerator / nullif(denominator, 0), 2)
    from window_sub_indicators
    union all
    -- The value rules of fct_plan_metric_values, on the window's sums.
    select window_plan_metrics.target_id, window_plan_metrics.unit_code, window_plan_metrics.as_of_date,
           window_plan_metrics.role,
           case when metric.formula in ('average', 'ratio_percent') then window_plan_metrics.numerator
                else round(window_plan_metrics.online_days, 4) end,
           case when metric.formula in ('average', 'ratio_percent') then window_plan_metrics.denominator
                else round(window_plan_metrics.direct_days, 4) end,
           case
               when metric.data_status <> 'available' then null
               when metric.formula = 'average'
                   then round(window_plan_metrics.numerator / nullif(window_plan_metrics.denominator, 0), 2)
               when metric.formula = 'ratio_percent'
                   then round(100.0 * window_plan_metrics.numerator / nullif(window_plan_metrics.denominator, 0), 2)
               else round(100.0 * (1 - window_plan_metrics.online_days / nullif(window_plan_metrics.direct_days, 0)), 2)
           end
    from window_plan_metrics
    inner join plan_metrics as metric on metric.metric_code = window_plan_metrics.indicator_code

)

select
    requests.target_id,
    requests.unit_code,
    requests.as_of_date,
    requests.role,
    requests.measure,
    requests.indicator_kind,
    measured.numerator,
    measured.denominator,
    measured.value
from classified as requests
left join measured using (target_id, unit_code, as_of_date, role)
