{{ config(indexes=[{'columns': ['business_date', 'target_id', 'unit_code'], 'unique': true}]) }}
-- Where each unit stands against each target of the registry, as of every business date of the
-- target's window (docs/targets.md): the actual value of the target's measure, the authoritative target,
-- the gap in points and in items (dossiers), the status, the pace needed and the projection at the
-- current pace. From the deadline on (a milestone's day, a campaign's end) the target is judged on its
-- value as of the deadline, not as of today; before the window opens there is no row.
--
-- Projection: the least-squares slope of the actual value over the as-of days of the last 14 days
-- (at least 7 of them, inside the window and, for a calendar measure, inside its current period), extrapolated linearly to the deadline (clamped to 0–100 for
-- percentages). A target whose projection misses is 'có nguy cơ' even if met today.
{#- A value meets the target under its comparator (@V: the value's SQL expression). -#}
{%- set meets -%}
    case targets.comparator
        when '>=' then @V >= targets.target_value
        when '>'  then @V >  targets.target_value
        when '<=' then @V <= targets.target_value
        when '<'  then @V <  targets.target_value
    end
{%- endset -%}
{#- The rule's target from a baseline @V: plus change_value points, or plus change_value percent of it,
    rounded to rounding_step when the plan rounded, else to 2 decimals. -#}
{%- set rule_target -%}
    case when targets.target_kind in ('baseline_plus_points', 'relative_change_points', 'relative_change_percent') then
        case when targets.rounding_step is not null
             then round((case targets.target_kind when 'relative_change_percent' then @V * (1 + targets.change_value / 100.0)
                                                  else @V + targets.change_value end) / targets.rounding_step) * targets.rounding_step
             else round(case targets.target_kind when 'relative_change_percent' then @V * (1 + targets.change_value / 100.0)
                                                 else @V + targets.change_value end, 2) end
    end
{%- endset %}
with targets as (

    select * from {{ ref('target_registry') }}

),

rules as (

    select * from ({{ active_rules() }}) as active

),

plan_metrics as (

    select * from {{ ref('plan_metric_registry') }}

),

indicator_names as (

    select indicator_code, name_vi, 'percent' as unit_of_measure, 'ratio_percent' as formula from rules
    union all
    select metric_code, name_vi, unit_of_measure, formula from plan_metrics
    union all
    select code, name_vi, unit_of_measure, formula from (
        select group_code, name_vi, 'percent', 'group' from {{ ref('indicator_groups') }}
        union all
        values
        ('TOTAL', 'Tổng điểm Bộ chỉ số', 'points', 'total'),
        ('RANK', 'Thứ hạng', 'rank', 'rank')
    ) as groups (code, name_vi, unit_of_measure, formula)
    -- A group code (ONLINE) that is also a sub-indicator code keeps the sub-indicator's name.
    where code not in (select indicator_code from rules)

),

actuals as (

    select
        *,
        -- A calendar measure restarts with each period: its trend only looks inside the current one.
        case when measure in ('day', 'month', 'quarter', 'year')
             then {{ period_start('measure', 'as_of_date') }} end as trend_period_start
    from {{ ref('int_target_actuals') }} where role = 'actual'

),

baselines as (

    select target_id, unit_code, value as baseline_from_data
    from {{ ref('int_target_actuals') }} where role = 'baseline'

),

trended as (

    select
        actuals.*,
        (regr_slope(actuals.value::float8, (actuals.as_of_date - date '2000-01-01')::float8) over last_14_days)::numeric as slope,
        count(actuals.value) over last_14_days as trend_points
    from actuals
    window last_14_days as (
        partition by actuals.target_id, actuals.unit_code, actuals.trend_period_start order by actuals.as_of_date
        range between interval '13 days' preceding and current row)

),

finals as (

    -- The value on the deadline: the last business date of the window up to the deadline.
    select distinct on (actuals.target_id, actuals.unit_code)
        actuals.target_id, actuals.unit_code, actuals.as_of_date as judged_on, actuals.value as final_value
    from actuals
    inner join targets using (target_id)
    where targets.deadline is not null and actuals.as_of_date <= targets.deadline
    order by actuals.target_id, actuals.unit_code, actuals.as_of_date desc

),

computed as (

    select
        trended.as_of_date                                               as business_date,
        targets.target_id,
        targets.plan_id,
        trended.unit_code,
        targets.indicator_code,
        names.name_vi                                                    as indicator_name_vi,
        coalesce(names.unit_of_measure, 'percent')                       as unit_of_measure,
        names.formula,
        targets.comparator,
        targets.target_kind,
        targets.target_value,
        targets.target_rule_vi,
        targets.measure_period,
        targets.window_start,
        targets.window_end,
        targets.deadline,
        targets.baseline_date,
        targets.baseline_value,
        baselines.baseline_from_data,
        {{ rule_target | replace('@V', 'targets.baseline_value') }}                      as target_by_rule,
        {{ rule_target | replace('@V', 'baselines.baseline_from_data') }}                as target_from_data,
        trended.numerator,
        trended.denominator,
        trended.value                                                    as actual_value,
        targets.deadline is not null and trended.as_of_date >= targets.deadline as is_final,
        case when targets.deadline is not null and trended.as_of_date >= targets.deadline
             then finals.judged_on else trended.as_of_date end           as judged_on,
        case when targets.deadline is not null and trended.as_of_date >= targets.deadline
             then finals.final_value else trended.value end              as judged_value,
        case when targets.deadline is not null and trended.as_of_date < targets.deadline
             then targets.deadline - trended.as_of_date end              as days_to_deadline,
        case when trended.trend_points >= 7 then trended.slope end       as trend_per_day
    from trended
    inner join targets using (target_id)
    left join indicator_names as names on names.indicator_code = targets.indicator_code
    left join baselines using (target_id, unit_code)
    left join finals using (target_id, unit_code)

),

projected as (

    select
        computed.*,
        case when computed.days_to_deadline is not null and computed.trend_per_day is not null then
            case when computed.unit_of_measure = 'percent'
                 then least(100, greatest(0, computed.actual_value + computed.trend_per_day * computed.days_to_deadline))
                 else computed.actual_value + computed.trend_per_day * computed.days_to_deadline end
        end                                                              as projected_value
    from computed

),

judged as (

select
    projected.business_date,
    projected.target_id,
    projected.plan_id,
    projected.unit_code,
    units.unit_name,
    projected.indicator_code,
    projected.indicator_name_vi,
    projected.unit_of_measure,
    projected.comparator,
    projected.target_kind,
    projected.measure_period,
    projected.window_start,
    projected.window_end,
    projected.deadline,
    projected.target_value,
    projected.target_rule_vi,
    projected.baseline_date,
    projected.baseline_value,
    round(projected.baseline_from_data, 2)                               as baseline_from_data,
    projected.target_by_rule,
    projected.target_from_data,
    projected.numerator,
    projected.denominator,
    projected.actual_value,
    projected.judged_on,
    projected.judged_value,
    projected.is_final,
    -- Shortfall in the measure's unit (0 when met): what the judged value lacks.
    case when projected.judged_value is null then null
         when targets.comparator in ('>=', '>') then greatest(0, projected.target_value - projected.judged_value)
         else greatest(0, projected.judged_value - projected.target_value) end as gap_points,
    -- For shares of items (dossiers, ratings): how many more of today's population would have to meet the
    -- numerator's condition (be online, be paid online…) for the share to reach the target.
    case when projected.formula = 'ratio_percent' and targets.comparator in ('>=', '>')
              and projected.denominator > 0 and not projected.is_final
         then greatest(0, ceil(projected.target_value * projected.denominator / 100.0 - projected.numerator))::bigint
    end                                                                  as gap_items,
    projected.days_to_deadline,
    round(case when projected.days_to_deadline > 0
               then (projected.target_value - projected.actual_value) / projected.days_to_deadline end, 4)
                                                                         as required_change_per_day,
    round(projected.trend_per_day, 4)                                    as trend_per_day,
    round(projected.projected_value, 2)                                  as projected_value,
    case when projected.projected_value is not null then {{ meets | replace('@V', 'projected.projected_value') }} end
                                                                         as projection_meets_target,
    case
        when projected.judged_value is null then 'no_data'
        when projected.is_final or projected.deadline is null
            then case when {{ meets | replace('@V', 'projected.judged_value') }} then 'met' else 'not_met' end
        when projected.projected_value is not null and not {{ meets | replace('@V', 'projected.projected_value') }} then 'at_risk'
        when {{ meets | replace('@V', 'projected.actual_value') }} then 'met'
        else 'not_met'
    end                                                                  as status_code
from projected
inner join targets using (target_id)
left join {{ ref('dim_units') }} as units on units.unit_code = projected.unit_code

)

select
    judged.*,
    case judged.status_code when 'met' then 'đạt' when 'not_met' then 'chưa đạt'
                            when 'at_risk' then 'có nguy cơ' else 'chưa có dữ liệu' end as status_vi
from judged
