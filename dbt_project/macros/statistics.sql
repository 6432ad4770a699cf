{#- Post-hook of the intermediate and mart models: a table that this build created anew has no planner
    statistics until autovacuum gets to it, and the models after it in the same build would be planned on
    guesses. At a national night that turned fct_dossiers' join of ~350k changed dossiers with their
    ratings into a nested loop over both (estimated 200 rows each), re-running the ratings' index look-ups
    for every dossier. Incremental tables keep their statistics between builds. -#}
{% macro analyze_fresh_table() -%}
    {%- if config.get('materialized') == 'table' -%}
        analyze {{ this }}
    {%- endif -%}
{%- endmacro %}
