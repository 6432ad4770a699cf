"""Sending a report exactly once per (report, business date, recipient).

The delivery ledger (ops.report_deliveries) is checked before each send and written right after
it, recipient by recipient, so a re-run or a backfill sends nothing twice and a run that failed
half-way only sends to the recipients not yet served. The window between the SMTP server's
acceptance and the ledger insert is the only place a crash can duplicate a message (at-least-once
in that window rather than risk never sending).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from email.utils import make_msgid

from chiso.reports.recipients import Recipient
from chiso.warehouse import OPS_SCHEMA, connect

log = logging.getLogger(__name__)

# send(recipient, message_id) delivers one message or raises.
SendFunction = Callable[[Recipient, str], None]


@dataclass(frozen=True)
class DeliverySummary:
    sent: list[str]
    already_sent: list[str]


def deliver_once(report_code: str, business_date: date, recipients: list[Recipient], send: SendFunction,
                 url: str | None = None) -> DeliverySummary:
    sent, already = [], []
    with connect(url, autocommit=True) as conn:
        for recipient in recipients:
            done = conn.execute(
                f"select message_id from {OPS_SCHEMA}.report_deliveries "
                f"where report_code = %s and business_date = %s and recipient = %s",
                (report_code, business_date, recipient.email),
            ).fetchone()
            if done:
                already.append(recipient.email)
                continue
            message_id = make_msgid(idstring=f"{report_code}.{business_date:%Y%m%d}", domain="chiso.local")
            send(recipient, message_id)
            conn.execute(
                f"insert into {OPS_SCHEMA}.report_deliveries (report_code, business_date, recipient, message_id) "
                f"values (%s, %s, %s, %s)",
                (report_code, business_date, recipient.email, message_id),
            )
            sent.append(recipient.email)
    log.info("%s %s: sent to %d recipient(s), %d already served", report_code, business_date, len(sent),
             len(already))
    return DeliverySummary(sent, already)


def record_publication(report_code: str, business_date: date, recipients: int, url: str | None = None) -> bool:
    """Mark the day's report as published; True if this call recorded it (first time)."""
    with connect(url) as conn:
        row = conn.execute(
            f"insert into {OPS_SCHEMA}.publications (report_code, business_date, recipients) values (%s, %s, %s) "
            f"on conflict (report_code, business_date) do nothing returning report_code",
            (report_code, business_date, recipients),
        ).fetchone()
    return row is not None
