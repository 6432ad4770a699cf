"""The demo: the whole product on this machine, end to end.

    .venv/bin/chiso demo [--days 2024-11-14 --days 15/11/2024]      (make demo)

Starts what it needs under CHISO_HOME (default ./.work): a local PostgreSQL (unless CHISO_WAREHOUSE_URL
names one), the portal simulator, a mail catcher, an Airflow home and its metadata database. Then, with
the real DAGs (``airflow dags test``):

* 14/11/2024 and 15/11/2024, the eve and first day of Cư Kuin's 60-day campaign: published, the nightly
  e-mails sent, each day's indicator table printed;
* 16/11/2024, a day the portal spoils (the simulator's ``malformed_dates`` fault on 30% of the dossiers):
  the raw gate blocks it, nothing is published, the data engineers get the alert;
* 17–23/11/2024 loaded without Airflow (``chiso.orchestration.backfill``: the same fetch → land → load), so that the
  demo reaches the campaign's tenth day in seconds rather than seven more DAG runs;
* 24/11/2024, the campaign's tenth day: published, then ``chiso_periodic_reports`` sends the first
  10-day campaign report with its Excel annex.

It ends with ``chiso status`` and says where everything is: the e-mails, the Excel annex, Data Docs, dbt
docs and the warehouse, which it leaves running. Running it again re-uses what the last run left and
says so: the extracts, the loads, the e-mails (none is sent twice).
"""

from __future__ import annotations

import email
import email.policy
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from chiso.core import settings
from chiso.dev.local_stack import PERIODIC_DAG, LocalStack
from chiso.cli.progress import Progress

CAMPAIGN_REPORT_DAY = date(2024, 11, 24)
GATE_FAILURE_DAY = date(2024, 11, 16)
# The simulator spoils the dates of 30% of that day's dossiers: the loader quarantines them and the
# raw gate blocks the day (quarantined share over 10%, docs/quality.md).
GATE_FAILURE_FAULT = f"{GATE_FAILURE_DAY}/dossiers=malformed_dates:rate=0.3"


@dataclass(frozen=True)
class DemoDay:
    business_date: date
    what: str
    through_airflow: bool = True
    expect_failure: bool = False
    campaign_report: bool = False


DEMO_DAYS = [
    DemoDay(date(2024, 11, 14), "the eve of Cư Kuin's 60-day campaign"),
    DemoDay(date(2024, 11, 15), "the campaign's first day"),
    DemoDay(GATE_FAILURE_DAY, "a day the portal spoils: its raw gate fails and the data engineers get the alert",
            expect_failure=True),
    *(DemoDay(date(2024, 11, d), "loaded without Airflow, to reach the report day", through_airflow=False)
      for d in range(17, 24)),
    DemoDay(CAMPAIGN_REPORT_DAY, "the campaign's tenth day: its first 10-day report, with the Excel annex",
            campaign_report=True),
]


def _cli() -> str:
    from chiso.core.settings import cli_path

    return cli_path()


def _print_report(progress: Progress, warehouse_url: str, day: date) -> None:
    from chiso.reports.daily import build_daily_report, format_rate

    report = build_daily_report(day, warehouse_url)
    names = [indicator.name_vi for indicator in report.indicators]
    progress.line(f"\n    {'Đơn vị':<26}" + "".join(f"{name[:32]:>34}" for name in names))
    for unit in report.units:
        cells = "".join(
            f"{format_rate(v.rate) + f' ({v.numerator}/{v.denominator})':>34}"
            for v in (unit.values[i.code] for i in report.indicators))
        progress.line(f"    {unit.unit_name:<26}{cells}")
    progress.line()


def _load_without_airflow(stack: LocalStack, days: list[date]) -> None:
    from chiso.orchestration.backfill import backfill
    from chiso.dev.local_stack import pseudonym_key

    progress = stack.progress
    todo = [day for day in days if stack.loaded_entities(day) == 0]
    if len(todo) < len(days):
        progress.step(f"{len(days) - len(todo)} day(s) of {days[0]}…{days[-1]} already loaded on an earlier run: re-used")
    for day in todo:
        started = time.time()
        loaded = backfill(stack.warehouse_url, settings.require("CHISO_SIMULATOR_SCENARIO"), [day],
                          landing_root=settings.landing_dir(), pseudonym_key=pseudonym_key(stack.home)[0],
                          portal_url=stack.simulator.url, portal_token=stack.simulator.token)
        rows, seconds = sum(loaded.values()), time.time() - started
        progress.step(f"{day}: loaded without Airflow (fetch → land → load, no gates, nothing published): "
                      f"{rows:,} rows in {seconds:.0f} s ({rows / max(seconds, 1e-9):,.0f} rows/s)")


def _mail_summary(progress: Progress, folder: Path, home: Path) -> list[Path]:
    """Every message the catcher holds, one line each; the campaign reports' Excel annexes saved beside."""
    progress.step(f"e-mails caught by the local SMTP server (.eml files, open them with any mail client): {folder}")
    annexes = []
    for path in sorted(folder.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        attachments = [part for part in message.iter_attachments() if str(part.get_filename() or "").endswith(".xlsx")]
        campaign = str(message.get("X-Chiso-Publication", "")).startswith("campaign/")
        for part in attachments if campaign else []:
            target = home / "reports" / str(part.get_filename())
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(part.get_content())
            if target not in annexes:
                annexes.append(target)
        marker = "  + Excel annex" if attachments else ""
        marker += "  [campaign report]" if campaign else ""
        progress.line(f"    {path.name}  {path.stat().st_size // 1024:>4} KB  {str(message['To']):<34} "
                      f"{message['Subject']}{marker}")
    return annexes


def run_demo(days: list[date] | None = None) -> int:
    from chiso.docs_site import site as docs_site
    from chiso.core.settings import data_docs_dir
    from chiso.orchestration.status import day_status, status_table

    progress = Progress()
    plan = [d for d in DEMO_DAYS] if not days else [DemoDay(day, "a day you asked for") for day in days]
    home = settings.home().resolve()
    started = time.time()
    with LocalStack(home, progress, faults=GATE_FAILURE_FAULT) as stack:
        unexpected = []
        gap = [d.business_date for d in plan if not d.through_airflow]
        for day in plan:
            if not day.through_airflow:
                if day.business_date == gap[0]:
                    _load_without_airflow(stack, gap)
                continue
            progress.step(f"{day.business_date}: {day.what}")
            run = stack.run_day(day.business_date)
            if run.succeeded:
                _print_report(progress, stack.warehouse_url, day.business_date)
            elif day.expect_failure:
                progress.step(f"{day.business_date} failed as the demo meant it to: the alert went to the data "
                              f"engineers (data_engineering in {settings.require('CHISO_RECIPIENTS_FILE')})")
            else:
                unexpected.append(day.business_date)
                progress.step(f"the run for {day.business_date} FAILED; its log: {run.log}")
            if day.campaign_report and run.succeeded:
                stack.run_day(day.business_date, dag_id=PERIODIC_DAG)

        progress.line()
        progress.console.print(status_table(day_status(url=stack.warehouse_url)))
        annexes = _mail_summary(progress, stack.mail.folder, home)
        for annex in annexes:
            progress.step(f"a campaign report's Excel annex: {annex}")
        progress.step(f"Data Docs (every gate run, its expectations and failures): {data_docs_dir() / 'index.html'}")
        docs_started = time.time()
        try:
            site = docs_site.build(stack.warehouse_url)
            progress.step(f"dbt docs and Data Docs, built in {time.time() - docs_started:.0f} s: {site}; serve them: "
                          f"{_cli()} docs serve")
        except Exception as exc:  # noqa: BLE001 - the docs are a bonus; the demo's runs are done
            progress.step(f"dbt docs could not be built ({exc}); try: {_cli()} docs build")
        last = plan[-1].business_date
        progress.step(f"a report as its recipient sees it, as a web page with its charts: {_cli()} reports render "
                      f"--date {last} --to chutich@eaktur.example.vn --out {home / 'reports'}")
        progress.step(f"landing zone: {settings.landing_dir()}")
        progress.step(f"what each day did, again: {_cli()} status")
        if stack.uses_local_pg:
            progress.step(f"warehouse (left running): psql {stack.warehouse_url}  (schemas raw, staging, marts, "
                          f"reporting, reference, ops); stop it: {_cli()} warehouse stop; start it again: "
                          f"{_cli()} warehouse start")
        else:
            progress.step(f"warehouse: {settings.mask_url(stack.warehouse_url)} (CHISO_WAREHOUSE_URL)")
        progress.step(f"the demo took {time.time() - started:.0f} s; its logs: {home / 'logs'}")
    return 1 if unexpected else 0
