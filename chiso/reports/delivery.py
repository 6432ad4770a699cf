"""Sending a report exactly once per (report, period, recipient): the publication ledger.

``ops.report_deliveries`` holds one row per (report_code, business_date, recipient): for the nightly
e-mail the period is the business date; for a campaign report it is the day the report is "as of"
(``period_label`` says which period in words, e.g. "kỳ 2: 25/11/2024 – 04/12/2024"). The ledger is
checked before each send and written right after it, recipient by recipient, so

* a re-run or a backfill sends nothing twice;
* a run that failed half-way (the SMTP server went down) has recorded exactly the recipients it
  served; the next try sends only to the others;
* a send that fails is never recorded: the run raises :class:`DeliveryFailed` naming who was and who
  was not served, and the task's retries (then a person) take it from there.

An advisory lock per (report, period) keeps two concurrent runs from both sending. The window
between the SMTP server's acceptance and the ledger insert is the only place a crash can duplicate
a message (at-least-once in that window rather than risk never sending).

A deliberate re-send (``python -m chiso.reports resend``) goes to ``ops.report_resends`` with its
reason; it never removes the original ledger row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from email.utils import make_msgid

from chiso.reports.recipients import Recipient
from chiso.warehouse import OPS_SCHEMA, connect

log = logging.getLogger(__name__)

# send(recipient, message_id) delivers one message or raises.
SendFunction = Callable[[Recipient, str], None]


class DeliveryFailed(RuntimeError):
    """At least one recipient could not be served; those served are recorded, the others are not."""


@dataclass(frozen=True)
class DeliverySummary:
    sent: list[str]
    already_sent: list[str]
    failed: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"sent": self.sent, "already_sent": self.already_sent, "failed": self.failed}


def new_message_id(report_code: str, period: date) -> str:
    tag = "".join(c if c.isalnum() else "." for c in report_code)
    return make_msgid(idstring=f"{tag}.{period:%Y%m%d}", domain="chiso.local")


def served(report_code: str, period: date, url: str | None = None) -> dict[str, str]:
    """recipient → message_id of the ledger for one report and period."""
    with connect(url) as conn:
        return dict(conn.execute(
            f"select recipient, message_id from {OPS_SCHEMA}.report_deliveries "
            f"where report_code = %s and business_date = %s", (report_code, period)).fetchall())


def deliver_once(report_code: str, business_date: date, recipients: list[Recipient], send: SendFunction,
                 url: str | None = None, period_label: str | None = None) -> DeliverySummary:
    sent, already, failed = [], [], {}
    with connect(url, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(hashtext(%s))", (f"chiso.report:{report_code}:{business_date}",))
        try:
            for recipient in recipients:
                done = conn.execute(
                    f"select message_id from {OPS_SCHEMA}.report_deliveries "
                    f"where report_code = %s and business_date = %s and recipient = %s",
                    (report_code, business_date, recipient.email),
                ).fetchone()
                if done:
                    already.append(recipient.email)
                    continue
                message_id = new_message_id(report_code, business_date)
                try:
                    send(recipient, message_id)
                except Exception as exc:  # noqa: BLE001 - every failure is reported below, none recorded
                    log.error("%s %s: could not send to %s: %s", report_code, business_date, recipient.email, exc)
                    failed[recipient.email] = f"{type(exc).__name__}: {exc}"
                    continue
                conn.execute(
                    f"insert into {OPS_SCHEMA}.report_deliveries "
                    f"(report_code, business_date, recipient, message_id, period_label) values (%s, %s, %s, %s, %s)",
                    (report_code, business_date, recipient.email, message_id, period_label),
                )
                sent.append(recipient.email)
        finally:
            conn.execute("select pg_advisory_unlock(hashtext(%s))", (f"chiso.report:{report_code}:{business_date}",))
    summary = DeliverySummary(sent, already, failed)
    log.info("%s %s: sent to %d recipient(s), %d already served, %d failed", report_code, business_date,
             len(sent), len(already), len(failed))
    if failed:
        raise DeliveryFailed(
            f"{report_code} {business_date}: NOT sent to {len(failed)} recipient(s) — "
            + "; ".join(f"{email}: {error}" for email, error in failed.items())
            + f". Sent now to {len(sent)} ({', '.join(sent) or 'nobody'}), already served "
            f"{len(already)}; those are recorded in {OPS_SCHEMA}.report_deliveries and will not be sent again. "
            f"Nothing was recorded for the failed ones: the next try sends to them.")
    return summary


def record_resend(report_code: str, business_date: date, recipient: str, message_id: str, reason: str,
                  url: str | None = None) -> None:
    """Log a deliberate re-send; also fills the ledger if the report had never reached the recipient."""
    with connect(url) as conn:
        conn.execute(
            f"insert into {OPS_SCHEMA}.report_resends (report_code, business_date, recipient, message_id, reason) "
            f"values (%s, %s, %s, %s, %s)", (report_code, business_date, recipient, message_id, reason))
        conn.execute(
            f"insert into {OPS_SCHEMA}.report_deliveries (report_code, business_date, recipient, message_id) "
            f"values (%s, %s, %s, %s) on conflict do nothing", (report_code, business_date, recipient, message_id))


def record_publication(report_code: str, business_date: date, recipients: int, url: str | None = None) -> bool:
    """Mark the day's report as published; True if this call recorded it (first time)."""
    with connect(url) as conn:
        row = conn.execute(
            f"insert into {OPS_SCHEMA}.publications (report_code, business_date, recipients) values (%s, %s, %s) "
            f"on conflict (report_code, business_date) do nothing returning report_code",
            (report_code, business_date, recipients),
        ).fetchone()
    return row is not None
