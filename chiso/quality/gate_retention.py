"""Retention of the quality gates' records (CHISO_QUALITY_RETENTION_DAYS).

Every gate run leaves GX validation results (JSON, next to the Data Docs folder), their Data Docs
pages and one row per expectation in ``ops.validation_results``, with samples of failing rows. A
year of daily runs is thousands of pages nobody reads and an index too long to use, so
``chiso_housekeeping`` deletes those of business dates past the retention and rebuilds the index.
``ops.gate_runs`` (one line per gate run: the day, whether it passed, which expectations failed)
is kept: it is the audit of why each day was or was not published.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from chiso.quality import gates
from chiso.core.warehouse import OPS_SCHEMA, connect

log = logging.getLogger(__name__)
_RUN_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}$")  # gates name their GX runs by the business date


@dataclass(frozen=True)
class PurgedQualityRecords:
    cutoff: date  # records of business dates before this day were deleted
    files: int  # validation results and Data Docs pages
    validation_rows: int  # rows of ops.validation_results


def purge_quality_records(retention_days: int, today: date, url: str | None = None) -> PurgedQualityRecords:
    """Delete the gates' validation results, Data Docs pages and ``ops.validation_results`` rows of
    business dates older than ``retention_days`` before ``today``; rebuild the Data Docs index."""
    if retention_days < 1:
        raise ValueError("the retention must be at least one day")
    cutoff = today - timedelta(days=retention_days)
    files = 0
    for base in (gates.validation_store_dir(), gates.data_docs_dir() / "validations"):
        files += _remove_runs_before(base, cutoff)
    with connect(url) as conn:
        rows = conn.execute(f"delete from {OPS_SCHEMA}.validation_results where business_date < %s",
                            (cutoff,)).rowcount
    if files:
        gates.rebuild_data_docs_index()
    log.info("quality records retention %d days: removed %d file(s) and %d validation row(s) of business "
             "dates before %s", retention_days, files, rows, cutoff)
    return PurgedQualityRecords(cutoff, files, rows)


def _remove_runs_before(base: Path, cutoff: date) -> int:
    """Remove the run folders (``…/<suite>/<business date>/<run time>/…``) of days before ``cutoff``."""
    if not base.exists():
        return 0
    removed = 0
    for run_dir in sorted(p for p in base.rglob("*") if p.is_dir() and _RUN_NAME.match(p.name)):
        if run_dir.exists() and date.fromisoformat(run_dir.name) < cutoff:
            removed += sum(1 for path in run_dir.rglob("*") if path.is_file())
            shutil.rmtree(run_dir)
    for directory in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(directory.iterdir()):  # a suite with no run left
            directory.rmdir()
    return removed
