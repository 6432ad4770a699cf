"""Development tools kept apart from the pipeline: local Postgres, mail catcher, demo, local stack, Celery cluster, Superset server, free ports."""
