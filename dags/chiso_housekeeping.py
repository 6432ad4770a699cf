"""chiso_housekeeping: deletes what is past its retention, every morning.

- Landed extracts older than CHISO_LANDING_RETENTION_DAYS: they carry applicants' personal data in
  clear; the warehouse holds only pseudonyms, so once the retention has passed nothing needs them.
- The raw layer's monthly partitions lying entirely before CHISO_RAW_RETENTION_DAYS (0, the default:
  none), their loads marked purged in raw.load_ledger; and, first, next month's partitions are created
  so that the daily loads find theirs ready.
- The dbt tests that scan a change feed's whole history (tag history_scan: the staging views of
  dossiers, ratings and PAKN), kept off the nightly path because they grow with every day loaded.
- The quality gates' validation results, Data Docs pages and ops.validation_results rows older than
  CHISO_QUALITY_RETENTION_DAYS (the Data Docs index is rebuilt; ops.gate_runs is kept as the audit
  of what was published).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronTriggerTimetable, dag, task

from chiso.core import settings
from chiso.contract.model import PORTAL_TIMEZONE

TIMEZONE = pendulum.timezone(PORTAL_TIMEZONE)  # business days are Vietnam days


@dag(
    dag_id="chiso_housekeeping",
    description="Delete landed extracts, raw partitions and quality-gate records past their retention; test the change feeds' histories",
    schedule=CronTriggerTimetable("30 5 * * *", timezone=TIMEZONE),
    start_date=pendulum.parse(settings.require("CHISO_PIPELINE_START"), tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "data-engineering", "retries": 2, "retry_delay": timedelta(minutes=5),
                  "execution_timeout": timedelta(seconds=int(settings.require("CHISO_TASK_TIMEOUT_SECONDS")))},
    tags=["chiso", "housekeeping"],
    doc_md=__doc__,
)
def chiso_housekeeping():
    @task
    def purge_landing_zone() -> list[str]:
        from chiso.ingest.housekeeping import purge_landing

        removed = purge_landing(settings.landing_dir(), int(settings.require("CHISO_LANDING_RETENTION_DAYS")),
                                pendulum.now(TIMEZONE).date())
        return [str(path) for path in removed]

    @task
    def raw_partitions() -> dict:
        from chiso.ingest.housekeeping import create_partitions_ahead, purge_raw
        from chiso.core.warehouse import connect, ensure_schema

        today = pendulum.now(TIMEZONE).date()
        retention_days = int(settings.require("CHISO_RAW_RETENTION_DAYS"))
        ensure_schema()
        with connect() as conn:
            created = create_partitions_ahead(conn, today)
            purged = purge_raw(conn, retention_days, today) if retention_days else None
        return {"created": created, "dropped": purged.dropped if purged else [],
                "ledger_rows_purged": purged.ledger_rows if purged else 0}

    @task
    def purge_quality_gate_records() -> dict:
        from chiso.quality.gate_retention import purge_quality_records

        purged = purge_quality_records(int(settings.require("CHISO_QUALITY_RETENTION_DAYS")),
                                       pendulum.now(TIMEZONE).date())
        return {"cutoff": purged.cutoff.isoformat(), "files": purged.files,
                "validation_rows": purged.validation_rows}

    @task
    def check_history() -> None:
        from chiso.orchestration import pipeline

        pipeline.check_history()

    purge_landing_zone()
    raw_partitions()
    purge_quality_gate_records()
    check_history()


chiso_housekeeping()
