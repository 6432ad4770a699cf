-- Each capture's published ranks against the published totals, within the population each rank was
-- published over. The portal ranks a unit among all the province's units (rank) and among the units of
-- its group (groupRank, AGENCY / COMMUNE): a rank is compared only when the capture holds that whole
-- population, as the capture itself declares it (an agency-only capture holds none of the ranks
-- published among all units). Otherwise the rank columns are null: not published over this capture.
-- Our rule: total descending; equal totals are ordered by unit code (the portal's own order of ties is
-- unexplained). A published rank follows the totals when it lies among the ranks its total occupies.
with captures as (

    select * from {{ ref('stg_portal__evaluation_captures') }}

),

units as (

    select
        u.*,
        c.form,
        c.unit_scope,
        count(*) over (partition by u.load_id) as units_in_capture,
        count(*) over (partition by u.load_id, u.unit_group) as group_units_in_capture,
        c.declared_units,
        case u.unit_group when 'AGENCY' then c.declared_agencies when 'COMMUNE' then c.declared_communes end
            as declared_group_units
    from {{ ref('stg_portal__evaluation_units') }} as u
    inner join captures as c using (load_id)

),

populations as (

    select
        *,
        published_rank is not null and unit_scope = 'all units'
            and coalesce(declared_units = units_in_capture, true) as rank_population_in_capture,
        published_group_rank is not null and unit_group is not null
            and case when unit_scope = 'all units' then coalesce(declared_group_units = group_units_in_capture, true)
                     else declared_group_units = group_units_in_capture end as group_rank_population_in_capture
    from units

),

ranked as (

    select
        *,
        row_number() over (partition by load_id order by published_total desc nulls last, unit_code) as rank_by_rule,
        rank() over (partition by load_id order by published_total desc nulls last) as first_rank_of_total,
        count(*) over (partition by load_id, published_total) as units_with_total,
        row_number() over (partition by load_id, unit_group
                           order by published_total desc nulls last, unit_code) as group_rank_by_rule,
        rank() over (partition by load_id, unit_group order by published_total desc nulls last) as first_group_rank_of_total,
        count(*) over (partition by load_id, unit_group, published_total) as group_units_with_total
    from populations

)

select
    load_id,
    evaluated_on,
    province_code,
    period_type,
    period_year,
    period_number,
    form,
    unit_code,
    unit_group,
    published_total,
    published_rank,
    published_group_rank,
    rank_population_in_capture,
    group_rank_population_in_capture,
    case when rank_population_in_capture then rank_by_rule end as rank,
    case when group_rank_population_in_capture then group_rank_by_rule end as group_rank,
    units_with_total > 1 as is_tied,
    group_units_with_total > 1 as is_tied_in_group,
    case when rank_population_in_capture then
        published_rank between first_rank_of_total and first_rank_of_total + units_with_total - 1
    end as rank_follows_totals,
    case when group_rank_population_in_capture then
        published_group_rank between first_group_rank_of_total and first_group_rank_of_total + group_units_with_total - 1
    end as group_rank_follows_totals,
    case when rank_population_in_capture then rank_by_rule = published_rank end as rank_matches,
    case when group_rank_population_in_capture then group_rank_by_rule = published_group_rank end as group_rank_matches
from ranked
