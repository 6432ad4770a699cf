-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_engine_changes') }}
-- The int_procedure_days rows of the changed dossiers' (unit, reception day) pairs as the previous build
-- stored them, kept before int_procedure_days recomputes those pairs: int_procedure_first_day_changes
-- and int_plan_procedure_first_day_changes compare them with the new rows to find which procedures'
-- first days can have moved. Empty on a complete rebuild.
{%- set columns = {'unit_code': 'text', 'cohort_date': 'date', 'procedure_code': 'text'} %}
{%- for feature in (procedure_features().keys() | list) + (plan_procedure_features().keys() | list) %}{% do columns.update({feature: 'boolean'}) %}{% endfor %}
{{ engine_previous_rows('int_procedure_days', 'cohorts', columns, kinds=['dossier']) }}
