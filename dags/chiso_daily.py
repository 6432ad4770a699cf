"""chiso_daily: one business day from the portal's extract to the published nightly report.

fetch → land → load (each of the contract's 8 entities) → raw gate → dbt build (tests, source
freshness) → quality gate (staging, marts) → publish to the reporting schema → send report → record
publication (write-audit-publish: docs/quality.md)

* Schedule: 06:00 Asia/Ho_Chi_Minh, reporting on the previous day; catch-up fills missed days.
* Manual runs and backfills name the day: conf {"business_date": "YYYY-MM-DD"}.
* A day whose dossiers extract is empty is not published (docs/ingest.md); once the portal confirms
  the day really had none: conf {"business_date": "YYYY-MM-DD", "accept_empty_day": true}.
* CHISO_PORTAL_TRANSFER chooses how extracts are downloaded: pages (default) or whole-day files.
* CHISO_PORTAL_SOURCES (e.g. H15=/tinh/H15,H39=/tinh/H39) fetches the entities the contract slices by
  province in one slice per province: fetch_<entity>, land_<entity> and load_<entity> are then mapped
  tasks, one per province (shown by its code in the UI), which Celery workers share. Unset: one
  national extract per entity (docs/ingest.md, "Sources").
* A task that fails for good (a failed gate at once) e-mails the data engineers (chiso.orchestration.alerts);
  nothing is published and the reporting schema keeps the last good day.
* Every step is idempotent: re-running a day re-uses the landed extract, skips the identical load,
  rebuilds the same marts and sends nothing twice.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronTriggerTimetable, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from chiso.orchestration import alerts
from chiso.orchestration import pipeline
from chiso.core import settings
from chiso.contract.entities import ENTITIES
from chiso.contract.model import PORTAL_TIMEZONE

TIMEZONE = pendulum.timezone(PORTAL_TIMEZONE)  # business days are Vietnam days


@dag(
    dag_id="chiso_daily",
    description="Portal extract → raw → dbt → gate → nightly report, for one business day",
    schedule=CronTriggerTimetable("0 6 * * *", timezone=TIMEZONE),
    start_date=pendulum.parse(settings.require("CHISO_PIPELINE_START"), tz=TIMEZONE),
    catchup=True,
    max_active_runs=1,  # dbt rebuilds shared marts: days run one after the other
    default_args={
        "owner": "data-engineering",
        "retries": 3,
        "retry_delay": timedelta(seconds=int(settings.require("CHISO_RETRY_DELAY_SECONDS"))),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=15),
        # No task runs for ever, whatever a portal or a server does (a fetch has its own deadlines, below).
        "execution_timeout": timedelta(seconds=int(settings.require("CHISO_TASK_TIMEOUT_SECONDS"))),
        # Runs once a task has failed for good: an e-mail to the data engineers (chiso.orchestration.alerts).
        "on_failure_callback": alerts.task_failed,
    },
    params={
        "business_date": Param(None, type=["null", "string"], format="date",
                               description="Day to process (YYYY-MM-DD); empty = the day before the run"),
        "accept_empty_day": Param(False, type="boolean",
                                  description="Publish even though the day's dossiers extract is empty "
                                              "(only once the portal confirmed it)"),
    },
    tags=["chiso", "daily"],
    doc_md=__doc__,
)
def chiso_daily():
    @task
    def resolve_business_date() -> str:
        return pipeline.business_date_of_run(get_current_context()).isoformat()

    # The fetch's own entity-day deadline fails first, naming the URL; this stops anything it cannot see
    # (a stuck DNS look-up, urllib3's retries sleeping).
    # Each returns {"source": slice code, "path": ...}: the next task of the slice knows which it is.
    @task(execution_timeout=timedelta(seconds=int(settings.require("CHISO_PORTAL_DAY_DEADLINE_SECONDS")) + 600),
          map_index_template="{{ source_code }}")
    def fetch(entity: str, business_date: str, source: str = "national") -> dict:
        get_current_context()["source_code"] = source  # the mapped task's name in the UI: the province
        return {"source": source, "path": pipeline.fetch(entity, pendulum.parse(business_date).date(), source)}

    @task(map_index_template="{{ source_code }}")
    def land(entity: str, business_date: str, fetched: dict) -> dict:
        get_current_context()["source_code"] = fetched["source"]
        return {"source": fetched["source"],
                "path": pipeline.land(entity, pendulum.parse(business_date).date(), fetched["path"], fetched["source"])}

    @task(map_index_template="{{ source_code }}")
    def load(entity: str, business_date: str, landed: dict) -> dict:
        from chiso.ingest.validate import ContractError

        get_current_context()["source_code"] = landed["source"]
        try:
            return pipeline.load(entity, pendulum.parse(business_date).date(), landed["path"], landed["source"])
        except ContractError as mismatch:
            # The extract's shape broke the contract: retrying cannot help, a person must look.
            raise AirflowFailException(str(mismatch)) from None

    @task(retries=0)
    def raw_gate(business_date: str) -> str:
        from chiso.quality.gates import GateFailed

        accept_empty_day = bool(get_current_context()["params"].get("accept_empty_day"))
        try:
            return pipeline.raw_gate(pendulum.parse(business_date).date(), accept_empty_day)
        except (GateFailed, pipeline.EmptyExtract, pipeline.MissingSlice) as failure:
            # Bad data is not transient: fail at once, without retries, and build nothing on it.
            raise AirflowFailException(str(failure)) from None

    @task
    def dbt_build(business_date: str) -> None:
        pipeline.transform(pendulum.parse(business_date).date())

    @task(retries=0)
    def quality_gate(business_date: str) -> str:
        from chiso.quality.gates import GateFailed

        try:
            return pipeline.gate(pendulum.parse(business_date).date())
        except GateFailed as failure:
            # Bad data is not transient: fail at once, without retries, and publish nothing.
            raise AirflowFailException(str(failure)) from None

    @task
    def publish_reporting(business_date: str) -> dict:
        return pipeline.publish_reporting(pendulum.parse(business_date).date())

    @task
    def recipient_batches() -> list[dict]:
        return pipeline.recipient_batches()

    # One mapped task per batch of recipients: the workers of a Celery deployment share the night's mail.
    @task(map_index_template="{{ batch_label }}")
    def send_report(business_date: str, part: dict) -> dict:
        get_current_context()["batch_label"] = f"{part['batch']}/{part['batches']}"  # shown in the UI
        return pipeline.send_daily_report_batch(pendulum.parse(business_date).date(), part["batch"],
                                                part["batches"])

    @task
    def record_publication(business_date: str, deliveries: list[dict]) -> bool:
        return pipeline.publish(pendulum.parse(business_date).date(), list(deliveries))

    business_date = resolve_business_date()
    loads = []
    for entity in ENTITIES:  # fetch_units, land_units, load_units, ..., load_ratings
        sources = pipeline.sources_of(entity)
        if sources == ["national"]:  # one extract of the whole entity
            fetched = fetch.override(task_id=f"fetch_{entity}")(entity, business_date)
            landed = land.override(task_id=f"land_{entity}")(entity, business_date, fetched)
            loads.append(load.override(task_id=f"load_{entity}")(entity, business_date, landed))
            continue
        # One slice per province (CHISO_PORTAL_SOURCES): the same task ids, mapped over the provinces.
        fetched = fetch.override(task_id=f"fetch_{entity}").partial(
            entity=entity, business_date=business_date).expand(source=sources)
        landed = land.override(task_id=f"land_{entity}").partial(
            entity=entity, business_date=business_date).expand(fetched=fetched)
        loads.append(load.override(task_id=f"load_{entity}").partial(
            entity=entity, business_date=business_date).expand(landed=landed))
    raw_gated = raw_gate(business_date)
    loads >> raw_gated
    built = dbt_build(business_date)
    raw_gated >> built
    gated = quality_gate(business_date)
    built >> gated
    published = publish_reporting(business_date)
    gated >> published
    delivery = send_report.partial(business_date=business_date).expand(part=recipient_batches())
    published >> delivery
    record_publication(business_date, delivery)


chiso_daily()
