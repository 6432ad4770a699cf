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

_NOT_A_DIGIT = re.compile(r"\D")


class Pseudonymiser:
    def __init__(self, key: str | bytes):
        if not key:
            raise ValueError("The pseudonymisation key is empty: set the Airflow connection's password")
        self._key = key.encode() if isinstance(key, str) else key
        self._keyed = hmac.new(self._key, digestmod=hashlib.sha256)  # copied per value: no key set-up each time

    @staticmethod
    def normalise(field: str, value: str) -> str:
        text = unicodedata.normalize("NFC", str(value)).strip()
        if field == "Email":
            return text.lower()
        if field in ("SoDienThoai", "SoGiayToChuHoSo"):
            return text if text.isdecimal() else _NOT_A_DIGIT.sub("", text)  # \D: not a decimal digit
        return " ".join(text.split()).upper()

    def pseudonym(self, field: str, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        mac = self._keyed.copy()  # the same as hmac.new(self._key, message, hashlib.sha256)
        mac.update(f"{field}\x1f{self.normalise(field, value)}".encode())
        return mac.hexdigest()

    def apply(self, row: dict, fields: tuple[str, ...]) -> dict:
        """A copy of ``row`` (same keys, same order) with the values of ``fields`` pseudonymised."""
        record = dict(row)
        for field in fields:
            if field in record:
                record[field] = self.pseudonym(field, record[field])
        return record
