-- One row per business date × unit × period: the six group scores, the total, its class and the
-- unit's rank among its peers (inside its province: all units, units of its kind; inside its former
-- district until 30/6/2025; provinces nationally), with the change since the previous business date
-- and against the previous period.
with values as (

    select * from {{ ref('fct_indicator_values') }}

),

groups as (

    select
        business_date, unit_code, period_type, period_start, period_end, rule_version,
        -- A null sub-score (0/0 under a "no score" policy) counts as 0 in its group (domain README §2).
        {% for group in ['CKMB', 'TDGQ', 'ONLINE', 'TTTT', 'MDSH', 'MDHL'] -%}
        coalesce(sum(score) filter (where is_scored and indicator_group = '{{ group }}'), 0) as {{ group | lower }}_score,
        {% endfor -%}
        coalesce(sum(score) filter (where is_scored), 0) as total_score
    from values
    group by business_date, unit_code, period_type, period_start, period_end, rule_version

),

units as (

    select * from {{ ref('dim_units') }}

),

memberships as (

    -- Province of each unit on each day (from the lineage: the province pooling it) and, until
    -- 30/6/2025, its district (the parent of its version in force).
    select
        days.business_date, days.unit_code,
        max(lineage.reporting_unit_code) filter (where ancestor.unit_kind = 'PROVINCE') as province_unit_code,
        max(versions.parent_unit_code) filter (where versions.parent_unit_kind = 'DISTRICT') as district_unit_code
    from (select distinct business_date, unit_code from groups) as days
    left join {{ ref('int_unit_lineage') }} as lineage
        on lineage.member_unit_code = days.unit_code
       and days.business_date >= lineage.window_from
       and (lineage.window_to is null or days.business_date <= lineage.window_to)
    left join units as ancestor on ancestor.unit_code = lineage.reporting_unit_code
    left join {{ ref('dim_unit_versions') }} as versions
        on versions.unit_code = days.unit_code
       and days.business_date >= versions.valid_from
       and (versions.valid_to is null or days.business_date <= versions.valid_to)
    group by days.business_date, days.unit_code

),

scored as (

    select
        groups.*,
        units.unit_kind,
        units.portal_code,
        memberships.province_unit_code,
        memberships.district_unit_code,
        -- Provinces are peers of every province; other units of the units of their province.
        case when units.unit_kind <> 'PROVINCE' then memberships.province_unit_code end as peer_province
    from groups
    inner join units using (unit_code)
    left join memberships using (business_date, unit_code)

),

ranked as (

    select
        scored.*,
        -- Ranks as the portal publishes them: total descending, ties broken by the unit's portal
        -- code (then its electronic id), so every rank is distinct and reproducible.
        case when unit_kind <> 'PROVINCE' then row_number() over (
            partition by business_date, period_type, peer_province, (unit_kind = 'PROVINCE')
            order by total_score desc, portal_code, unit_code) end                 as rank_in_province,
        case when unit_kind <> 'PROVINCE' then count(*) over (
            partition by business_date, period_type, peer_province, (unit_kind = 'PROVINCE')) end as province_peer_count,
        row_number() over (
            partition by business_date, period_type, peer_province, unit_kind
            order by total_score desc, portal_code, unit_code)                     as rank_in_kind,
        count(*) over (partition by business_date, period_type, peer_province, unit_kind) as kind_peer_count,
        case when district_unit_code is not null then row_number() over (
            partition by business_date, period_type, district_unit_code
            order by total_score desc, portal_code, unit_code) end                 as rank_in_district,
        case when district_unit_code is not null then count(*) over (
            partition by business_date, period_type, district_unit_code) end       as district_peer_count
    from scored

)

select
    ranked.business_date,
    ranked.unit_code,
    ranked.unit_kind,
    ranked.province_unit_code,
    ranked.district_unit_code,
    ranked.period_type,
    ranked.period_start,
    ranked.period_end,
    ranked.ckmb_score,
    ranked.tdgq_score,
    ranked.online_score,
    ranked.tttt_score,
    ranked.mdsh_score,
    ranked.mdhl_score,
    ranked.total_score,
    classes.class_code,
    classes.name_vi                                                     as class_name_vi,
    -- Provinces rank among provinces nationally; the other units inside their province.
    case when ranked.unit_kind = 'PROVINCE' then ranked.rank_in_kind else ranked.rank_in_province end as rank_in_peer_set,
    case when ranked.unit_kind = 'PROVINCE' then ranked.kind_peer_count else ranked.province_peer_count end as peer_count,
    ranked.rank_in_kind,
    ranked.kind_peer_count,
    ranked.rank_in_district,
    ranked.district_peer_count,
    ranked.total_score - lag(ranked.total_score) over (
        partition by ranked.unit_code, ranked.period_type, ranked.period_start
        order by ranked.business_date)                                  as change_since_previous_day,
    ranked.total_score - previous_period.total_score                    as change_since_previous_period,
    ranked.rule_version
from ranked
left join {{ ref('score_classes') }} as classes
    on ranked.total_score >= classes.min_total
   and (classes.max_total_exclusive is null or ranked.total_score < classes.max_total_exclusive)
left join ranked as previous_period
    on previous_period.unit_code = ranked.unit_code
   and previous_period.period_type = ranked.period_type
   and previous_period.business_date = ranked.period_start - 1
