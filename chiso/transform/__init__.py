"""Transform: dbt runs, the rule populations, the target registry and the reconciliation with published forms."""
