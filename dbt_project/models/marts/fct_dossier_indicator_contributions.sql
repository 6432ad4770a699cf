-- A view: a few rows per dossier, read whole by a complete build of int_dossier_indicator_events and
-- filtered by unit when explaining.
{{ config(materialized='view') }}

-- What each received dossier contributes to each dossier-based sub-indicator, and from which day, and
-- the answer to "which dossiers make this number" (see the explain_indicator macro and docs/engine.md).
-- The rules themselves are in macros/dossier_contributions.sql, the one implementation of each rule in
-- rule_registry.csv, shared with the nightly build's int_dossier_indicator_event_changes.
select dossier_code, unit_code, cohort_date, indicator_code, event_date, numerator_delta, denominator_delta
from ({{ dossier_contributions(ref('fct_dossiers')) }}) as contributions
