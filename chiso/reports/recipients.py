"""Who receives reports: a YAML file (CHISO_RECIPIENTS_FILE), validated on load.

    recipients:
      - email: vanphong@cukuin.example.vn
        name: Văn phòng HĐND và UBND huyện Cư Kuin
        scope: all                # every unit; or one unit code, e.g. 000.37.27.H15
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import yaml

from chiso import settings

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class RecipientsError(ValueError):
    pass


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str
    scope: str  # "all" or a unit code

    def sees(self, unit_code: str) -> bool:
        return self.scope == "all" or self.scope == unit_code


def load_recipients(path: Path | None = None) -> list[Recipient]:
    path = Path(path or settings.require("CHISO_RECIPIENTS_FILE"))
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RecipientsError(f"Cannot read recipients file {path}: {exc}") from exc
    entries = (document or {}).get("recipients")
    if not isinstance(entries, list) or not entries:
        raise RecipientsError(f"{path}: expected a non-empty list under 'recipients'")
    recipients, seen = [], set()
    for index, entry in enumerate(entries, start=1):
        where = f"{path}: recipient #{index}"
        if not isinstance(entry, dict):
            raise RecipientsError(f"{where}: expected a mapping with email, name, scope")
        unknown = set(entry) - {"email", "name", "scope"}
        if unknown:
            raise RecipientsError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        email = str(entry.get("email", "")).strip().lower()
        if not _EMAIL.match(email):
            raise RecipientsError(f"{where}: email {entry.get('email')!r} is not an e-mail address")
        if email in seen:
            raise RecipientsError(f"{where}: {email} is listed twice")
        seen.add(email)
        name = unicodedata.normalize("NFC", str(entry.get("name") or email))
        scope = str(entry.get("scope", "all"))
        recipients.append(Recipient(email, name, scope))
    return recipients
