"""chiso_periodic_reports: the campaign reports the plans require, on the days they fall due.

resolve business date → wait for that day's nightly report to be published → which reports are due
→ send them (each with its Excel annex and printable HTML), once per recipient

* Schedule: 07:00 Asia/Ho_Chi_Minh (an hour after chiso_daily), about the previous day; catch-up and
  backfills work like chiso_daily's. Manual runs name the day: conf {"business_date": "YYYY-MM-DD"}.
* Which reports are due comes from the target registry's campaign windows and the plans' rhythm
  (seed targets/target_plans.csv: every 10 days, interim on day 30 or 50, final on day 60 or 100). A
  report the plan wants "trước ngày X" is due on its data cut-off (seed targets/report_deadlines.csv,
  X - 2 at the latest), so this run, the morning after, delivers it before X.
* The sensor waits for ops.publications to hold the day's nightly report, so a day that failed its
  gate produces no campaign report either.
* Exactly once: ops.report_deliveries keys every (report, period, recipient); re-runs and backfills
  send nothing twice. An SMTP outage fails the send task after its retries, loudly, with nothing
  recorded for the recipients not served.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronTriggerTimetable, Param, PokeReturnValue, dag, get_current_context, task

from chiso.orchestration import pipeline
from chiso.core import settings
from chiso.contract.model import PORTAL_TIMEZONE

TIMEZONE = pendulum.timezone(PORTAL_TIMEZONE)


@dag(
    dag_id="chiso_periodic_reports",
    description="Campaign reports (every 10 days, interim, final) with their Excel annex, once the day is published",
    schedule=CronTriggerTimetable("0 7 * * *", timezone=TIMEZONE),
    start_date=pendulum.parse(settings.require("CHISO_PIPELINE_START"), tz=TIMEZONE),
    catchup=True,
    max_active_runs=1,
    default_args={
        "owner": "data-engineering",
        "retries": 3,
        "retry_delay": timedelta(seconds=int(settings.require("CHISO_RETRY_DELAY_SECONDS"))),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=15),
        # No task runs for ever, whatever a portal or a server does (a fetch has its own deadlines, below).
        "execution_timeout": timedelta(seconds=int(settings.require("CHISO_TASK_TIMEOUT_SECONDS"))),
    },
    params={
        "business_date": Param(None, type=["null", "string"], format="date",
                               description="Day whose due reports to send (YYYY-MM-DD); empty = the day before the run"),
    },
    tags=["chiso", "reports"],
    doc_md=__doc__,
)
def chiso_periodic_reports():
    @task
    def resolve_business_date() -> str:
        return pipeline.business_date_of_run(get_current_context()).isoformat()

    @task.sensor(poke_interval=300, timeout=12 * 3600, mode="reschedule")
    def wait_for_daily_publication(business_date: str) -> PokeReturnValue:
        done = pipeline.daily_report_published(pendulum.parse(business_date).date())
        return PokeReturnValue(is_done=done, xcom_value=business_date)

    @task
    def due_reports(business_date: str) -> list[str]:
        return pipeline.campaign_reports_due(pendulum.parse(business_date).date())

    @task
    def send_campaign_reports(business_date: str, due: list[str]) -> dict:
        if not due:
            return {}
        return pipeline.send_campaign_reports(pendulum.parse(business_date).date())

    business_date = wait_for_daily_publication(resolve_business_date())
    send_campaign_reports(business_date, due_reports(business_date))


chiso_periodic_reports()
