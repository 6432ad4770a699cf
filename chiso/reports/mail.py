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

What is sent is :func:`message_bytes`: the same message as :func:`build_message`, written straight to
bytes (tests/test_report_size.py reads both and compares them part by part).
"""

from __future__ import annotations

import base64
import binascii
import logging
import smtplib
import uuid
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


@dataclass(frozen=True)
class OutgoingMessage:
    """A message as it goes on the wire: its bytes, flattened once (the size check and the SMTP
    exchange use the same bytes; smtplib's send_message would flatten the message again), and its
    envelope. Rendered in a worker process, it crosses to the sending process as bytes."""
    raw: bytes
    sender: str
    to: str
    message_id: str

    @classmethod
    def of(cls, message: EmailMessage) -> OutgoingMessage:
        return cls(message.as_bytes(), str(message["From"]), str(message["To"]), str(message["Message-ID"]))

    @classmethod
    def render(cls, report: RenderedReport, sender: str, to: str, message_id: str,
               headers: dict[str, str] | None = None) -> OutgoingMessage:
        return cls(message_bytes(report, sender, to, message_id, headers), sender, to, message_id)

    def __getitem__(self, header: str) -> str:
        """The envelope's headers, as on an EmailMessage (message["To"])."""
        return {"from": self.sender, "to": self.to, "message-id": self.message_id}[header.lower()]

    def __len__(self) -> int:
        return len(self.raw)


def _deliver(client: smtplib.SMTP, message: EmailMessage | OutgoingMessage) -> None:
    if isinstance(message, OutgoingMessage):
        # An address outside ASCII needs SMTPUTF8, as send_message would ask for it.
        utf8 = not (message.sender + message.to).isascii()
        client.sendmail(message.sender, [message.to], message.raw,
                        mail_options=["SMTPUTF8", "BODY=8BITMIME"] if utf8 else ())
    else:
        client.send_message(message)


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


def message_bytes(report: RenderedReport, sender: str, to: str, message_id: str,
                  headers: dict[str, str] | None = None) -> bytes:
    """The message :func:`build_message` builds, with the same parts and headers, written straight to
    bytes: the standard library's generator writes a message line by line in Python (~5 ms a nightly
    e-mail, as long as drawing its two charts); here the bodies are encoded by binascii in C
    (quoted-printable text, base64 images and attachments). Headers still go through the SMTP policy
    (the Vietnamese subject as RFC 2047 words). A file name outside ASCII falls back to build_message."""
    names = [image.filename for image in report.images] + [a.filename for a in report.attachments]
    if not all(name.isascii() and '"' not in name for name in names):
        return build_message(report, sender, to, message_id, headers).as_bytes()
    token = uuid.uuid4().hex
    boundaries = iter(f"=_chiso_{token}_{n}" for n in range(4))   # "=_" never occurs in QP or base64
    def fold(name: str, value: str) -> str:
        # As EmailMessage sets a header: parsed by its kind, words outside ASCII encoded (RFC 2047).
        return SMTP.header_factory(name, value).fold(policy=SMTP)

    head = [fold("Subject", report.subject), fold("From", sender), fold("To", to),
            fold("Date", formatdate(localtime=True)), fold("Message-ID", message_id)]
    head += [fold(name, value) for name, value in (headers or {}).items()]
    head.append("MIME-Version: 1.0\r\n")

    def text(subtype: str, content: str) -> bytes:
        return (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
                f"Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode() + \
            binascii.b2a_qp(content.encode("utf-8"), istext=True).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")

    def binary(content_type: str, data: bytes, disposition: str, filename: str, cid: str | None = None) -> bytes:
        lines = [f"Content-Type: {content_type}", "Content-Transfer-Encoding: base64"]
        if cid is not None:
            lines.append(f"Content-ID: <{cid}>")
        lines.append(f'Content-Disposition: {disposition}; filename="{filename}"')
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + base64.encodebytes(data).replace(b"\n", b"\r\n")

    def multipart(subtype: str, parts: list[bytes]) -> tuple[bytes, bytes]:
        """(its Content-Type header, its body)."""
        boundary = next(boundaries)
        body = b"".join(b"--" + boundary.encode() + b"\r\n" + part + (b"" if part.endswith(b"\r\n") else b"\r\n")
                        for part in parts) + b"--" + boundary.encode() + b"--\r\n"
        return f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n'.encode(), body

    html = text("html", report.html)
    if report.images:
        related_type, related_body = multipart("related", [html] + [
            binary("image/png", image.data, "inline", image.filename, image.cid) for image in report.images])
        html = related_type + b"\r\n" + related_body
    alternative = multipart("alternative", [text("plain", report.text), html])
    if report.attachments:
        alternative_part = alternative[0] + b"\r\n" + alternative[1]
        top = multipart("mixed", [alternative_part] + [
            binary(f"{a.maintype}/{a.subtype}", a.data, "attachment", a.filename) for a in report.attachments])
    else:
        top = alternative
    return "".join(head).encode("ascii") + top[0] + b"\r\n" + top[1]


class SmtpHookMailer:
    """Sends through the Airflow SMTP connection; connects on the first message only, so a run whose
    recipients were all served already never needs the server."""

    def __init__(self, conn_id: str):
        self.conn_id = conn_id
        self._hook = None
        self._sender: str | None = None

    def _open(self):
        if self._hook is None:
            from airflow.providers.smtp.hooks.smtp import SmtpHook

            hook = SmtpHook(smtp_conn_id=self.conn_id)
            hook.get_conn()  # connects, STARTTLS and login as the connection says; raises if unreachable
            self._hook = hook
        return self._hook

    @property
    def sender(self) -> str:
        """The connection's from_email, read without connecting: messages are built before the first is
        sent (in worker processes, for a national night)."""
        if self._sender is None:
            from airflow.providers.smtp.hooks.smtp import SmtpHook

            sender = SmtpHook.get_connection(self.conn_id).extra_dejson.get("from_email")
            if not sender:
                raise ValueError(f"The Airflow connection {self.conn_id} has no from_email in its extra")
            self._sender = sender
        return self._sender

    def send(self, message: EmailMessage | OutgoingMessage) -> None:
        hook = self._open()
        _deliver(hook._smtp_client, message)  # the hook's authenticated smtplib client, kept open

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

    def send(self, message: EmailMessage | OutgoingMessage) -> None:
        if self._client is None:
            self._client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        _deliver(self._client, message)  # one connection for the whole run

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._client = None
