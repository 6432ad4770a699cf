-- depends_on: {{ ref('int_engine_run') }}
-- How this build changes int_indicator_deltas (macros/engine_changed_periods.sql): the changed dossiers'
-- event change (int_dossier_indicator_event_changes), and the PAKN and publication events of the changed
-- (unit, cohort day) pairs as recomputed now, minus the same pairs' events as the previous build stored
-- them (int_engine_previous_events), routed like int_indicator_deltas routes all events; plus the
-- procedure events of the first days this build moved (int_procedure_first_day_changes), new minus
-- old. Rows are non-zero changes per delta key, added to
-- int_indicator_deltas by its `additive` strategy. Empty on a complete rebuild.
with changed_feedback_pairs as (

    {{ engine_changed_pairs(['feedback']) }}

),

changed_publication_pairs as (

    {{ engine_changed_pairs(['publication']) }}

),

previous as (

    select * from {{ ref('int_engine_previous_events') }}

),

member_events as (

    -- The changed dossiers' contributions now minus before (already a difference).
    select * from {{ ref('int_dossier_indicator_event_changes') }}

    union all

    select events.*
    from {{ ref('int_feedback_indicator_events') }} as events
    inner join changed_feedback_pairs as pairs
        on pairs.unit_code = events.unit_code and pairs.cohort_date = events.cohort_date

    union all

    select unit_code, cohort_date, indicator_code, event_date, -numerator_delta, -denominator_delta
    from previous
    where source_kind in ('dossier', 'feedback')

),

province_events as (

    select events.*
    from {{ ref('int_publication_indicator_events') }} as events
    inner join changed_publication_pairs as pairs
        on pairs.unit_code = events.unit_code and pairs.cohort_date = events.cohort_date

    union all

    select unit_code, cohort_date, indicator_code, event_date, -numerator_delta, -denominator_delta
    from previous
    where source_kind = 'publication'

),

procedure_events as (

    -- The procedures' first days that this build moved: their events now, minus the same events before.
    select reporting_unit_code as unit_code, period_type, period_start, measure_code as indicator_code,
           event_date, numerator_delta, denominator_delta
    from ({{ procedure_first_day_events(ref('int_procedure_first_day_changes'), 'new_first_',
                                        procedure_indicator_sides()) }}) as now

    union all

    select reporting_unit_code, period_type, period_start, measure_code, event_date,
           numerator_delta, denominator_delta
    from ({{ procedure_first_day_events(ref('int_procedure_first_day_changes'), 'old_first_',
                                        procedure_indicator_sides(), sign=-1) }}) as before

),

{{ engine_routed_deltas('indicator_code', 'member_events', 'province_events', 'procedure_events', 'bigint') }}
