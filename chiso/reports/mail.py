"""E-mail messages with inline images, and the ways to send them.

A report becomes one MIME message:

    multipart/mixed                      (only when there is an attachment, e.g. the Excel annex)
    └─ multipart/alternative
       ├─ text/plain                     (a short plain-text summary for clients without HTML)
       └─ multipart/related
          ├─ text/html                   (refers to the charts as <img src="cid:…">)
          └─ image/png …                 (Content-ID, Content-Disposition: inline)
    └─ application/vnd…sheet             (attachment)

Airflow's ``SmtpHook.send_email_smtp`` cannot build this (its files become
``application/octet-stream`` attachments of a multipart/mixed), so the message is built here with
the standard library and sent through the hook's own authenticated smtplib client: the SMTP
settings still come from the Airflow connection (CHISO_SMTP_CONN_ID).
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InlineImage:
    cid: str          # without angle brackets; the HTML refers to it as cid:<cid>
    data: bytes
    filename: str


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes
    maintype: str = "application"
    subtype: str = "vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class RenderedReport:
    subject: str
    html: str
    text: str
    images: list[InlineImage] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)


def build_message(report: RenderedReport, sender: str, to: str, message_id: str,
                  headers: dict[str, str] | None = None) -> EmailMessage:
    message = EmailMessage(policy=SMTP)
    message["Subject"] = report.subject
    message["From"] = sender
    message["To"] = to
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(report.text, subtype="plain", charset="utf-8")
    message.add_alternative(report.html, subtype="html", charset="utf-8")
    html_part = message.get_payload()[1]
    for image in report.images:
        html_part.add_related(image.data, maintype="image", subtype="png", cid=f"<{image.cid}>",
                              disposition="inline", filename=image.filename)
    for attachment in report.attachments:
        message.add_attachment(attachment.data, maintype=attachment.maintype, subtype=attachment.subtype,
                               filename=attachment.filename)
    return message


class SmtpHookMailer:
    """Sends through the Airflow SMTP connection; connects on the first message only, so a run whose
    recipients were all served already never needs the server."""

    def __init__(self, conn_id: str):
        self.conn_id = conn_id
        self._hook = None

    def _open(self):
        if self._hook is None:
            from airflow.providers.smtp.hooks.smtp import SmtpHook

            hook = SmtpHook(smtp_conn_id=self.conn_id)
            hook.get_conn()  # connects, STARTTLS and login as the connection says; raises if unreachable
            self._hook = hook
        return self._hook

    @property
    def sender(self) -> str:
        hook = self._open()
        if not hook.from_email:
            raise ValueError(f"The Airflow connection {self.conn_id} has no from_email in its extra")
        return hook.from_email

    def send(self, message: EmailMessage) -> None:
        hook = self._open()
        hook._smtp_client.send_message(message)  # the hook's authenticated smtplib client

    def close(self) -> None:
        if self._hook is not None:
            try:
                self._hook.__exit__(None, None, None)
            except (smtplib.SMTPException, OSError):
                pass
            self._hook = None


class SmtplibMailer:
    """Sends to a plain SMTP server (host:port), e.g. the local mail catcher; for the command line."""

    def __init__(self, host: str, port: int, sender: str = "chiso@localhost", timeout: float = 10.0):
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout
        self._client: smtplib.SMTP | None = None

    def send(self, message: EmailMessage) -> None:
        if self._client is None:
            self._client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        self._client.send_message(message)

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._client = None
