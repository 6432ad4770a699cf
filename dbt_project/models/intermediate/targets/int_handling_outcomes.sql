-- Who did what (issue #16 point 4): each dossier a unit decided or let run late, as of every business
-- date of a plan's processing-time target for that unit (ON_TIME, else the TDGQ group), with the
-- official who handled it and its field of procedure. The grain: business date × plan × unit × field ×
-- official, counts of dossiers. Read by mart_handler_attainment (internal) and mart_field_attainment.
--
-- As of day D, over the target's window [window_start, D], a dossier counts when
--   * its processing ended in the window: on time if it ended on/before its effective due date with at
--     most one supplement request (fct_dossiers.is_ended_on_time), else late;
--   * or it is still open at the end of D and became overdue in the window (overdue_from_date): late.
-- Open dossiers not yet due are not counted: nobody has met or missed anything with them yet.
-- The official is the one of the dossier's latest processing step (status 4, 5 or 9 of the process
-- log): who finished it, or who holds it.
with targets as (

    -- One processing-time target per plan and unit: ON_TIME when the plan sets it, else TDGQ.
    select distinct on (business_date, plan_id, unit_code)
        business_date, plan_id, unit_code, target_id, indicator_code, target_value, window_start
    from {{ ref('mart_target_attainment') }}
    where indicator_code in ('ON_TIME', 'TDGQ') and comparator in ('>=', '>')
    order by business_date, plan_id, unit_code, (indicator_code = 'ON_TIME') desc, target_id

),

handlers as (

    select distinct on (dossier_code) dossier_code, handler_name
    from {{ ref('stg_portal__process_steps') }}
    where is_processing_step
    order by dossier_code, step_number desc

),

fields as (

    select field_code, max(field_name) as field_name
    from {{ ref('dim_procedures') }}
    group by field_code

),

dossiers as (

    select
        dossiers.dossier_code,
        dossiers.unit_code,
        coalesce(dossiers.field_code, '')                           as field_code,
        coalesce(handlers.handler_name, 'Không ghi người xử lý')    as handler_name,
        dossiers.ended_date,
        dossiers.is_ended_on_time,
        dossiers.overdue_from_date
    from {{ ref('fct_dossiers') }} as dossiers
    left join handlers using (dossier_code)
    where dossiers.is_received
      and dossiers.unit_code in (select unit_code from targets)
      and (dossiers.ended_date >= (select min(window_start) from targets)
           or dossiers.overdue_from_date >= (select min(window_start) from targets))

),

counted as (

    select
        targets.business_date,
        targets.plan_id,
        targets.target_id,
        targets.indicator_code,
        targets.target_value,
        targets.window_start,
        dossiers.unit_code,
        dossiers.field_code,
        dossiers.handler_name,
        -- coalesce: a dossier still open has no ended_date, and a null here would drop it from
        -- every count below instead of counting it as open and late.
        coalesce(dossiers.ended_date between targets.window_start and targets.business_date, false)
                                                                                  as is_ended,
        coalesce(dossiers.ended_date between targets.window_start and targets.business_date
                 and dossiers.is_ended_on_time, false)                            as is_on_time
    from targets
    inner join dossiers
        on dossiers.unit_code = targets.unit_code
       and (dossiers.ended_date between targets.window_start and targets.business_date
            or (dossiers.overdue_from_date between targets.window_start and targets.business_date
                and (dossiers.ended_date is null or dossiers.ended_date > targets.business_date)))

)

select
    counted.business_date,
    counted.plan_id,
    counted.target_id,
    counted.indicator_code,
    counted.target_value,
    counted.window_start,
    counted.unit_code,
    counted.field_code,
    fields.field_name,
    counted.handler_name,
    count(*)                                               as dossiers_handled,
    count(*) filter (where counted.is_ended)               as dossiers_ended,
    count(*) filter (where counted.is_on_time)             as dossiers_on_time,
    count(*) filter (where not counted.is_on_time)         as dossiers_late,
    count(*) filter (where not counted.is_ended)           as dossiers_open_overdue
from counted
left join fields using (field_code)
group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
