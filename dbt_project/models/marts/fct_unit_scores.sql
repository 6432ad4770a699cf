{{ config(
    materialized='incremental',
    on_schema_change='append_new_columns',
    incremental_strategy='delete+insert',
    unique_key=['business_date', 'period_type', 'unit_code'],
    indexes=[{'columns': ['business_date', 'period_type', 'unit_code'], 'unique': true}, {'columns': ['built_at']}],
    pre_hook="{{ engine_prepare_incremental() }}"
) }}
-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_engine_changed_periods') }}
-- One row per business date × unit × period: the six group scores, the total, its class and the
-- unit's rank among its peers (inside its province: all units, units of its kind; inside its former
-- district until 30/6/2025; provinces nationally), with the change since the previous business date
-- and against the previous period.
--
-- Incremental (docs/engine-incremental.md): ranks compare every unit of a day and period type, so a
-- nightly build recomputes whole (business date, period type) slices: the new business dates, the days
-- fct_indicator_values recomputed in a reopened bucket, the next business date after each of those (its
-- change since the previous day) and, when a period's last day changed, the days of the following period
-- (their change against the previous period). Totals of the days referenced but not recomputed are read
-- back from the table.
{% set incremental = engine_is_incremental() %}
with {% if incremental %}business_days as (

    select distinct business_date
    from {{ source('portal', 'load_ledger') }}
    where entity = 'dossiers' and status = 'loaded'

),

changed_slices as materialized (

    select business_days.business_date, periods.period_type
    from business_days
    cross join {{ period_types_relation() }} as periods
    where not exists (select 1 from {{ this }} as built
                      where built.business_date = business_days.business_date and built.period_type = periods.period_type)

    union

    select business_days.business_date, reopened.period_type
    from (select period_type, period_start, min(first_changed_day) as reopen_from
          from {{ ref('int_engine_changed_periods') }} group by 1, 2) as reopened
    inner join business_days
        on business_days.business_date >= reopened.reopen_from
       and {{ period_start('reopened.period_type', 'business_days.business_date') }} = reopened.period_start

),

slices as materialized (

    select business_date, period_type from changed_slices

    union

    -- The next business date's change since the previous day.
    select next_day.business_date, changed_slices.period_type
    from changed_slices
    cross join lateral (select min(later.business_date) as business_date from business_days as later
                        where later.business_date > changed_slices.business_date) as next_day
    where next_day.business_date is not null

    union

    -- A period's last day changed: the following period's change against the previous period.
    select business_days.business_date, changed_slices.period_type
    from changed_slices
    inner join business_days
        on {{ period_start('changed_slices.period_type', 'business_days.business_date') }} = changed_slices.business_date + 1

),

previous_business_days as (

    select business_date, lag(business_date) over (order by business_date) as previous_business_date
    from business_days

),

values as (

    select *
    from {{ ref('fct_indicator_values') }}
    where (business_date, period_type) in (select business_date, period_type from slices)

),
{% else %}values as (

    select * from {{ ref('fct_indicator_values') }}

),
{% endif %}

groups as (

    select
        business_date, unit_code, period_type, period_start, period_end, rule_version,
        -- A null sub-score (0/0 under a "no score" policy) counts as 0 in its group (domain README §2).
        -- The groups of seed indicator_groups, spelt out because they are columns; the singular test
        -- fct_unit_scores_has_a_column_per_indicator_group fails the build if the two disagree.
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
{% if incremental %}
    ranked.total_score - coalesce(recomputed_previous_day.total_score, stored_previous_day.total_score)
                                                                        as change_since_previous_day,
    ranked.total_score - coalesce(previous_period.total_score, stored_previous_period.total_score) as change_since_previous_period,
{% else %}
    ranked.total_score - lag(ranked.total_score) over (
        partition by ranked.unit_code, ranked.period_type, ranked.period_start
        order by ranked.business_date)                                  as change_since_previous_day,
    ranked.total_score - previous_period.total_score                    as change_since_previous_period,
{% endif %}
    ranked.rule_version,
    {{ engine_built_at() }}                                             as built_at
from ranked
left join {{ ref('score_classes') }} as classes
    on ranked.total_score >= classes.min_total
   and (classes.max_total_exclusive is null or ranked.total_score < classes.max_total_exclusive)
left join ranked as previous_period
    on previous_period.unit_code = ranked.unit_code
   and previous_period.period_type = ranked.period_type
   and previous_period.business_date = ranked.period_start - 1
{% if incremental %}
left join {{ this }} as stored_previous_period
    on stored_previous_period.unit_code = ranked.unit_code
   and stored_previous_period.period_type = ranked.period_type
   and stored_previous_period.business_date = ranked.period_start - 1
   and (stored_previous_period.business_date, stored_previous_period.period_type)
       not in (select business_date, period_type from slices)
-- The previous business date's total in the same period: recomputed now, or as stored. Joins, not a
-- correlated look-up: a subquery on the `ranked` CTE per row has no index to use, and at a national
-- night (1.8M recomputed rows) it ran quadratically for hours.
left join previous_business_days
    on previous_business_days.business_date = ranked.business_date
left join ranked as recomputed_previous_day
    on recomputed_previous_day.unit_code = ranked.unit_code
   and recomputed_previous_day.period_type = ranked.period_type
   and recomputed_previous_day.period_start = ranked.period_start
   and recomputed_previous_day.business_date = previous_business_days.previous_business_date
left join {{ this }} as stored_previous_day
    on stored_previous_day.unit_code = ranked.unit_code
   and stored_previous_day.period_type = ranked.period_type
   and stored_previous_day.period_start = ranked.period_start
   and stored_previous_day.business_date = previous_business_days.previous_business_date
   and (stored_previous_day.business_date, stored_previous_day.period_type)
       not in (select business_date, period_type from slices)
{% endif %}
