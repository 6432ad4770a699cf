-- depends_on: {{ ref('int_dossier_cohorts') }}
-- The (reporting unit, period type, period) buckets an incremental build recomputes, and the first day
-- whose values can have changed in each (docs/engine-incremental.md): the changed items' cohort days
-- (int_engine_changes), routed like their events in int_indicator_deltas — a member's dossiers, ratings and PAKN
-- to every unit it reports to (int_unit_lineage, whatever the window: a wider set is harmless), a
-- province's publications to every unit of the province — into the day, month, quarter and year that
-- contain them. Every delta of an item takes effect on or after its cohort day, so nothing before
-- reopen_from changes. Empty when int_engine_run asks for a complete rebuild.
-- (Built after int_dossier_cohorts, so that every build that reaches the marts records the cohorts it
-- counted; int_engine_changes read the previous ones before.)
with changes as (

    select * from {{ ref('int_engine_changes') }}

),

routed as (

    select lineage.reporting_unit_code as unit_code, changes.cohort_date
    from changes
    inner join {{ ref('int_unit_lineage') }} as lineage on lineage.member_unit_code = changes.unit_code
    where changes.source_kind in ('dossier', 'feedback', 'rating')

    union

    select lineage.member_unit_code, changes.cohort_date
    from changes
    inner join {{ ref('int_unit_lineage') }} as lineage on lineage.reporting_unit_code = changes.unit_code
    where changes.source_kind = 'publication'

)

select
    routed.unit_code,
    periods.period_type,
    {{ period_start('periods.period_type', 'routed.cohort_date') }} as period_start,
    min(routed.cohort_date)                                          as reopen_from
from routed
cross join {{ period_types_relation() }} as periods
group by 1, 2, 3
