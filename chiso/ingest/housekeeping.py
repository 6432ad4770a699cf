"""Retention of the landing zone and of the raw layer.

Landed extracts hold applicants' personal data, so they are kept only as long as re-loads and audits
need them (CHISO_LANDING_RETENTION_DAYS), then deleted. The raw layer (pseudonymised) is kept for
CHISO_RAW_RETENTION_DAYS (0: for ever) by dropping its monthly partitions (docs/ingest.md, "Partitions")."""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import psycopg

from chiso.contract import ENTITIES
from chiso.ingest.landing import SOURCE
from chiso.core.warehouse import RAW_PARTITIONED_TABLES, RAW_SCHEMA, ensure_raw_partitions, next_month

log = logging.getLogger(__name__)
_DAY_DIR = re.compile(r"^business_date=(\d{4}-\d{2}-\d{2})$")


def purge_landing(root: Path, retention_days: int, today: date) -> list[Path]:
    """Delete landed (and abandoned incoming) extracts of business dates older than the retention."""
    if retention_days < 1:
        raise ValueError("the retention must be at least one day")
    cutoff = today - timedelta(days=retention_days)
    removed = []
    for base in (root / SOURCE, root / "_incoming" / SOURCE):
        # portal/<entity>/business_date=... and a province's slice, portal/<entity>/tinh=<code>/business_date=...
        for day_dir in sorted([*base.glob("*/business_date=*"), *base.glob("*/tinh=*/business_date=*")]):
            match = _DAY_DIR.match(day_dir.name)
            if match and date.fromisoformat(match.group(1)) < cutoff:
                shutil.rmtree(day_dir)
                removed.append(day_dir)
    log.info("landing retention %d days: removed %d day(s) of extracts older than %s", retention_days,
             len(removed), cutoff)
    return removed


@dataclass(frozen=True)
class RawPurge:
    cutoff: date
    dropped: list[str]  # partitions dropped, e.g. raw.portal__dossiers_p2024_11
    ledger_rows: int  # ledger rows of the dropped days marked 'purged'
    kept_partial: list[str]  # partitions holding days on both sides of the cut-off, kept whole


_PARTITION_BOUND = re.compile(r"FOR VALUES FROM \('(\d{4}-\d{2}-\d{2})'\) TO \('(\d{4}-\d{2}-\d{2})'\)")


def create_partitions_ahead(conn: psycopg.Connection, today: date) -> list[str]:
    """Create this month's and next month's partitions of every raw table if missing, so that the
    daily loads find their month there and never wait for the ledger lock a creation takes."""
    return ensure_raw_partitions(conn, RAW_PARTITIONED_TABLES, today, next_month(today))


def purge_raw(conn: psycopg.Connection, retention_days: int, today: date) -> RawPurge:
    """Drop the raw layer's monthly partitions that lie entirely before the cut-off (today minus the
    retention), with their quarantine, and mark those days' loads 'purged' in the ledger, in one
    transaction. A month that straddles the cut-off is kept whole until its last day has passed it: the
    raw layer keeps between ``retention_days`` and ``retention_days`` + 30 days. Deleting its older days
    row by row would cost each morning about as much as a day's load (dead tuples, WAL, vacuum), to
    shorten by at most a month the life of rows that hold only pseudonyms; the landing zone, which holds
    personal data in clear, has its own retention to the day."""
    if retention_days < 1:
        raise ValueError("the retention must be at least one day")
    cutoff = today - timedelta(days=retention_days)
    entity_of_table = {entity.raw_table: entity.name for entity in ENTITIES.values()}
    dropped, kept_partial, ledger_rows = [], [], 0
    with conn.transaction():
        # The ledger before the parents, as a load and a partition's creator lock them: dropping a
        # partition locks its parent (ACCESS EXCLUSIVE), and a creator holding the ledger while it waits
        # for that parent would otherwise deadlock with the ledger update below. This also waits for
        # the loads in flight to commit, so no load of a dropped month is left half-accounted.
        conn.execute(f"lock table {RAW_SCHEMA}.load_ledger in share row exclusive mode")
        partitions = conn.execute(
            "select parent.relname, child.relname, pg_get_expr(child.relpartbound, child.oid) "
            "from pg_inherits as inherits "
            "join pg_class as parent on parent.oid = inherits.inhparent "
            "join pg_class as child on child.oid = inherits.inhrelid "
            "join pg_namespace as schema on schema.oid = parent.relnamespace "
            "where schema.nspname = %s and parent.relname = any(%s) order by parent.relname, child.relname",
            (RAW_SCHEMA, list(RAW_PARTITIONED_TABLES))).fetchall()
        for table, partition, bound in partitions:
            match = _PARTITION_BOUND.fullmatch(bound)
            if not match:
                log.warning("raw retention: %s.%s has bound %r, not a range of days; left alone",
                            RAW_SCHEMA, partition, bound)
                continue
            first, end = (date.fromisoformat(value) for value in match.groups())  # end is exclusive
            if end <= cutoff:
                conn.execute(f"drop table {RAW_SCHEMA}.{partition}")
                dropped.append(f"{RAW_SCHEMA}.{partition}")
                if table in entity_of_table:
                    ledger_rows += conn.execute(
                        f"update {RAW_SCHEMA}.load_ledger set status = 'purged' "
                        f"where entity = %s and business_date >= %s and business_date < %s and status = 'loaded'",
                        (entity_of_table[table], first, end)).rowcount
            elif first < cutoff:
                kept_partial.append(f"{RAW_SCHEMA}.{partition}")
    log.info("raw retention %d days (cut-off %s): dropped %d partition(s), %d ledger row(s) marked purged; "
             "kept whole until their month has passed: %s", retention_days, cutoff, len(dropped), ledger_rows,
             ", ".join(kept_partial) or "none")
    return RawPurge(cutoff, dropped, ledger_rows, kept_partial)
