{{ config(indexes=[{'columns': ['business_date', 'plan_id', 'unit_code', 'field_code'], 'unique': true}]) }}
-- Who did what, per section (plans 000, 001, 002: „nêu rõ tập thể … hoàn thành chỉ tiêu“): as of every
-- business date of a plan's processing-time target for a unit, each field of procedure (lĩnh vực) of the
-- unit with the dossiers handled in the target's window, how many on time, the rate and the target. No
-- official is named: published to reporting under the same row-level security as the other unit tables.
with per_field as (

    select
        business_date, plan_id, target_id, indicator_code, target_value, window_start, unit_code,
        field_code, max(field_name)                   as field_name,
        sum(dossiers_handled)::integer                as dossiers_handled,
        sum(dossiers_ended)::integer                  as dossiers_ended,
        sum(dossiers_on_time)::integer                as dossiers_on_time,
        sum(dossiers_late)::integer                   as dossiers_late,
        sum(dossiers_open_overdue)::integer           as dossiers_open_overdue
    from {{ ref('int_handling_outcomes') }}
    group by 1, 2, 3, 4, 5, 6, 7, 8

)

select
    per_field.business_date,
    per_field.plan_id,
    per_field.target_id,
    per_field.indicator_code,
    per_field.unit_code,
    units.unit_name,
    per_field.field_code,
    per_field.field_name,
    per_field.window_start,
    per_field.dossiers_handled,
    per_field.dossiers_ended,
    per_field.dossiers_on_time,
    per_field.dossiers_late,
    per_field.dossiers_open_overdue,
    round(100.0 * per_field.dossiers_on_time / nullif(per_field.dossiers_handled, 0), 2) as on_time_rate,
    per_field.target_value,
    100.0 * per_field.dossiers_on_time / nullif(per_field.dossiers_handled, 0) >= per_field.target_value as is_met,
    case when per_field.dossiers_handled = 0 then 'chưa có dữ liệu'
         when 100.0 * per_field.dossiers_on_time / per_field.dossiers_handled >= per_field.target_value
         then 'đạt' else 'chưa đạt' end                                                 as status_vi
from per_field
left join {{ ref('dim_units') }} as units using (unit_code)
