-- The lists the plans quote about a peer set, written out every business date, e.g. "02/08 địa phương
-- có tỷ lệ DVC trực tuyến dưới 50% gồm: xã Ea Tiêu (44,4%), xã Ea Ktur (29,9%)": one row per business
-- date × list (peer_lists) × peer set (a district, a province), with the count x, the peer count y,
-- the members with their rates (highest first) and the sentence (Vietnamese, decimal comma).
with lists as (

    select * from {{ ref('peer_lists') }}

),

members as (

    select
        ranks.business_date, lists.list_code, ranks.peer_set_unit_code, ranks.peer_set_name,
        ranks.unit_code, ranks.unit_name, ranks.value, ranks.peer_count,
        case lists.comparator
            when '<'  then ranks.value <  lists.threshold
            when '<=' then ranks.value <= lists.threshold
            when '>'  then ranks.value >  lists.threshold
            when '>=' then ranks.value >= lists.threshold
        end as is_listed
    from {{ ref('mart_peer_rankings') }} as ranks
    inner join lists
        on lists.indicator_code = ranks.measure_code and lists.period_type = ranks.period_type
       and lists.peer_set = ranks.peer_set

),

listed as (

    select
        business_date, list_code, peer_set_unit_code, peer_set_name,
        max(peer_count)                                               as peer_count,
        count(*) filter (where is_listed)                             as member_count,
        string_agg(unit_name || ' (' || replace(trim_scale(round(value, 1))::text, '.', ',') || '%)', ', '
                   order by value desc, unit_name) filter (where is_listed) as members_vi,
        array_agg(unit_code order by value desc, unit_name) filter (where is_listed) as member_unit_codes
    from members
    group by business_date, list_code, peer_set_unit_code, peer_set_name

)

select
    listed.business_date,
    listed.list_code,
    lists.indicator_code,
    lists.period_type,
    listed.peer_set_unit_code,
    listed.peer_set_name,
    listed.member_count,
    listed.peer_count,
    lpad(listed.member_count::text, 2, '0') || '/' || lpad(listed.peer_count::text, 2, '0') as count_text,
    lists.label_vi,
    listed.member_unit_codes,
    listed.members_vi,
    lpad(listed.member_count::text, 2, '0') || '/' || lpad(listed.peer_count::text, 2, '0') || ' '
        || lists.label_vi || coalesce(' gồm: ' || listed.members_vi, '')                 as sentence_vi
from listed
inner join lists using (list_code)
