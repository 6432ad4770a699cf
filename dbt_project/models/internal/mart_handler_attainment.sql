{{ config(indexes=[{'columns': ['business_date', 'plan_id', 'unit_code', 'handler_name'], 'unique': true}]) }}
-- Who did what, per official (plans 000, 001, 002: „nêu rõ tập thể, cá nhân hoàn thành chỉ tiêu“;
-- 000: „giao chỉ tiêu cụ thể cho từng cán bộ“): as of every business date of a plan's processing-time
-- target for a unit, each official of the unit with the dossiers handled in the target's window, how many
-- on time, the rate and the target it is held to. Officials' names: internal schema only.
with outcomes as (

    select * from {{ ref('int_handling_outcomes') }}

),

per_handler as (

    select
        business_date, plan_id, target_id, indicator_code, target_value, window_start, unit_code, handler_name,
        string_agg(distinct nullif(field_name, ''), '; ' order by nullif(field_name, ''))  as field_names,
        sum(dossiers_handled)::integer       as dossiers_handled,
        sum(dossiers_ended)::integer         as dossiers_ended,
        sum(dossiers_on_time)::integer       as dossiers_on_time,
        sum(dossiers_late)::integer          as dossiers_late,
        sum(dossiers_open_overdue)::integer  as dossiers_open_overdue
    from outcomes
    group by 1, 2, 3, 4, 5, 6, 7, 8

)

select
    per_handler.business_date,
    per_handler.plan_id,
    per_handler.target_id,
    per_handler.indicator_code,
    per_handler.unit_code,
    units.unit_name,
    per_handler.handler_name,
    per_handler.field_names,
    per_handler.window_start,
    per_handler.dossiers_handled,
    per_handler.dossiers_ended,
    per_handler.dossiers_on_time,
    per_handler.dossiers_late,
    per_handler.dossiers_open_overdue,
    round(100.0 * per_handler.dossiers_on_time / nullif(per_handler.dossiers_handled, 0), 2) as on_time_rate,
    per_handler.target_value,
    100.0 * per_handler.dossiers_on_time / nullif(per_handler.dossiers_handled, 0) >= per_handler.target_value
                                                                                         as is_met,
    case when per_handler.dossiers_handled = 0 then 'chưa có dữ liệu'
         when 100.0 * per_handler.dossiers_on_time / per_handler.dossiers_handled >= per_handler.target_value
         then 'đạt' else 'chưa đạt' end                                                 as status_vi
from per_handler
left join {{ ref('dim_units') }} as units using (unit_code)
