"""Sending a report exactly once per (report, period, recipient): the publication ledger.

``ops.report_deliveries`` holds one row per (report_code, business_date, recipient): for the nightly
e-mail the period is the business date; for a campaign report it is the day the report is "as of"
(``period_label`` says which period in words, e.g. "kỳ 2: 25/11/2024 – 04/12/2024"). The ledger is
read once under the run's lock and written after the sends the SMTP server accepted, so

* a re-run or a backfill sends nothing twice;
* a run that failed half-way (the SMTP server went down) has recorded exactly the recipients it
  served; the next try sends only to the others;
* a send that fails is never recorded: the run raises :class:`DeliveryFailed` naming who was and who
  was not served, and the task's retries (then a person) take it from there.

An advisory lock per (report, period) keeps two concurrent runs from both sending. The daily DAG sends
by batches of recipients, one mapped task each, that workers run at once: a batch holds that lock
shared and its own batch's lock exclusively, so batches run side by side, a batch never twice at
once, and a whole run (a person's re-run of the send) waits for every batch and excludes them. Accepted messages
are recorded in batches (:data:`RECORD_EVERY` messages or :data:`RECORD_SECONDS`, and always before
the run returns or raises): a commit per recipient cost a disk flush per e-mail. The window between
the SMTP server's acceptance and the batch's commit is the only place a crash of the sending process
can duplicate a message (at-least-once in that window rather than risk never sending); a failed send
is never recorded.

A deliberate re-send (``python -m chiso.reports resend``) goes to ``ops.report_resends`` with its
reason; it never removes the original ledger row.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from email.utils import make_msgid

from chiso.reports.recipients import Recipient
from chiso.core.warehouse import OPS_SCHEMA, connect

log = logging.getLogger(__name__)

# send(recipient, message_id) delivers one message or raises.
SendFunction = Callable[[Recipient, str], None]
# prepare([(recipient, message_id), …]): who will be sent to, in order, before the first send.
PrepareFunction = Callable[[list[tuple[Recipient, str]]], None]
# Accepted messages are written to the ledger in batches: every RECORD_EVERY messages or RECORD_SECONDS,
# and whenever the run stops (a failure, the end). A crash of this process (not a failure of a send)
# between the server's acceptance and the batch's commit can send those messages again on the next try.
RECORD_EVERY, RECORD_SECONDS = 50, 1.0


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
                 url: str | None = None, period_label: str | None = None,
                 prepare: PrepareFunction | None = None, batch: str | None = None) -> DeliverySummary:
    """Send to every recipient the ledger does not hold yet, recording each one only after the SMTP
    server accepted its message. ``prepare(pending)``, if given, is told once who will be sent to, in
    order and with their Message-IDs, before the first send (chiso.reports.parallel renders ahead).
    ``batch`` names a fixed share of the recipients sent by a task of its own, beside the others."""
    sent, already, failed = [], [], {}
    lock = f"chiso.report:{report_code}:{business_date}"
    with connect(url, autocommit=True) as conn:
        if batch is None:
            conn.execute("select pg_advisory_lock(hashtext(%s))", (lock,))
        else:
            conn.execute("select pg_advisory_lock_shared(hashtext(%s)), pg_advisory_lock(hashtext(%s))",
                         (lock, f"{lock}:{batch}"))
        try:
            # Under the lock the ledger cannot change: read it once, not once per recipient.
            served_already = {recipient for (recipient,) in conn.execute(
                f"select recipient from {OPS_SCHEMA}.report_deliveries "
                f"where report_code = %s and business_date = %s", (report_code, business_date)).fetchall()}
            pending, seen = [], set()
            for recipient in recipients:
                if recipient.email in served_already:
                    already.append(recipient.email)
                elif recipient.email not in seen:
                    seen.add(recipient.email)
                    pending.append((recipient, new_message_id(report_code, business_date)))
            if prepare is not None and pending:
                prepare(pending)
            accepted: list[tuple[str, str]] = []   # accepted by the server, not yet in the ledger
            flushed_at = time.monotonic()
            try:
                for recipient, message_id in pending:
                    try:
                        send(recipient, message_id)
                    except Exception as exc:  # noqa: BLE001 - every failure is reported below, none recorded
                        log.error("%s %s: could not send to %s: %s", report_code, business_date, recipient.email, exc)
                        failed[recipient.email] = f"{type(exc).__name__}: {exc}"
                        continue
                    accepted.append((recipient.email, message_id))
                    sent.append(recipient.email)
                    if len(accepted) >= RECORD_EVERY or time.monotonic() - flushed_at >= RECORD_SECONDS:
                        _record(conn, report_code, business_date, period_label, accepted)
                        accepted, flushed_at = [], time.monotonic()
            finally:
                # Whatever stopped the loop, the messages the server accepted are recorded before leaving.
                _record(conn, report_code, business_date, period_label, accepted)
        finally:
            if batch is None:
                conn.execute("select pg_advisory_unlock(hashtext(%s))", (lock,))
            else:
                conn.execute("select pg_advisory_unlock(hashtext(%s)), pg_advisory_unlock_shared(hashtext(%s))",
                             (f"{lock}:{batch}", lock))
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


def _record(conn, report_code: str, business_date: date, period_label: str | None,
            accepted: list[tuple[str, str]]) -> None:
    """One transaction for a batch of accepted messages (a commit per recipient was a disk flush per
    e-mail: ~3,356 of them on a national night)."""
    if not accepted:
        return
    with conn.transaction(), conn.cursor() as cursor:
        cursor.executemany(
            f"insert into {OPS_SCHEMA}.report_deliveries "
            f"(report_code, business_date, recipient, message_id, period_label) values (%s, %s, %s, %s, %s)",
            [(report_code, business_date, email, message_id, period_label) for email, message_id in accepted])


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
