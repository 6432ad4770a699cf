{#- Use the configured schema name as is (staging, marts, reference) rather than dbt's default
    "<target schema>_<custom schema>", so the warehouse layout is the same in every environment. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name | trim if custom_schema_name is not none else target.schema }}
{%- endmacro %}
