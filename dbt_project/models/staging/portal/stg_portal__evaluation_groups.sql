-- Every published unit × indicator group of every capture: what the capture publishes for the group (its
-- group score, its block, the block's sub-indicators) and the sum of the sub-scores it lists.
-- In the full form CKMB, MDSH and MDHL list their sub-indicators (`metrics`), TDGQ publishes its one
-- sub-indicator as the block, ONLINE and TTTT only a group rate and score. The national overview labels
-- ONLINE as CLGQ.
with units as (

    select * from {{ ref('stg_portal__evaluation_units') }}

),

groups as (

    select
        group_code as indicator_group,
        group_code in ('CKMB', 'MDSH', 'MDHL') as lists_sub_indicators
    from {{ ref('indicator_groups') }}

),

blocks as (

    select u.load_id, u.unit_code, split_part(block.key, '_', 1) as indicator_group, block.value as block
    from units as u
    cross join lateral jsonb_each(coalesce(u.component_indicators, '{}'::jsonb)) as block

)

select
    u.load_id,
    u.evaluated_on,
    u.province_code,
    u.period_type,
    u.period_year,
    u.period_number,
    u.unit_code,
    g.indicator_group,
    g.lists_sub_indicators,
    coalesce(u.group_scores ? g.indicator_group, false)
        or (g.indicator_group = 'ONLINE' and coalesce(u.group_scores ? 'CLGQ', false)) as group_score_published,
    coalesce(u.group_scores ->> g.indicator_group,
             case when g.indicator_group = 'ONLINE' then u.group_scores ->> 'CLGQ' end)::numeric as published_group_score,
    b.block is not null as block_published,
    (b.block ->> 'score')::numeric as block_score,
    coalesce(jsonb_typeof(b.block -> 'metrics') = 'array', false) as sub_indicators_published,
    (select sum((metric ->> 'score')::numeric)
     from jsonb_array_elements(case when jsonb_typeof(b.block -> 'metrics') = 'array' then b.block -> 'metrics' end)
          as metric) as sum_of_sub_scores
from units as u
cross join groups as g
left join blocks as b
    on b.load_id = u.load_id and b.unit_code = u.unit_code and b.indicator_group = g.indicator_group
