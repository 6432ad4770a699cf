"""Alerts that reach a person: a failed task or gate of the daily DAG e-mails the data engineers.

``task_failed`` is the DAG's ``on_failure_callback`` (it runs once a task has failed for good, after its
retries). The alert names the DAG, the business date, the task and what failed: for a gate, every
failed expectation with sample failing values and the Data Docs pages of the run (the gate's message
carries them); for any other task, the error. It goes to the data engineers listed under
``data_engineering`` in the recipients file (CHISO_RECIPIENTS_FILE):

    data_engineering:
      - email: dulieu@chiso.example.vn
        name: Nhóm kỹ thuật dữ liệu

The report recipients get nothing, or, when CHISO_REPORT_HOLD_NOTICE is ``notice``, once per day a
short notice in Vietnamese that today's figures are being checked (``HOLD_NOTICE_SUBJECT``). Once
the data is fixed, re-running the day publishes normally.

An alert that cannot be sent is logged and never raised: the task has failed already, and a second
error would only hide the first.
"""

from __future__ import annotations

import html
import logging
import unicodedata
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from chiso.core import settings

log = logging.getLogger(__name__)

HOLD_NOTICE_CODE = "chiso_daily_hold_notice"
WARNING_NOTICE_CODE = "chiso_daily_warning_notice"
HOLD_NOTICE_SUBJECT = unicodedata.normalize("NFC", "Số liệu hôm nay đang được kiểm tra")


@dataclass(frozen=True)
class Engineer:
    email: str
    name: str


def data_engineers(path: Path | None = None) -> list[Engineer]:
    """The ``data_engineering`` list of the recipients file (empty if there is none)."""
    path = Path(path or settings.require("CHISO_RECIPIENTS_FILE"))
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        log.error("Cannot read %s for the data engineers' addresses: %s", path, exc)
        return []
    entries = document.get("data_engineering") if isinstance(document, dict) else None
    engineers = []
    for entry in entries or []:
        if isinstance(entry, dict) and "@" in str(entry.get("email", "")):
            email = str(entry["email"]).strip().lower()
            engineers.append(Engineer(email, unicodedata.normalize("NFC", str(entry.get("name") or email))))
    return engineers


def alert_subject(dag_id: str, business_date: date | str | None, task_id: str) -> str:
    return f"[chiso ALERT] {dag_id} {business_date or '(no business date)'}: {task_id} failed"


def alert_text(dag_id: str, business_date, task_id: str, run_id: str | None, error: str,
               log_url: str | None = None) -> str:
    from chiso.quality.gates import data_docs_link

    lines = [
        f"DAG: {dag_id}",
        f"Business date: {business_date or '(not resolved)'}",
        f"Task: {task_id}",
        f"Run: {run_id or '?'}",
        "",
        "What failed:",
        error.strip() or "(no message)",
        "",
        "Nothing was published for this day (the reporting schema still shows the last good day; no report "
        "was sent).",
        f"Data Docs: {data_docs_link('index.html')}",
    ]
    cli = settings.get("CHISO_CLI")
    if cli:  # the demo or `chiso run`: no scheduler and no API server to link to, a log file per run
        lines.append(f"Run log: {settings.home() / 'logs' / f'{dag_id}_{business_date}.log'}")
        lines += ["", "What each day did:", f"  {cli} status", "",
                  "After fixing the data, run the day again:", f"  {cli} run --days {business_date}"]
    else:
        if log_url:
            lines.append(f"Task log: {log_url}")
        lines += ["", "After fixing the data, run the day again (on an Airflow host; in the compose stack, "
                      "prefix it with `docker compose exec airflow-scheduler`):",
                  f"  airflow dags trigger {dag_id} --conf '{{\"business_date\": \"{business_date}\"}}'"]
    return "\n".join(lines)


def _smtp():
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    return SmtpHook(smtp_conn_id=settings.require("CHISO_SMTP_CONN_ID"))


def send_alert(subject: str, text: str, engineers: list[Engineer] | None = None) -> list[str]:
    engineers = data_engineers() if engineers is None else engineers
    if not engineers:
        log.error("No data_engineering recipients in %s: the alert is only in this log:\n%s\n%s",
                  settings.get("CHISO_RECIPIENTS_FILE"), subject, text)
        return []
    body = f"<pre style=\"font-family: monospace\">{html.escape(text)}</pre>"
    with _smtp() as smtp:
        smtp.send_email_smtp(to=[e.email for e in engineers], subject=subject, html_content=body,
                             custom_headers={"X-Chiso-Alert": "1"})
    log.info("Alert sent to %s", ", ".join(e.email for e in engineers))
    return [e.email for e in engineers]


def send_hold_notice(business_date: date) -> list[str]:
    """The report recipients' notice that the day's figures are being checked (once per recipient/day)."""
    from chiso.reports.delivery import deliver_once
    from chiso.reports.recipients import load_recipients

    day = business_date.strftime("%d/%m/%Y")
    subject = unicodedata.normalize("NFC", f"{HOLD_NOTICE_SUBJECT} ({day})")
    text = unicodedata.normalize("NFC", (
        f"Số liệu ngày {day} đang được kiểm tra; báo cáo sẽ được gửi khi số liệu đã được xác nhận."))
    with _smtp() as smtp:
        def send(recipient, message_id):
            smtp.send_email_smtp(to=recipient.email, subject=subject, html_content=f"<p>{html.escape(text)}</p>",
                                 custom_headers={"Message-ID": message_id,
                                                 "X-Chiso-Publication": f"{HOLD_NOTICE_CODE}/{business_date}"})

        summary = deliver_once(HOLD_NOTICE_CODE, business_date, load_recipients(), send)
    return list(summary.sent)


def _business_date(context) -> date | None:
    from chiso.orchestration.business_date import resolve_business_date

    try:
        requested = (context.get("params") or {}).get("business_date")
        if not requested:
            ti = context.get("ti")
            requested = ti.xcom_pull(task_ids="resolve_business_date") if ti is not None else None
        return resolve_business_date(requested, context.get("logical_date"))
    except Exception:  # noqa: BLE001 - an alert without a date is better than none
        return None


def task_failed(context) -> None:
    """on_failure_callback of the daily DAG's tasks."""
    try:
        ti = context.get("ti") or context.get("task_instance")
        dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "chiso_daily")
        task_id = getattr(ti, "task_id", "?")
        business_date = _business_date(context)
        error = context.get("exception")
        subject = alert_subject(dag_id, business_date, task_id)
        text = alert_text(dag_id, business_date, task_id, context.get("run_id"),
                          f"{type(error).__name__}: {error}" if error is not None else "(no exception recorded)",
                          getattr(ti, "log_url", None))
        send_alert(subject, text)
        if business_date and settings.require("CHISO_REPORT_HOLD_NOTICE") == "notice":
            send_hold_notice(business_date)
    except Exception:  # noqa: BLE001
        log.exception("The failure alert could not be sent")


def warning_notice(business_date: date, warnings: list[dict]) -> None:
    """A day published with warn-level failures: the engineers are told what to look at."""
    if not warnings:
        return
    from chiso.quality.gates import data_docs_link

    lines = ["DAG: chiso_daily", f"Business date: {business_date}",
             f"Published with {len(warnings)} warning(s) (severity warn does not block):", ""]
    for warning in warnings:
        where = f" on column {warning['column']}" if warning.get("column") else ""
        lines.append(f"  [warn] {warning.get('suite')}: {warning.get('name') or ''} "
                     f"{warning.get('expectation')}{where}: {warning.get('observed')}")
    lines += ["", f"Data Docs: {data_docs_link('index.html')}"]
    subject = f"[chiso notice] chiso_daily {business_date}: published with {len(warnings)} warning(s)"
    body = f"<pre style=\"font-family: monospace\">{html.escape(chr(10).join(lines))}</pre>"
    try:
        from chiso.reports.delivery import deliver_once

        # Once per engineer and day, like the report itself: re-running a published day sends nothing.
        with _smtp() as smtp:
            def send(engineer, message_id):
                smtp.send_email_smtp(to=engineer.email, subject=subject, html_content=body,
                                     custom_headers={"Message-ID": message_id, "X-Chiso-Alert": "1"})

            deliver_once(WARNING_NOTICE_CODE, business_date, data_engineers(), send)
    except Exception:  # noqa: BLE001
        log.exception("The warning notice could not be sent")
