"""Retention of the landing zone: extracts hold applicants' personal data, so they are kept only as
long as re-loads and audits need them (CHISO_LANDING_RETENTION_DAYS), then deleted."""

from __future__ import annotations

import logging
import re
import shutil
from datetime import date, timedelta
from pathlib import Path

from chiso.ingest.landing import SOURCE

log = logging.getLogger(__name__)
_DAY_DIR = re.compile(r"^business_date=(\d{4}-\d{2}-\d{2})$")


def purge_landing(root: Path, retention_days: int, today: date) -> list[Path]:
    """Delete landed (and abandoned incoming) extracts of business dates older than the retention."""
    if retention_days < 1:
        raise ValueError("the retention must be at least one day")
    cutoff = today - timedelta(days=retention_days)
    removed = []
    for base in (root / SOURCE, root / "_incoming" / SOURCE):
        for day_dir in sorted(base.glob("*/business_date=*")):
            match = _DAY_DIR.match(day_dir.name)
            if match and date.fromisoformat(match.group(1)) < cutoff:
                shutil.rmtree(day_dir)
                removed.append(day_dir)
    log.info("landing retention %d days: removed %d day(s) of extracts older than %s", retention_days,
             len(removed), cutoff)
    return removed
