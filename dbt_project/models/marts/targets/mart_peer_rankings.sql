-- Ranks "x/y" inside each peer set, as the plans quote them ("đứng thứ 5/15", "xã Ea Ktur đứng thứ tám
-- toàn huyện (62.6%)"): per business date × period × unit × measure × peer set. Measures: the total
-- score (ranks of fct_unit_scores, which break ties by portal code) and the sub-indicators named in
-- peer_lists (ranked by rate, descending; equal rates share a rank). Peer sets: district (the communes
-- of one district, until 30/6/2025), province_communes, province_units (every unit of the province but
-- itself; for totals, fct_unit_scores' own peer sets).
--
-- Incremental: a build recomputes the (business date, period) slices fct_unit_scores wrote since this
-- table was last built (built_at; fct_unit_scores recomputes a slice whenever one of its values
-- changed, and a change of peer_lists makes the engine rebuild everything), so a night costs its own
-- slices, not the history.
{{ config(
    materialized='incremental',
    on_schema_change='append_new_columns',
    incremental_strategy='delete+insert',
    unique_key=['business_date', 'period_type'],
    indexes=[{'columns': ['business_date', 'period_type', 'unit_code']}, {'columns': ['built_at']}]
) }}
with changed_slices as (

    select distinct business_date, period_type
    from {{ ref('fct_unit_scores') }}
    {% if is_incremental() %}
    where built_at > (select coalesce(max(built_at), '-infinity') from {{ this }})
    {% endif %}

),

scores as (

    select scores.*
    from {{ ref('fct_unit_scores') }} as scores
    inner join changed_slices using (business_date, period_type)

),

units as (

    select unit_code, unit_kind, regexp_replace(unit_name, '^UBND ', '') as display_name from {{ ref('dim_units') }}

),

total_ranks as (

    select business_date, period_type, unit_code, 'TOTAL' as measure_code, 'district' as peer_set,
           district_unit_code as peer_set_unit_code, total_score as value, rank_in_district as rank,
           district_peer_count as peer_count
    from scores where rank_in_district is not null
    union all
    select business_date, period_type, unit_code, 'TOTAL', 'province_kind', province_unit_code,
           total_score, rank_in_kind, kind_peer_count
    from scores where rank_in_kind is not null
    union all
    select business_date, period_type, unit_code, 'TOTAL', 'province_units', province_unit_code,
           total_score, rank_in_peer_set, peer_count
    from scores where rank_in_peer_set is not null

),

ranked_pairs as (

    select distinct indicator_code, period_type from {{ ref('peer_lists') }}

),

indicator_members as (

    select values.business_date, values.period_type, values.unit_code, values.indicator_code, values.rate,
           peers.peer_set, peers.peer_set_unit_code
    from {{ ref('fct_indicator_values') }} as values
    inner join ranked_pairs
        on ranked_pairs.indicator_code = values.indicator_code and ranked_pairs.period_type = values.period_type
    inner join scores
        on scores.business_date = values.business_date and scores.unit_code = values.unit_code
       and scores.period_type = values.period_type
    inner join units on units.unit_code = values.unit_code
    cross join lateral (values
        ('district', case when units.unit_kind = 'COMMUNE' then scores.district_unit_code end),
        ('province_communes', case when units.unit_kind = 'COMMUNE' then scores.province_unit_code end),
        ('province_units', case when units.unit_kind <> 'PROVINCE' then scores.province_unit_code end)
    ) as peers (peer_set, peer_set_unit_code)
    where peers.peer_set_unit_code is not null

),

indicator_ranks as (

    select business_date, period_type, unit_code, indicator_code as measure_code, peer_set, peer_set_unit_code,
           rate as value,
           case when rate is not null then rank() over same_peers end as rank,
           count(*) over (partition by business_date, period_type, indicator_code, peer_set, peer_set_unit_code)
               as peer_count
    from indicator_members
    window same_peers as (
        partition by business_date, period_type, indicator_code, peer_set, peer_set_unit_code
        order by rate desc nulls last)

),

ranks as (

    select * from total_ranks
    union all
    select * from indicator_ranks

)

select
    ranks.business_date,
    ranks.period_type,
    ranks.unit_code,
    units.display_name                                            as unit_name,
    ranks.measure_code,
    ranks.peer_set,
    ranks.peer_set_unit_code,
    peer_set.display_name                                         as peer_set_name,
    ranks.value,
    ranks.rank,
    ranks.peer_count,
    ranks.rank || '/' || ranks.peer_count                         as rank_text,
    case when ranks.rank is not null
         then 'đứng thứ ' || ranks.rank || '/' || ranks.peer_count end as rank_phrase_vi,
    {{ engine_built_at() }}                                       as built_at
from ranks
left join units on units.unit_code = ranks.unit_code
left join units as peer_set on peer_set.unit_code = ranks.peer_set_unit_code
