"""Keyed pseudonyms for applicants' personal data.

HMAC-SHA256 with a secret key: the same citizen gets the same pseudonym in every dossier (so
linking works) while nobody without the key can recompute it from a guessed name or ID number,
which a plain hash would allow for 12-digit ID numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import unicodedata
from collections.abc import Callable

_NOT_A_DIGIT = re.compile(r"\D")
_SHA256_BLOCK = 64


def _email(text: str) -> str:
    return text.lower()


def _digits(text: str) -> str:
    return text if text.isdecimal() else _NOT_A_DIGIT.sub("", text)  # \D: not a decimal digit


def _name(text: str) -> str:
    return " ".join(text.split()).upper()


MIN_KEY_BYTES = 32
# Keys that were ever written in this repository (defaults, examples, tests): anybody can read them,
# so pseudonyms made with them protect nothing. Refused outside the demo, like any key naming itself
# a demo or a test, or shorter than MIN_KEY_BYTES.
KNOWN_KEYS = frozenset({
    "demo-only-pseudonym-key-do-not-use-with-real-data", "test-key", "other-key", "e2e-secret-key", "fault-key",
    "typed-decode-test", "hostile-test-key", "hostile-key", "changeme", "change-me", "secret", "password",
})
_DEMO_WORDS = ("demo", "test", "example", "changeme", "change-me", "default")


class KeyRefused(ValueError):
    """The pseudonymisation key is one that must not protect real data."""


def check_key(key: str | bytes | None, demo: bool) -> None:
    """Refuse, outside the demo (CHISO_DEMO_MODE), a key that is empty, known, says it is a demo or test
    key, or is shorter than MIN_KEY_BYTES; the message never quotes the key."""
    if not key:
        raise KeyRefused("The pseudonymisation key is empty: set the Airflow connection's password")
    if demo:
        return
    text = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
    size = len(key if isinstance(key, bytes) else key.encode())
    if text in KNOWN_KEYS:
        problem = "a key published in chiso's repository"
    elif any(word in text.lower() for word in _DEMO_WORDS):
        problem = "a demo or test key (it says so)"
    elif size < MIN_KEY_BYTES:
        problem = f"only {size} bytes long, fewer than {MIN_KEY_BYTES}"
    else:
        return
    raise KeyRefused(f"The pseudonymisation key is {problem}: outside the demo (CHISO_DEMO_MODE=true) set the "
                     f"Airflow connection's password to a random key of at least {MIN_KEY_BYTES} bytes, e.g. "
                     f"`openssl rand -base64 48` (docs/ingest.md, \"Pseudonym keys\")")


class Pseudonymiser:
    def __init__(self, key: str | bytes):
        if not key:
            raise ValueError("The pseudonymisation key is empty: set the Airflow connection's password")
        self._key = key.encode() if isinstance(key, str) else key
        # Which key made a load's pseudonyms, recorded in raw.load_ledger: keyed, so it tells keys apart
        # without giving anything to guess a key with.
        self.key_id = hmac.new(self._key, b"chiso pseudonym key id", hashlib.sha256).hexdigest()[:16]
        # HMAC (RFC 2104) as two SHA-256 states keyed once and copied per value: the loader computes
        # millions of pseudonyms a day, and copying hashlib states costs half of copying an hmac
        # object. tests/test_ingest.py checks every pseudonym against hmac.new.
        block = (hashlib.sha256(self._key).digest() if len(self._key) > _SHA256_BLOCK else self._key) \
            .ljust(_SHA256_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in block))
        self._outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in block))
        self._normalisers = {"Email": _email, "SoDienThoai": _digits, "SoGiayToChuHoSo": _digits}
        self._by_field: dict[str, Callable[[str], str]] = {}

    def pseudonym(self, field: str, value: str | None) -> str | None:
        """HMAC-SHA256(key, field + US + the value's normalised form): NFC, trimmed, and per field
        (e-mails lower-cased, phone and ID numbers digits only, names and addresses upper-cased with
        single spaces), so the same person's "066 090 123456" and "066090123456", or "lê  văn an" and
        "Lê Văn An", get the same pseudonym."""
        if value is None or value == "":
            return None
        function = self._by_field.get(field) or self._by_field.setdefault(field, self.for_nfc_text(field))
        return function(unicodedata.normalize("NFC", value if type(value) is str else str(value)))

    def for_nfc_text(self, field: str) -> Callable[[str], str]:
        """``pseudonym`` of one field, for values already known to be non-empty NFC strings (the
        loader's fast lane): the field's prefix hashed once, no normal-form check per value."""
        normalise = self._normalisers.get(field, _name)
        keyed = self._inner.copy()
        keyed.update(f"{field}\x1f".encode())
        outer_keyed = self._outer

        def pseudonym(text: str) -> str:
            inner = keyed.copy()
            # (surrogatepass: a lone surrogate, which a hostile row may hold, is hashed, not an error;
            # every other text gives the same bytes as plain UTF-8)
            inner.update(normalise(text.strip()).encode("utf-8", "surrogatepass"))
            outer = outer_keyed.copy()
            outer.update(inner.digest())
            return outer.hexdigest()

        return pseudonym

    def apply(self, row: dict, fields: tuple[str, ...]) -> dict:
        """A copy of ``row`` (same keys, same order) with the values of ``fields`` pseudonymised."""
        record = dict(row)
        for field in fields:
            if field in record:
                record[field] = self.pseudonym(field, record[field])
        return record

    def apply_everywhere(self, value, fields: tuple[str, ...]):
        """``value`` with every value of ``fields`` pseudonymised wherever it is, at any depth (a
        quarantined row may carry a personal field inside a list or an object where the contract has
        none). A personal field's value that is not a text (a list, an object, a number) is
        pseudonymised whole, as its JSON text."""
        if isinstance(value, dict):
            return {key: (self._pseudonym_of_any(key, item) if key in fields else self.apply_everywhere(item, fields))
                    for key, item in value.items()}
        if isinstance(value, list):
            return [self.apply_everywhere(item, fields) for item in value]
        return value

    def _pseudonym_of_any(self, field: str, value) -> str | None:
        if value is None or isinstance(value, str):
            return self.pseudonym(field, value)
        return self.pseudonym(field, json.dumps(value, ensure_ascii=False, sort_keys=True))

    def digest(self, data: bytes) -> str:
        """HMAC-SHA256 of ``data`` under the key: identifies a quarantined row's text without keeping it
        (a plain hash of a short text, such as a phone number, could be reversed by trying them all)."""
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()
