{#- The reporting periods of the index: every value exists as of each business date for the day, the
    month, the quarter and the year containing it (each "to date"; the year is the portal's
    year-to-date view). One place lists them. -#}
{% macro period_types() -%}
    {{ return(['day', 'month', 'quarter', 'year']) }}
{%- endmacro %}

{#- First day of the period of type `period_type` (a SQL expression) containing `day`. -#}
{% macro period_start(period_type, day) -%}
    date_trunc({{ period_type }}, {{ day }}::timestamp)::date
{%- endmacro %}

{#- The period types as a SQL relation with one column, period_type. -#}
{% macro period_types_relation() -%}
    (select unnest(array[{% for p in period_types() %}'{{ p }}'{{ "," if not loop.last }}{% endfor %}]) as period_type)
{%- endmacro %}

{#- Last day of the period of type `period_type` starting on `start`. -#}
{% macro period_end(period_type, start) -%}
    (({{ start }})::date + (case {{ period_type }} when 'quarter' then interval '3 months'
                                                else ('1 ' || {{ period_type }})::interval end)
                         - interval '1 day')::date
{%- endmacro %}

{#- The business dates: days whose dossier extract has been loaded. The as-of days of every fact. -#}
{% macro business_days() -%}
    select distinct business_date as as_of_date
    from {{ source('portal', 'load_ledger') }}
    where entity = 'dossiers' and status = 'loaded'
{%- endmacro %}

{#- Every day from the first business date (CTE `business_days`) to the last, so that running sums
    never skip a day's deltas. -#}
{% macro as_of_days(business_days_relation='business_days') -%}
    select day::date as as_of_date
    from generate_series((select min(as_of_date) from {{ business_days_relation }}),
                         (select max(as_of_date) from {{ business_days_relation }}), interval '1 day') as day
{%- endmacro %}
