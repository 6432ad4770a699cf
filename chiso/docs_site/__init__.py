"""The docs site: dbt docs and Data Docs, built to work offline."""
