"""The immutable landing zone.

    <root>/portal/<entity>/business_date=<YYYY-MM-DD>/sha256=<first 16 hex>/{manifest.json,page-*.json}

A landed directory is never modified: a corrected extract for the same day has another checksum and
so lands beside the first. Files carry applicants' personal data: owner-only permissions.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from chiso.contract import sha256_of_rows

SOURCE = "portal"
FILE_MODE = 0o600
DIR_MODE = 0o700


class LandingError(RuntimeError):
    pass


def _day_dir(root: Path, entity: str, day: date) -> Path:
    return root / SOURCE / entity / f"business_date={day.isoformat()}"


def landed_dir(root: Path, entity: str, day: date, sha256: str) -> Path:
    return _day_dir(root, entity, day) / f"sha256={sha256[:16]}"


def incoming_dir(root: Path, entity: str, day: date, sha256: str) -> Path:
    return root / "_incoming" / SOURCE / entity / f"business_date={day.isoformat()}" / f"sha256={sha256[:16]}"


def write_file_once(path: Path, data: bytes) -> None:
    """Write atomically (temp file + rename) with owner-only permissions."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    tmp = path.with_suffix(path.suffix + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True)
class PageRow:
    source_file: str  # page file name, relative to the landed directory
    line_number: int  # 1-based position of the row in the whole day's extract
    row: dict


def read_manifest(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text(encoding="utf-8"))


def iter_rows(directory: Path) -> Iterator[PageRow]:
    line_number = 0
    for page_path in sorted(directory.glob("page-*.json")):
        for row in json.loads(page_path.read_bytes())["items"]:
            line_number += 1
            yield PageRow(page_path.name, line_number, row)


def verify(directory: Path) -> dict:
    """Check the pages against the manifest (row count and sha256); return the manifest."""
    manifest = read_manifest(directory)
    sha256, count = sha256_of_rows(page_row.row for page_row in iter_rows(directory))
    if (sha256, count) != (manifest["sha256"], manifest["row_count"]):
        raise LandingError(
            f"{directory}: payload has {count} rows, sha256 {sha256}; manifest says "
            f"{manifest['row_count']} rows, sha256 {manifest['sha256']}"
        )
    return manifest


def land(fetched: Path, root: Path, entity: str, day: date) -> Path:
    """Verify a fetched extract and move it, whole, into its immutable place."""
    manifest = verify(fetched)
    target = landed_dir(root, entity, day, manifest["sha256"])
    if fetched == target:
        return target
    if target.exists():  # the same extract was landed before: keep the first copy
        shutil.rmtree(fetched)
        return target
    target.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.replace(fetched, target)  # atomic on one filesystem: readers see all pages or none
    return target
