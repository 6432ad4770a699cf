"""A local SMTP server that keeps every message it receives as an .eml file.

The demo sends its reports here (and prints the folder); the tests use it as the real SMTP peer.
"""

from __future__ import annotations

import email
import email.policy
import itertools
import threading
from pathlib import Path

from aiosmtpd.controller import Controller

from chiso.dev.ports import free_port


class _SaveToFolder:
    def __init__(self, folder: Path):
        self.folder = folder
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        with self._lock:
            number = next(self._counter)
            while (path := self.folder / f"{number:05d}.eml").exists():
                number = next(self._counter)
            path.write_bytes(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


class MailCatcher:
    def __init__(self, folder: Path, host: str = "127.0.0.1", port: int = 0):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        if port == 0:
            port = free_port(host)
        self.controller = Controller(_SaveToFolder(self.folder), hostname=host, port=port)

    @property
    def host(self) -> str:
        return self.controller.hostname

    @property
    def port(self) -> int:
        return self.controller.port

    def messages(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                for path in sorted(self.folder.glob("*.eml"))]

    def __enter__(self) -> MailCatcher:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


