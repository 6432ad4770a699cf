"""Canonical serialisation of extract rows, which the manifest checksum is computed over.

A page of JSON can be re-encoded in many byte-different ways; the manifest's sha256 is defined over
one canonical NDJSON form (UTF-8, sorted keys, no insignificant whitespace, one row per line) so
that the portal and chiso can both compute it from the rows, whatever the paging.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

MANIFEST_FORMAT = "canonical-ndjson/v1"


def canonical_line(row: Mapping[str, Any]) -> bytes:
    return (json.dumps(row, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n").encode()


def sha256_of_rows(rows: Iterable[Mapping[str, Any]]) -> tuple[str, int]:
    """Return (hex sha256, row count) of the canonical NDJSON of ``rows``."""
    digest = hashlib.sha256()
    count = 0
    for row in rows:
        digest.update(canonical_line(row))
        count += 1
    return digest.hexdigest(), count
