"""The raw layer's monthly partitions: created on demand by the loader (also concurrently), a warehouse of
the plain-table layout upgraded in place by ensure_schema, and retention that drops whole months and
keeps the ledger consistent."""

from __future__ import annotations

import json
import threading
from datetime import date

import psycopg
import pytest

from chiso.contract import ENTITIES, sha256_of_rows
from chiso.ingest.housekeeping import create_partitions_ahead, purge_raw
from chiso.ingest.load import load_extract
from chiso.ingest.pseudonymise import Pseudonymiser
from chiso.simulator.scenarios import get_scenario
from chiso.simulator.server import PortalSimulator
from chiso.core.warehouse import RAW_PARTITIONED_TABLES, ensure_raw_partitions, ensure_schema

KEY = Pseudonymiser("test-key")
PORTAL = PortalSimulator(5, get_scenario("single_commune"))
OCTOBER, NOVEMBER, DECEMBER = date(2024, 10, 30), date(2024, 11, 15), date(2024, 12, 2)

# The raw layer's DDL before partitioning (chiso/core/warehouse.py at 1426272), as a warehouse of that
# version holds it.
PREVIOUS_LAYOUT = """
create schema raw;
create table raw.load_ledger (
    load_id           bigserial primary key,
    entity            text        not null,
    business_date     date        not null,
    checksum          text        not null,
    source_path       text        not null,
    rows_in_manifest  integer     not null,
    rows_loaded       integer,
    rows_quarantined  integer,
    status            text        not null check (status in ('loading', 'loaded', 'superseded')),
    started_at        timestamptz not null default now(),
    finished_at       timestamptz
);
create unique index load_ledger_one_current on raw.load_ledger (entity, business_date) where status = 'loaded';
create table raw.quarantine (
    load_id        bigint      not null references raw.load_ledger (load_id),
    entity         text        not null,
    business_date  date        not null,
    source_file    text        not null,
    line_number    integer     not null,
    reason         text        not null,
    original_text  text        not null,
    quarantined_at timestamptz not null default now()
);
""" + "".join(f"""
create table raw.{table} (
    load_id      bigint      not null references raw.load_ledger (load_id),
    business_date date       not null,
    source_file  text        not null,
    line_number  integer     not null,
    loaded_at    timestamptz not null default now(),
    record       jsonb       not null
);
create index {table}_business_date_idx on raw.{table} (business_date);
""" for table in (entity.raw_table for entity in ENTITIES.values())) + """
create index portal__dossiers_dossier_code_idx on raw.portal__dossiers ((record ->> 'MaHoSo'));
create index portal__ratings_dossier_code_idx on raw.portal__ratings ((record ->> 'MaHoSo'));
"""


def _extract(directory, day: date, rows: list[dict] | None = None):
    rows = list(PORTAL.stream("dossiers", day))[:20] if rows is None else rows
    directory.mkdir(parents=True)
    (directory / "page-00001.json").write_text(json.dumps({"items": rows, "total_pages": 1}, ensure_ascii=False))
    sha256, _ = sha256_of_rows(rows)
    (directory / "manifest.json").write_text(json.dumps({"row_count": len(rows), "sha256": sha256}))
    return directory


def _load(url, directory, day):
    with psycopg.connect(url) as conn:
        return load_extract(conn, "dossiers", day, directory, KEY, allow_new_columns=False)


def _query(url, sql, params=None):
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def _partitions(url, table):
    return [name for (name,) in _query(url, "select inhrelid::regclass::text from pg_inherits "
                                            "where inhparent = %s::regclass order by 1", (f"raw.{table}",))]


def _ledger_balances(url):
    """Every loaded load's rows_loaded and rows_quarantined against the rows the raw layer holds for it."""
    return _query(url, """
        select ledger.load_id, ledger.rows_loaded, ledger.rows_quarantined,
               (select count(*) from raw.portal__dossiers as raw where raw.load_id = ledger.load_id),
               (select count(*) from raw.quarantine as q where q.load_id = ledger.load_id)
        from raw.load_ledger as ledger where status = 'loaded' order by load_id""")


def test_loads_create_their_month_and_nothing_else_and_a_month_without_a_partition_is_refused(make_database,
                                                                                              tmp_path):
    url = make_database("chiso_parts")
    ensure_schema(url)
    assert all(_query(url, "select relkind from pg_class where oid = %s::regclass", (f"raw.{table}",)) == [("p",)]
               for table in RAW_PARTITIONED_TABLES)
    for day in (OCTOBER, NOVEMBER):
        _load(url, _extract(tmp_path / day.isoformat(), day), day)
    assert _partitions(url, "portal__dossiers") == ["raw.portal__dossiers_p2024_10", "raw.portal__dossiers_p2024_11"]
    assert _partitions(url, "quarantine") == ["raw.quarantine_p2024_10", "raw.quarantine_p2024_11"]
    assert _partitions(url, "portal__units") == []
    # The partitioned indexes reach every partition: the day's and the dossier code's.
    indexed = _query(url, "select indexrelid::regclass::text from pg_index "
                          "where indrelid = 'raw.portal__dossiers_p2024_11'::regclass order by 1")
    assert [name for (name,) in indexed] == ["raw.portal__dossiers_p2024_11_business_date_idx",
                                             "raw.portal__dossiers_p2024_11_expr_idx"]
    # No default partition: a row of a month nobody created fails instead of hiding somewhere.
    with pytest.raises(psycopg.errors.CheckViolation, match="no partition"):
        _query(url, "insert into raw.portal__dossiers (load_id, business_date, source_file, line_number, record) "
                    "select load_id, date '2025-03-01', 'x', 1, '{}' from raw.load_ledger limit 1")
    # Loading the same day again changes nothing, the partitions included.
    before = _query(url, "select load_id, business_date, line_number, record from raw.portal__dossiers order by 1, 3")
    assert _load(url, tmp_path / NOVEMBER.isoformat(), NOVEMBER).skipped
    assert _query(url, "select load_id, business_date, line_number, record from raw.portal__dossiers "
                       "order by 1, 3") == before
    assert len(_partitions(url, "portal__dossiers")) == 2


def test_concurrent_creators_of_the_same_month_make_one_partition(make_database):
    url = make_database("chiso_parts")
    ensure_schema(url)
    start, results, failures = threading.Barrier(4), [], []

    def create():
        try:
            with psycopg.connect(url) as conn:
                start.wait()
                results.append(ensure_raw_partitions(conn, ["portal__dossiers", "quarantine"], NOVEMBER))
        except Exception as exc:  # noqa: BLE001 - the test reports whatever a creator raised
            failures.append(exc)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sorted(map(len, results)) == [0, 0, 0, 2], "one creator made both partitions, the others found them"
    assert _partitions(url, "portal__dossiers") == ["raw.portal__dossiers_p2024_11"]


def test_a_load_still_commits_its_own_transaction(make_database, tmp_path):
    """The partitions are created in a transaction of their own: it does not leave
    the caller's connection in a transaction that would hold the ledger lock through the load."""
    url = make_database("chiso_parts")
    ensure_schema(url)
    directory = _extract(tmp_path / "nov", NOVEMBER)
    with psycopg.connect(url) as conn:
        load_extract(conn, "dossiers", NOVEMBER, directory, KEY, allow_new_columns=False)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert _query(url, "select status from raw.load_ledger") == [("loaded",)]


def test_a_warehouse_of_plain_tables_is_moved_into_partitions_in_place(make_database, tmp_path):
    url = make_database("chiso_upgrade")
    with psycopg.connect(url) as conn:
        conn.execute(PREVIOUS_LAYOUT)
        # dbt's staging views read the raw tables: the upgrade must not be stopped by them.
        conn.execute("create schema staging; create view staging.stg_dossier_codes as "
                     "select record ->> 'MaHoSo' as dossier_code from raw.portal__dossiers")
    # The previous version's loads: three days over two months, one superseded, rows and quarantine.
    with psycopg.connect(url) as conn:
        for day, status, rows, quarantined in ((OCTOBER, "loaded", 3, 1), (NOVEMBER, "superseded", 2, 0),
                                               (NOVEMBER, "loaded", 4, 0), (DECEMBER, "loaded", 2, 1)):
            (load_id,) = conn.execute(
                "insert into raw.load_ledger (entity, business_date, checksum, source_path, rows_in_manifest, "
                "rows_loaded, rows_quarantined, status, finished_at) "
                "values ('dossiers', %s, %s, 'old', %s, %s, %s, %s, now()) returning load_id",
                (day, f"sum-{day}-{status}", rows + quarantined, rows, quarantined, status)).fetchone()
            if status == "superseded":
                continue  # the previous loader deleted a superseded load's rows
            for line in range(1, rows + 1):
                conn.execute("insert into raw.portal__dossiers (load_id, business_date, source_file, line_number, "
                             "record) values (%s, %s, 'page-00001.json', %s, %s)",
                             (load_id, day, line, json.dumps({"MaHoSo": f"H-{day}-{line}", "Ten": "Nguyễn"})))
            for line in range(rows + 1, rows + quarantined + 1):
                conn.execute("insert into raw.quarantine (load_id, entity, business_date, source_file, line_number, "
                             "reason, original_text) values (%s, 'dossiers', %s, 'page-00001.json', %s, 'bad', '{}')",
                             (load_id, day, line))
        conn.execute("insert into raw.portal__units (load_id, business_date, source_file, line_number, record) "
                     "select load_id, business_date, 'page-00001.json', 1, '{\"MaDonVi\": \"U1\"}' "
                     "from raw.load_ledger where status = 'loaded'")
    everything = {table: f"select * from raw.{table} order by load_id, line_number"
                  for table in ("portal__dossiers", "quarantine", "portal__units")}
    before = {table: _query(url, sql) for table, sql in everything.items()}
    ledger = _query(url, "select * from raw.load_ledger order by load_id")

    ensure_schema(url)
    ensure_schema(url)  # idempotent: the second run finds partitioned tables and moves nothing

    after = {table: _query(url, sql) for table, sql in everything.items()}
    # The upgrade appends the quarantine's source (the slice of the load: national for every earlier load).
    after["quarantine"] = [row[:-1] for row in after["quarantine"]]
    assert after == before, "every row, as it was"
    assert _query(url, "select distinct source from raw.quarantine") == [("national",)]
    # Every load as it was; the upgrade adds pseudonym_key_id and generated_at, unknown (null) for loads
    # made before them, and source (national: loads made before province slices were whole).
    assert [row[:-3] for row in _query(url, "select * from raw.load_ledger order by load_id")] == ledger
    assert _query(url, "select distinct pseudonym_key_id, generated_at, source from raw.load_ledger") == [
        (None, None, "national")]
    assert all(loaded == raw and quarantined == kept for _, loaded, quarantined, raw, kept in _ledger_balances(url))
    assert _partitions(url, "portal__dossiers") == ["raw.portal__dossiers_p2024_10", "raw.portal__dossiers_p2024_11",
                                                    "raw.portal__dossiers_p2024_12"]
    # Every month from the first row's to the last row's, November's quarantine (empty) included.
    assert _partitions(url, "quarantine") == ["raw.quarantine_p2024_10", "raw.quarantine_p2024_11",
                                              "raw.quarantine_p2024_12"]
    assert _query(url, "select count(*) from pg_class where relname like '%%before_partitioning%%'") == [(0,)]
    # The view went with the plain table; dbt's next build creates it again over the partitioned one.
    assert _query(url, "select to_regclass('staging.stg_dossier_codes')") == [(None,)]
    assert _query(url, "select count(*) from pg_constraint where conrelid = 'raw.portal__dossiers'::regclass "
                       "and contype = 'f'") == [(1,)], "the foreign key to the ledger is kept"
    assert {name for (name,) in _query(url, "select indexrelid::regclass::text from pg_index "
                                            "where indrelid = 'raw.portal__dossiers'::regclass")} == {
        "raw.portal__dossiers_business_date_idx", "raw.portal__dossiers_dossier_code_idx"}
    # The upgraded warehouse loads as a new one does: a newer extract of November supersedes its rows.
    result = _load(url, _extract(tmp_path / "nov", NOVEMBER), NOVEMBER)
    assert _query(url, "select count(*) from raw.portal__dossiers where business_date = %s",
                  (NOVEMBER,)) == [(result.rows_loaded,)]
    assert _query(url, "select count(*) from raw.portal__dossiers") == [(result.rows_loaded + 3 + 2,)]
    assert all(loaded == raw and quarantined == kept for _, loaded, quarantined, raw, kept in _ledger_balances(url))


def test_retention_drops_whole_months_and_marks_their_loads_purged(make_database, tmp_path):
    url = make_database("chiso_retention")
    ensure_schema(url)
    october_rows = list(PORTAL.stream("dossiers", OCTOBER))[:20]
    october_rows[0] = {**october_rows[0], "TrangThaiHoSo": 42}  # one quarantined row in October
    _load(url, _extract(tmp_path / "oct", OCTOBER, october_rows), OCTOBER)
    _load(url, _extract(tmp_path / "nov-first", NOVEMBER, list(PORTAL.stream("dossiers", NOVEMBER))[:5]), NOVEMBER)
    _load(url, _extract(tmp_path / "nov", NOVEMBER), NOVEMBER)  # supersedes the first November load
    _load(url, _extract(tmp_path / "dec", DECEMBER), DECEMBER)
    assert _query(url, "select count(*) from raw.quarantine") == [(1,)]

    # Cut-off 2024-11-20: October lies entirely before it, November straddles it and is kept whole.
    with psycopg.connect(url) as conn:
        purged = purge_raw(conn, retention_days=30, today=date(2024, 12, 20))
    assert purged.dropped == ["raw.portal__dossiers_p2024_10", "raw.quarantine_p2024_10"]
    assert purged.kept_partial == ["raw.portal__dossiers_p2024_11", "raw.quarantine_p2024_11"]
    assert purged.ledger_rows == 1
    assert _query(url, "select business_date, status from raw.load_ledger order by load_id") == [
        (OCTOBER, "purged"), (NOVEMBER, "superseded"), (NOVEMBER, "loaded"), (DECEMBER, "loaded")]
    assert _query(url, "select min(business_date) from raw.portal__dossiers") == [(NOVEMBER,)]
    assert _query(url, "select count(*) from raw.quarantine") == [(0,)]
    assert all(loaded == raw and quarantined == kept for _, loaded, quarantined, raw, kept in _ledger_balances(url))

    # Once December's first day is past the cut-off, November goes too; running it again drops nothing more.
    with psycopg.connect(url) as conn:
        assert purge_raw(conn, 30, date(2024, 12, 31)).dropped == ["raw.portal__dossiers_p2024_11",
                                                                   "raw.quarantine_p2024_11"]
        assert purge_raw(conn, 30, date(2024, 12, 31)).dropped == []
    assert _query(url, "select business_date, status from raw.load_ledger order by load_id")[1:] == [
        (NOVEMBER, "superseded"), (NOVEMBER, "purged"), (DECEMBER, "loaded")]
    # A purged day that is loaded again (its extract still landed) comes back whole, in a new partition.
    result = _load(url, tmp_path / "nov", NOVEMBER)
    assert not result.skipped
    assert _query(url, "select count(*) from raw.portal__dossiers where business_date = %s",
                  (NOVEMBER,)) == [(result.rows_loaded,)]
    with psycopg.connect(url) as conn, pytest.raises(ValueError):
        purge_raw(conn, 0, date(2024, 12, 31))


def test_housekeeping_creates_next_months_partitions_ahead(make_database):
    url = make_database("chiso_parts")
    ensure_schema(url)
    with psycopg.connect(url) as conn:
        created = create_partitions_ahead(conn, date(2024, 12, 20))
        assert create_partitions_ahead(conn, date(2024, 12, 21)) == []
    assert len(created) == 2 * len(RAW_PARTITIONED_TABLES)
    assert _partitions(url, "portal__process_log") == ["raw.portal__process_log_p2024_12",
                                                      "raw.portal__process_log_p2025_01"]
