"""Sending the reports: the nightly e-mail, the campaign reports due on a day, and deliberate re-sends.

Every send goes through the ledger (chiso.reports.delivery): a recipient already served for a
(report, period) is skipped, a failed send is not recorded and makes the call raise
:class:`~chiso.reports.delivery.DeliveryFailed` once every other recipient has been tried.
By default messages leave through the Airflow SMTP connection (CHISO_SMTP_CONN_ID).
"""

from __future__ import annotations

import logging
from datetime import date

from chiso.core import settings
from chiso.reports import text
from chiso.reports.delivery import DeliveryFailed, deliver_once, new_message_id, record_publication, record_resend
from chiso.reports.mail import OutgoingMessage, SmtpHookMailer
from chiso.reports.parallel import SendAhead, default_workers
from chiso.reports.recipients import Recipient, RecipientsError, check_scopes, load_recipients
from chiso.core.warehouse import ensure_schema

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 1_000_000  # the ceiling; a report above it is refused, not sent
# Below this many recipients forking workers costs more than it saves (a province's night: ~100).
PARALLEL_FROM = 200


def smtp_mailer():
    return SmtpHookMailer(settings.require("CHISO_SMTP_CONN_ID"))


def _publication_header(report_code: str, period: date, email: str) -> dict[str, str]:
    return {"X-Chiso-Publication": f"{report_code}/{period}/{email}"}


def _unsubscribe_header(sender: str, language: str) -> dict[str, str]:
    """List-Unsubscribe (RFC 2369): a reply to the sender asking to stop, as the footer says."""
    from email.utils import parseaddr
    from urllib.parse import quote

    address = parseaddr(sender)[1]
    if not address:
        return {}
    return {"List-Unsubscribe": f"<mailto:{address}?subject={quote(text.labels(language)['stop_subject'])}>"}


def _message(rendered, sender: str, recipient: Recipient, message_id: str, report_code: str, period: date,
             headers: dict[str, str] | None = None) -> OutgoingMessage:
    """The message's bytes, written once: measured against the cap, then sent as they are."""
    message = OutgoingMessage.render(rendered, sender, recipient.email, message_id,
                                     {**_publication_header(report_code, period, recipient.email),
                                      **_unsubscribe_header(sender, recipient.language), **(headers or {})})
    if len(message) > MAX_MESSAGE_BYTES:
        raise ValueError(f"{report_code} {period} for {recipient.email} is {len(message)} bytes, "
                         f"over {MAX_MESSAGE_BYTES}")
    return message


def send_daily(business_date: date, mailer=None, url: str | None = None,
               recipients: list[Recipient] | None = None, workers: int | None = None,
               batch: str | None = None) -> dict:
    """The nightly e-mail to every recipient who wants it; returns who was sent, who was already served.

    From :data:`PARALLEL_FROM` recipients on (a national night: ~3,356) the messages are rendered and
    sent by ``workers`` processes (default: one per core), each with its own SMTP connection, while the
    ledger stays in this process; ``workers=1`` renders and sends here, one recipient after the other.
    ``batch`` names ``recipients`` as one fixed share of the night, sent beside the others
    (chiso.reports.delivery.deliver_once)."""
    from chiso.reports.daily import add_technical_facts, build_daily_report

    ensure_schema(url)
    recipients = [r for r in (load_recipients() if recipients is None else recipients) if r.wants("daily")]
    report = build_daily_report(business_date, url)
    if not report.units:
        raise RuntimeError(f"No indicator values for {business_date}: nothing to report")
    recipients = check_scopes(recipients, report.catalogue)
    if any(r.is_team for r in recipients):
        add_technical_facts(report, url)
    mailer = mailer or smtp_mailer()
    workers = workers or default_workers()
    if workers > 1 and len(recipients) >= PARALLEL_FROM:
        return _send_rendered_ahead(report, recipients, mailer, url, workers, batch)
    return _send_one_by_one(report, recipients, mailer, url, batch)


def daily_message(report, recipient: Recipient, sender: str, message_id: str) -> OutgoingMessage:
    """One recipient's nightly e-mail, ready to send."""
    from chiso.reports.daily import REPORT_CODE, render_daily

    rendered = render_daily(report.for_recipient(recipient), recipient, sender)
    return _message(rendered, sender, recipient, message_id, REPORT_CODE, report.business_date)


def _send_one_by_one(report, recipients: list[Recipient], mailer, url: str | None, batch: str | None = None) -> dict:
    from chiso.reports.daily import REPORT_CODE

    def send(recipient: Recipient, message_id: str) -> None:
        mailer.send(daily_message(report, recipient, mailer.sender, message_id))

    try:
        summary = deliver_once(REPORT_CODE, report.business_date, recipients, send, url,
                               period_label=text.day(report.business_date), batch=batch)
    finally:
        mailer.close()
    return {"sent": summary.sent, "already_sent": summary.already_sent}


def _send_rendered_ahead(report, recipients: list[Recipient], mailer, url: str | None, workers: int,
                         batch: str | None = None) -> dict:
    """send_daily with the messages rendered and sent by worker processes, each through its own SMTP
    connection (a copy of ``mailer``, unopened when forked); the ledger stays here and records a
    recipient once its worker reported the server's acceptance, so exactly-once holds as one by one."""
    from chiso.reports.daily import REPORT_CODE

    try:
        sender = mailer.sender
    except Exception:  # noqa: BLE001 - e.g. no from_email: every recipient fails, named, as one by one
        return _send_one_by_one(report, recipients, mailer, url, batch)

    def render_and_send(recipient: Recipient, message_id: str) -> None:
        mailer.send(daily_message(report, recipient, sender, message_id))

    mailer.close()   # each worker must open its own connection: none may be forked open
    try:
        with SendAhead(render_and_send, workers, at_exit=mailer.close) as ahead:
            summary = deliver_once(REPORT_CODE, report.business_date, recipients, ahead.take, url,
                                   period_label=text.day(report.business_date), prepare=ahead.start, batch=batch)
    finally:
        mailer.close()
    return {"sent": summary.sent, "already_sent": summary.already_sent}


def send_campaign_reports(business_date: date, mailer=None, url: str | None = None,
                          recipients: list[Recipient] | None = None) -> dict:
    """Every campaign report due on ``business_date`` (chiso.reports.campaign), once per recipient;
    each fully delivered report is recorded in ops.publications. Raises DeliveryFailed (after trying
    every report) if any recipient could not be served."""
    from chiso.reports.campaign import build_campaign_report, due_reports, recipients_for, render_campaign

    ensure_schema(url)
    due = due_reports(business_date, url)
    if not due:
        log.info("No campaign report is due on %s", business_date)
        return {}
    everyone = recipients or load_recipients()
    mailer = mailer or smtp_mailer()
    results, failures = {}, []
    try:
        for item in due:
            report = build_campaign_report(item, url)
            audience = recipients_for(report, check_scopes(everyone, report.catalogue))
            _warn_of_unserved_roles(item.plan_id, everyone)

            def send(recipient: Recipient, message_id: str, report=report, item=item) -> None:
                rendered = render_campaign(report, recipient, mailer.sender)
                mailer.send(_message(rendered, mailer.sender, recipient, message_id, item.report_code, item.as_of))

            try:
                summary = deliver_once(item.report_code, item.as_of, audience, send, url,
                                       period_label=f"{item.title()}: {item.period_label()}")
            except DeliveryFailed as failure:
                failures.append(str(failure))
                continue
            record_publication(item.report_code, item.as_of, len(summary.sent) + len(summary.already_sent), url)
            results[item.report_code] = {"sent": summary.sent, "already_sent": summary.already_sent}
    finally:
        mailer.close()
    if failures:
        raise DeliveryFailed(" | ".join(failures))
    return results


def _warn_of_unserved_roles(plan_id: str, recipients: list[Recipient]) -> None:
    """A plan's named recipient without an entry in the recipients file is said, not silently skipped
    (``python -m chiso.reports.recipients check`` fails on it)."""
    from chiso.reports.recipients import PLAN_ROLES_FILE, load_plan_roles, missing_roles

    if not PLAN_ROLES_FILE.exists():
        return
    roles = {k: r for k, r in load_plan_roles().items() if r.plan_id == plan_id and "campaign" in r.reports}
    for role in missing_roles(recipients, roles):
        log.warning("%s names %s (%s) as a recipient of its reports; no entry of the recipients file serves "
                    "role %s", plan_id, role.role_vi, role.scope.describe(), role.role_id)


def render_for(report_code: str, period: date, recipient: Recipient, url: str | None = None,
               sender: str | None = None):
    """The report ``report_code`` of ``period`` as ``recipient`` receives it (RenderedReport)."""
    from chiso.reports.campaign import build_campaign_report, parse_report_code, render_campaign
    from chiso.reports.daily import REPORT_CODE, add_technical_facts, build_daily_report, render_daily

    if report_code == REPORT_CODE:
        report = build_daily_report(period, url)
        check_scopes([recipient], report.catalogue)
        if recipient.is_team:
            add_technical_facts(report, url)
        return render_daily(report.for_recipient(recipient), recipient, sender)
    report = build_campaign_report(parse_report_code(report_code, period, url), url)
    check_scopes([recipient], report.catalogue)
    return render_campaign(report, recipient, sender)


def resend(report_code: str, period: date, email: str, reason: str, mailer=None, url: str | None = None,
           recipients: list[Recipient] | None = None) -> str:
    """Send one report to one configured recipient again, on purpose; logged in ops.report_resends.
    Returns the new Message-ID."""
    if not reason.strip():
        raise ValueError("A re-send needs a reason (--reason)")
    ensure_schema(url)
    recipient = next((r for r in (recipients or load_recipients()) if r.email == email.strip().lower()), None)
    if recipient is None:
        raise RecipientsError(f"{email} is not in the recipients file: add it there first")
    mailer = mailer or smtp_mailer()
    message_id = new_message_id(report_code, period)
    try:
        rendered = render_for(report_code, period, recipient, url, mailer.sender)
        mailer.send(_message(rendered, mailer.sender, recipient, message_id, report_code, period,
                             {"X-Chiso-Resend": reason.strip()}))
    finally:
        mailer.close()
    record_resend(report_code, period, recipient.email, message_id, reason.strip(), url)
    log.info("%s %s re-sent to %s (%s)", report_code, period, recipient.email, reason)
    return message_id
