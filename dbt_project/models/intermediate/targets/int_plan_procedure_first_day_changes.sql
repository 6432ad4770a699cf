-- depends_on: {{ ref('int_engine_run') }}
-- How this build moves the first days of int_plan_procedure_first_days, from the changed dossiers' (unit,
-- reception day) pairs alone (macros/procedure_indicators.sql, procedure_first_day_changes): a gained
-- feature takes the earlier day, a key that lost one is recomputed from its members' days. Routed through
-- the lineage windows, as the plan metrics' member events are. Only keys whose first days changed, with
-- the old and new values: int_plan_procedure_first_days stores the new ones and
-- int_plan_metric_delta_changes turns both into changes of the procedure counts. Empty on a complete
-- rebuild.
{{ procedure_first_day_changes('int_plan_procedure_first_days', plan_procedure_first_day_features(), windowed=true) }}
