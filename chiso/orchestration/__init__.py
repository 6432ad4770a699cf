"""Orchestration: what the DAG tasks call (pipeline), alerts, backfill, status, the Airflow environment."""
