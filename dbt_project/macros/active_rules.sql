{#- The rule registry's rows of the active rule version (dbt var `rule_version`, default portal-2026):
    the one place that chooses which rules score. -#}
{% macro active_rules() -%}
    select * from {{ ref('rule_registry') }}
    where rule_version = '{{ var("rule_version", "portal-2026") }}'
{%- endmacro %}

{#- A registry row is in force on a day when the day lies within its valid_from..valid_to. -#}
{% macro rule_in_force(rule, day) -%}
    {{ day }} >= {{ rule }}.valid_from and ({{ rule }}.valid_to is null or {{ day }} <= {{ rule }}.valid_to)
{%- endmacro %}
