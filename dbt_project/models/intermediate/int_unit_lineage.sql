-- Whose dossiers count for whom, and when: one row per (member unit, reporting unit, as-of window).
-- A unit counts its own dossiers; a province counts its units' pooled population while they are its
-- units (through their district until 30/6/2025); a district (until 30/6/2025) is scored on its own
-- dossiers like a department — its communes are its peers for ranking, not its population; a successor of the 1/7/2025 reorganisation counts
-- its former units' history in every report whose as-of date falls in the successor's life, so a
-- 2024 dossier of a merged commune counts for that commune in 2024 and for its successor in any
-- period that spans the change.
with recursive unit_versions as (

    select
        unit_code, parent_unit_code, unit_kind, valid_from, valid_to,
        -- A window over the catalogue, not a correlated lookup per version (which read the whole
        -- catalogue once per version).
        lead(valid_from) over (partition by unit_code order by valid_from) is not null as has_later_version
    from {{ ref('stg_portal__units') }}

),

unit_spans as (

    select
        unit_code,
        min(valid_from)                                       as valid_from,
        -- null (still in force) sorts last: coalesce to a far date, restore below.
        max(coalesce(valid_to, date '9999-12-31'))            as valid_to
    from unit_versions
    group by unit_code

),

parent_edges as (

    -- A unit version says who its parent was during that version. The parent keeps the unit's history
    -- for good unless the unit moved on to another version (another parent) while alive: a unit that
    -- ceased as its parent's child (a district dissolved on 30/6/2025) still counts in the parent's
    -- year to date afterwards.
    select
        version.unit_code                                     as from_unit_code,
        version.parent_unit_code                              as to_unit_code,
        greatest(version.valid_from, parent.valid_from)       as window_from,
        case when version.has_later_version then version.valid_to else date '9999-12-31' end as window_to
    from unit_versions as version
    inner join unit_spans as parent on parent.unit_code = version.parent_unit_code

),

successor_edges as (

    select
        crosswalk.former_unit_code                            as from_unit_code,
        crosswalk.successor_unit_code                         as to_unit_code,
        greatest(crosswalk.effective_date, successor.valid_from) as window_from,
        successor.valid_to                                    as window_to
    from {{ ref('stg_portal__unit_crosswalk') }} as crosswalk
    inner join unit_spans as successor on successor.unit_code = crosswalk.successor_unit_code

),

edges as (

    select 'parent' as edge_kind, * from parent_edges
    union all
    select 'successor' as edge_kind, * from successor_edges

),

lineage (member_unit_code, reporting_unit_code, window_from, window_to, depth) as (

    -- A unit's own history: open-ended (the unit leaves the spine when it ceases).
    select unit_code, unit_code, valid_from, date '9999-12-31', 0
    from unit_spans

    union all

    -- A parent edge holds while both the path so far and the edge hold: intersect the windows.
    -- A successor takes over its former unit's history for the successor's whole life.
    select
        lineage.member_unit_code,
        edge.to_unit_code,
        case edge.edge_kind when 'parent' then greatest(lineage.window_from, edge.window_from)
                            else edge.window_from end,
        case edge.edge_kind when 'parent' then least(lineage.window_to, edge.window_to)
                            else edge.window_to end,
        lineage.depth + 1
    from lineage
    inner join edges as edge on edge.from_unit_code = lineage.reporting_unit_code
    where lineage.depth < 8
      and (edge.edge_kind = 'successor'
           or greatest(lineage.window_from, edge.window_from) <= least(lineage.window_to, edge.window_to))

),

windows as (

    -- Merge the windows of the same pair reached by different paths (a commune reaches its province
    -- through its district until 30/6/2025 and through its successor after), so nothing counts twice.
    select
        member_unit_code, reporting_unit_code, window_from, window_to,
        case when window_from <= max(window_to) over (
                 partition by member_unit_code, reporting_unit_code order by window_from, window_to
                 rows between unbounded preceding and 1 preceding) + 1
             then 0 else 1 end                                as starts_island
    from (select distinct member_unit_code, reporting_unit_code, window_from, window_to from lineage) as paths

),

islands as (

    select *, sum(starts_island) over (
        partition by member_unit_code, reporting_unit_code order by window_from, window_to) as island
    from windows

)

select
    islands.member_unit_code,
    islands.reporting_unit_code,
    min(islands.window_from)                                  as window_from,
    nullif(max(islands.window_to), date '9999-12-31')         as window_to
from islands
where islands.member_unit_code = islands.reporting_unit_code
   or islands.reporting_unit_code not in (select unit_code from unit_versions where unit_kind = 'DISTRICT')
group by islands.member_unit_code, islands.reporting_unit_code, islands.island
