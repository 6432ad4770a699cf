"""Canonical serialisation of extract rows, which the manifest checksum is computed over.

A page of JSON can be re-encoded in many byte-different ways; the manifest's sha256 is defined over
one canonical NDJSON form (UTF-8, sorted keys, no insignificant whitespace, one row per line) so
that the portal and chiso can both compute it from the rows, whatever the paging.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MANIFEST_FORMAT = "canonical-ndjson/v1"


@dataclass(frozen=True)
class UndecodableRow:
    """A row whose JSON text no decoder can turn into a value: nested too deep, an integer too long
    for any column, or not JSON at all. Its canonical line is its text as sent (without surrounding
    whitespace), so that the portal and chiso still agree on the day's checksum; the loader
    quarantines it by reference, never its text."""

    text: str
    problem: str  # why it cannot be decoded, naming none of its content
    canonical: bytes | None = None  # its canonical line when it is JSON after all (nested too deep to use)


def canonical_line(row: Mapping[str, Any] | UndecodableRow) -> bytes:
    """The row's canonical NDJSON line. A row holding a lone surrogate (a ``\\ud800`` escape that UTF-8
    cannot carry) is written with every non-ASCII character escaped, which is still one definite form."""
    if isinstance(row, UndecodableRow):
        if row.canonical is not None:
            return row.canonical
        return row.text.strip().encode("utf-8", "surrogatepass") + b"\n"
    text = json.dumps(row, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"
    try:
        return text.encode()
    except UnicodeEncodeError:
        return (json.dumps(row, ensure_ascii=True, sort_keys=True, separators=(",", ":")) + "\n").encode()


def sha256_of_rows(rows: Iterable[Mapping[str, Any]]) -> tuple[str, int]:
    """Return (hex sha256, row count) of the canonical NDJSON of ``rows``."""
    digest = hashlib.sha256()
    count = 0
    for row in rows:
        digest.update(canonical_line(row))
        count += 1
    return digest.hexdigest(), count
