{#- fct_unit_scores spells its group columns out (ckmb_score, …), which cannot follow the seeds by
    themselves: every group of indicator_groups, and every group a scored indicator of rule_registry
    belongs to, must have its <group>_score column, and every <group>_score column a group, or a
    group's points would silently miss the total. Returns the mismatches (none while the table does not
    exist yet: a build that selects only the seeds has nothing to compare). -#}
{%- set scores = ref('fct_unit_scores') -%}
with score_columns as (

    select upper(substring(column_name from '^(.*)_score$')) as group_code
    from information_schema.columns
    where table_schema = '{{ scores.schema }}' and table_name = '{{ scores.identifier }}'
      and column_name like '%\_score' and column_name <> 'total_score'

),

seed_groups as (

    select group_code, 'indicator_groups' as seed from {{ ref('indicator_groups') }}
    union
    select distinct indicator_group, 'rule_registry' from {{ ref('rule_registry') }} where is_scored

)

select seed_groups.group_code, 'group of ' || seed_groups.seed || ' without a column' as problem
from seed_groups
left join score_columns using (group_code)
where score_columns.group_code is null
  and exists (select from score_columns)

union all

select score_columns.group_code, 'score column without a group in indicator_groups'
from score_columns
left join {{ ref('indicator_groups') }} as groups using (group_code)
where groups.group_code is null
