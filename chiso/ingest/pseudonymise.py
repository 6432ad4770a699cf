"""Keyed pseudonyms for applicants' personal data.

HMAC-SHA256 with a secret key: the same citizen gets the same pseudonym in every dossier (so
linking works) while nobody without the key can recompute it from a guessed name or ID number,
which a plain hash would allow for 12-digit ID numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata


class Pseudonymiser:
    def __init__(self, key: str | bytes):
        if not key:
            raise ValueError("The pseudonymisation key is empty: set the Airflow connection's password")
        self._key = key.encode() if isinstance(key, str) else key

    @staticmethod
    def normalise(field: str, value: str) -> str:
        text = unicodedata.normalize("NFC", str(value)).strip()
        if field == "Email":
            return text.lower()
        if field in ("SoDienThoai", "SoGiayToChuHoSo"):
            return re.sub(r"\D", "", text)
        return " ".join(text.split()).upper()

    def pseudonym(self, field: str, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        message = f"{field}\x1f{self.normalise(field, value)}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def apply(self, row: dict, fields: tuple[str, ...]) -> dict:
        return {k: (self.pseudonym(k, v) if k in fields else v) for k, v in row.items()}
