{#- The data tests of an incremental mart check the rows its latest build wrote.

    fct_dossiers, fct_indicator_values and fct_unit_scores carry built_at, the dbt build that wrote each
    row (macro engine_built_at). A nightly build rewrites only the night's rows; testing all of history
    every night would cost more than the build itself (tens of millions of rows at national scale) and
    check again rows that passed when they were written. A complete rebuild writes every row, so it is
    tested whole. Uniqueness across all rows is also held by the marts' unique indexes.

    This overrides dbt's default of the same name (dispatched from get_where_subquery): a test's own
    `where` config still wins. -#}
{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if not where and execute and relation is not none and relation.identifier is defined -%}
        {%- set columns = adapter.get_columns_in_relation(relation) | map(attribute='name') | list -%}
        {%- if 'built_at' in columns -%}
            {%- set where = "built_at = (select max(built_at) from " ~ relation ~ ")" -%}
        {%- endif -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
