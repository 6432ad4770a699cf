-- The units each target of the registry applies to, and when: `unit:<code>` is that unit for its life;
-- `communes_of:<code>` every commune whose parent is <code> (a district or a province), for the
-- versions in which it is; `units_of:<code>` every unit whose parent is <code>. A code that is not in the
-- warehouse (unknown, placeholder UNKNOWN.*, or another world's) yields no rows: the target has no values.
with targets as (

    select
        target_id,
        split_part(unit_scope, ':', 1) as scope_kind,
        split_part(unit_scope, ':', 2) as scope_code
    from {{ ref('target_registry') }}

),

versions as (

    select unit_code, unit_kind, parent_unit_code, valid_from, valid_to from {{ ref('dim_unit_versions') }}

),

expanded as (

    select targets.target_id, units.unit_code, units.valid_from, units.valid_to
    from targets
    inner join {{ ref('dim_units') }} as units on units.unit_code = targets.scope_code
    where targets.scope_kind = 'unit'

    union all

    select targets.target_id, versions.unit_code, versions.valid_from, versions.valid_to
    from targets
    inner join versions
        on versions.parent_unit_code = targets.scope_code
       and (targets.scope_kind = 'units_of'
            or (targets.scope_kind = 'communes_of' and versions.unit_kind = 'COMMUNE'))

)

select
    target_id,
    unit_code,
    min(valid_from)                                           as member_from,
    nullif(max(coalesce(valid_to, date '9999-12-31')), date '9999-12-31') as member_to
from expanded
group by target_id, unit_code
