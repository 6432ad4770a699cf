"""Connections to the warehouse and the tables chiso owns outside dbt (raw layer, ledgers).

dbt owns staging and marts; the raw layer and the operational ledgers are created here, by code,
because they must exist before the first load and must never be rebuilt by a ``dbt build``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import contextmanager
from datetime import date, timedelta
from urllib.parse import unquote, urlparse

import psycopg

from chiso.core import settings
from chiso.contract import ENTITIES

log = logging.getLogger(__name__)

RAW_SCHEMA = "raw"
OPS_SCHEMA = "ops"


def warehouse_url() -> str:
    return settings.require("CHISO_WAREHOUSE_URL")


def check_reachable(url: str | None = None, what: str = "CHISO_WAREHOUSE_URL") -> str:
    """The warehouse URL, once a connection to it works; else SettingError in one sentence, password masked."""
    url = url or warehouse_url()
    try:
        with psycopg.connect(url, connect_timeout=5):
            return url
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise settings.SettingError(f"The warehouse {settings.mask_url(url)} ({what}) cannot be reached: "
                                    f"{reason.rstrip('.')}.") from None


def url_parts(url: str) -> dict[str, str]:
    """Split a postgres URL into the pieces dbt's profile and libpq tools want."""
    parsed = urlparse(url)
    if parsed.scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise ValueError(f"CHISO_WAREHOUSE_URL must be a postgresql:// URL, got scheme {parsed.scheme!r}")
    return {
        "host": parsed.hostname or "127.0.0.1",
        "port": str(parsed.port or 5432),
        "user": unquote(parsed.username or "postgres"),
        "password": unquote(parsed.password or ""),
        "dbname": (parsed.path or "/postgres").lstrip("/") or "postgres",
    }


def sqlalchemy_url(url: str) -> str:
    """The same database as a SQLAlchemy URL (Great Expectations connects through SQLAlchemy)."""
    return "postgresql+psycopg2://" + url.split("://", 1)[1]


@contextmanager
def connect(url: str | None = None, autocommit: bool = False):
    with psycopg.connect(url or warehouse_url(), autocommit=autocommit) as conn:
        yield conn


def _raw_entity_ddl(table: str) -> str:
    # One generic shape per entity: the validated, pseudonymised record as JSONB plus load metadata.
    # JSONB keeps every portal field (and nested lists) without a migration per contract change;
    # staging models type the fields they use. Partitioned by month of business date (see
    # RAW_PARTITIONED_TABLES); the indexes are partitioned indexes, so every partition gets them.
    return f"""
    create table if not exists {RAW_SCHEMA}.{table} (
        load_id      bigint      not null references {RAW_SCHEMA}.load_ledger (load_id),
        business_date date       not null,
        source_file  text        not null,
        line_number  integer     not null,
        loaded_at    timestamptz not null default now(),
        record       jsonb       not null
    ) partition by range (business_date);
    create index if not exists {table}_business_date_idx on {RAW_SCHEMA}.{table} (business_date);
    """


DDL = f"""
create schema if not exists {RAW_SCHEMA};
create schema if not exists {OPS_SCHEMA};

create table if not exists {RAW_SCHEMA}.load_ledger (
    load_id           bigserial primary key,
    entity            text        not null,
    business_date     date        not null,
    checksum          text        not null,
    source_path       text        not null,
    rows_in_manifest  integer     not null,
    rows_loaded       integer,
    rows_quarantined  integer,
    -- purged: the rows were loaded, then dropped by the raw layer's retention (chiso.ingest.housekeeping).
    -- stale: an extract older (by the portal's generated_at) than the one loaded; recorded, not applied.
    status            text        not null check (status in ('loading', 'loaded', 'superseded', 'purged', 'stale')),
    started_at        timestamptz not null default now(),
    finished_at       timestamptz
);
-- Which key made the load's pseudonyms (Pseudonymiser.key_id, never the key); null for loads made
-- before it was recorded. Added in place to warehouses created earlier.
alter table {RAW_SCHEMA}.load_ledger add column if not exists pseudonym_key_id text;
-- When the portal generated the extract (its manifest's generated_at), if it says: the newer one wins.
alter table {RAW_SCHEMA}.load_ledger add column if not exists generated_at timestamptz;
-- Which slice of the day the load is (chiso.ingest.sources): a province's code, or national for an
-- entity fetched whole (and for every load made before slices existed). One current load per slice.
-- (Altered only when missing: an ALTER locks the table even when it has nothing to do.)
do $$ begin
    if not exists (select 1 from pg_attribute where attrelid = '{RAW_SCHEMA}.load_ledger'::regclass
                   and attname = 'source' and not attisdropped) then
        alter table {RAW_SCHEMA}.load_ledger add column source text not null default 'national';
    end if;
end $$;
create unique index if not exists load_ledger_one_current_per_source
    on {RAW_SCHEMA}.load_ledger (entity, source, business_date) where status = 'loaded';
drop index if exists {RAW_SCHEMA}.load_ledger_one_current;

create table if not exists {RAW_SCHEMA}.quarantine (
    load_id        bigint      not null references {RAW_SCHEMA}.load_ledger (load_id),
    entity         text        not null,
    business_date  date        not null,
    source_file    text        not null,
    line_number    integer     not null,
    reason         text        not null,
    original_text  text        not null,
    quarantined_at timestamptz not null default now()
) partition by range (business_date);
-- The slice of the load that quarantined the row (as in load_ledger.source).
do $$ begin
    if not exists (select 1 from pg_attribute where attrelid = '{RAW_SCHEMA}.quarantine'::regclass
                   and attname = 'source' and not attisdropped) then
        alter table {RAW_SCHEMA}.quarantine add column source text not null default 'national';
    end if;
end $$;

create table if not exists {OPS_SCHEMA}.gate_runs (
    gate_run_id        bigserial primary key,
    suite              text        not null,
    business_date      date        not null,
    success            boolean     not null,
    failed_expectations jsonb      not null,
    run_at             timestamptz not null default now()
);

-- One row per expectation per gate run: data-quality trends for Metabase (docs/quality.md).
create table if not exists {OPS_SCHEMA}.validation_results (
    validation_result_id bigserial primary key,
    gate_run_id      bigint      not null references {OPS_SCHEMA}.gate_runs (gate_run_id),
    business_date    date        not null,
    layer            text        not null,
    suite            text        not null,
    expectation_type text        not null,
    expectation_name text,
    column_names     text,
    severity         text        not null check (severity in ('block', 'warn')),
    success          boolean     not null,
    observed_value   jsonb,
    sample           jsonb,
    data_docs_page   text,
    validated_at     timestamptz not null default now()
);
create index if not exists validation_results_business_date_idx
    on {OPS_SCHEMA}.validation_results (business_date, layer);

-- Every publication of the marts to the reporting schema (chiso.publish.publication).
create table if not exists {OPS_SCHEMA}.reporting_publications (
    publication_id bigserial primary key,
    business_date  date        not null,
    relations      integer     not null,
    warnings       jsonb       not null,
    published_at   timestamptz not null default now()
);
-- The newest built_at of the engine's marts the publication compared with its published figures
-- (chiso.publish.published_values): the next publication compares only rows built after it.
alter table {OPS_SCHEMA}.reporting_publications add column if not exists figures_built_through timestamptz;

-- Every figure as it was published (chiso.publish.published_values, docs/publication.md "As published"):
-- append-only, one row per publication that published a new or different value of a key.
create table if not exists {OPS_SCHEMA}.published_indicator_values (
    unit_code                text        not null,
    indicator_code           text        not null,
    period_type              text        not null,
    as_of_date               date        not null,
    publication_id           bigint      not null references {OPS_SCHEMA}.reporting_publications (publication_id),
    published_business_date  date        not null,
    period_start             date        not null,
    numerator                numeric,
    denominator              numeric,
    rate                     numeric,
    score                    numeric,
    rule_version             text        not null,
    -- A restatement: the version it replaces and why (null on a key's first publication).
    previous_publication_id  bigint,
    late_dossiers            integer,
    corrected_dossiers       integer,
    rule_version_changed     boolean,
    primary key (unit_code, indicator_code, period_type, as_of_date, publication_id)
);
create index if not exists published_indicator_values_publication_idx
    on {OPS_SCHEMA}.published_indicator_values (publication_id);

create table if not exists {OPS_SCHEMA}.published_unit_scores (
    unit_code                text        not null,
    period_type              text        not null,
    as_of_date               date        not null,
    publication_id           bigint      not null references {OPS_SCHEMA}.reporting_publications (publication_id),
    published_business_date  date        not null,
    ckmb_score               numeric,
    tdgq_score               numeric,
    online_score             numeric,
    tttt_score               numeric,
    mdsh_score               numeric,
    mdhl_score               numeric,
    total_score              numeric,
    class_code               text,
    rank_in_peer_set         integer,
    peer_count               integer,
    rule_version             text        not null,
    previous_publication_id  bigint,
    primary key (unit_code, period_type, as_of_date, publication_id)
);
create index if not exists published_unit_scores_publication_idx
    on {OPS_SCHEMA}.published_unit_scores (publication_id);

create table if not exists {OPS_SCHEMA}.report_deliveries (
    report_code    text        not null,
    business_date  date        not null,
    recipient      text        not null,
    message_id     text        not null,
    sent_at        timestamptz not null default now(),
    primary key (report_code, business_date, recipient)
);

-- Reports (chiso/reports/delivery.py): which period a delivery covers, in words, and deliberate re-sends.
alter table {OPS_SCHEMA}.report_deliveries add column if not exists period_label text;
create table if not exists {OPS_SCHEMA}.report_resends (
    resend_id      bigserial   primary key,
    report_code    text        not null,
    business_date  date        not null,
    recipient      text        not null,
    message_id     text        not null,
    reason         text        not null,
    sent_at        timestamptz not null default now()
);

create table if not exists {OPS_SCHEMA}.publications (
    report_code    text        not null,
    business_date  date        not null,
    recipients     integer     not null,
    published_at   timestamptz not null default now(),
    primary key (report_code, business_date)
);

-- The portal's published 766 evaluation: one row per evaluated unit of one published document.
create table if not exists {RAW_SCHEMA}.portal__evaluations (
    load_id        bigint      not null references {RAW_SCHEMA}.load_ledger (load_id),
    business_date  date        not null,
    province_code  text        not null,
    period_type    text        not null,
    period_year    integer     not null,
    period_number  integer,
    extracted_at   timestamptz,
    source_file    text        not null,
    line_number    integer     not null,
    loaded_at      timestamptz not null default now(),
    record         jsonb       not null
);
-- The national overview publishes no extraction time (its captures are dated by hand or by file name).
alter table {RAW_SCHEMA}.portal__evaluations alter column extracted_at drop not null;

-- Each loaded capture of the published evaluation: the form it came in (docs/engine.md, "Reconciliation"),
-- which units it covers and the populations its ranks were published over, as the capture declares them.
create table if not exists {RAW_SCHEMA}.portal__evaluation_captures (
    load_id            bigint      primary key references {RAW_SCHEMA}.load_ledger (load_id),
    business_date      date        not null,
    province_code      text        not null,
    period_type        text        not null,
    period_year        integer     not null,
    period_number      integer,
    form               text        not null,
    unit_scope         text        not null check (unit_scope in ('all units', 'agencies', 'communes', 'provinces')),
    detail             text        not null check (detail in ('full', 'score-only blocks', 'summary-only')),
    units_in_capture   integer     not null,
    declared_units     integer,
    declared_agencies  integer,
    declared_communes  integer,
    overview           jsonb,
    source_file        text        not null,
    loaded_at          timestamptz not null default now()
);
""" + "".join(_raw_entity_ddl(entity.raw_table) for entity in ENTITIES.values()) + f"""
-- The engine's nightly build re-derives only the dossiers that changed: it finds all their versions here.
create index if not exists portal__dossiers_dossier_code_idx on {RAW_SCHEMA}.portal__dossiers ((record ->> 'MaHoSo'));
create index if not exists portal__ratings_dossier_code_idx on {RAW_SCHEMA}.portal__ratings ((record ->> 'MaHoSo'));
"""


# Tables partitioned by range of business_date, one partition per calendar month (docs/ingest.md,
# "Partitions"). Monthly rather than daily: a national deployment keeps years of raw history, and the
# queries that do not prune (dbt's staging reads, the engine's MaHoSo look-ups across all of history)
# plan and lock every partition and every partition's indexes; 12 partitions a year per table stay far
# below max_locks_per_transaction where 365 would not. A day's reload deletes one day's rows inside its
# month (the business_date index finds them), as it did before partitioning. No default partition: a
# row of a month nobody created a partition for is a bug to fail loudly on, and a default partition
# would have to be scanned (and locked) whenever a new month's partition is created.
RAW_PARTITIONED_TABLES = tuple(entity.raw_table for entity in ENTITIES.values()) + ("quarantine",)
# Where ensure_schema moves a plain table of the previous layout while it copies its rows.
_SET_ASIDE_SUFFIX = "__before_partitioning"
_RAW_COLUMNS = {
    "quarantine": "load_id, entity, business_date, source_file, line_number, reason, original_text, quarantined_at",
    **{entity.raw_table: "load_id, business_date, source_file, line_number, loaded_at, record"
       for entity in ENTITIES.values()},
}


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def partition_name(table: str, month: date) -> str:
    """raw.portal__dossiers' partition of November 2024 is raw.portal__dossiers_p2024_11."""
    return f"{table}_p{month:%Y_%m}"


def analyze_raw_partition(conn: psycopg.Connection, table: str, day: date) -> None:
    """Refresh the planner's statistics of the month partition of ``table`` holding ``day``, after a load
    wrote into it. Autovacuum analyses later, not before the night's gates and build: until then the
    planner believes the day has no rows, and a national day's 350k dossiers were compared with the
    staging batch in a nested loop (350k x 350k rows, the staging gate stalled). ANALYZE samples a fixed
    number of rows, so it costs seconds whatever the partition's size."""
    conn.execute(f"analyze {RAW_SCHEMA}.{partition_name(table, month_start(day))}")


def analyze_loaded_day(conn: psycopg.Connection, entity_name: str, day: date) -> None:
    """After a load of ``entity_name`` for ``day`` committed: its raw and quarantine partitions' statistics."""
    conn.commit()
    analyze_raw_partition(conn, ENTITIES[entity_name].raw_table, day)
    analyze_raw_partition(conn, "quarantine", day)
    conn.commit()


def ensure_raw_partitions(conn: psycopg.Connection, tables: Iterable[str], first_day: date,
                          last_day: date | None = None) -> list[str]:
    """Create the monthly partitions of ``tables`` (names in the raw schema) covering ``first_day`` to
    ``last_day`` that do not exist yet; return the names created. Idempotent, and safe when loads run
    concurrently: creators are serialised by an advisory lock and look again once they hold it.

    Runs in a transaction of its own (a savepoint if the caller has one open), which should commit
    before a load starts: creating a partition locks ``raw.load_ledger`` in SHARE ROW EXCLUSIVE mode
    (the partition's foreign key), which would hold every other load's ledger insert back until the
    whole load committed. The ledger is locked before the parent table, the order a load takes them
    in (it writes its ledger row before its COPY), so that a creator and a load cannot deadlock. The
    partition is created on its own and then attached, which takes only SHARE UPDATE EXCLUSIVE on the
    parent: readers and COPYs into other months go on meanwhile."""
    months = []
    month = month_start(first_day)
    while month <= (last_day or first_day):
        months.append(month)
        month = next_month(month)
    wanted = [(table, month) for table in tables for month in months]

    def missing() -> list[tuple[str, date]]:
        names = [f"{RAW_SCHEMA}.{partition_name(table, month)}" for table, month in wanted]
        exists = conn.execute("select to_regclass(name) is not null from unnest(%s::text[]) "
                              "with ordinality as wanted (name, place) order by place", (names,)).fetchall()
        return [pair for pair, (present,) in zip(wanted, exists) if not present]

    created = []
    # Even the look-up runs in a transaction block: a bare execute on a connection that is not in
    # autocommit would open a transaction that the caller's own ``conn.transaction()`` then only nests in.
    with conn.transaction():
        if not missing():  # the usual case: no lock at all
            return []
        conn.execute("select pg_advisory_xact_lock(hashtext('chiso.raw_partitions'))")
        conn.execute(f"lock table {RAW_SCHEMA}.load_ledger in share row exclusive mode")
        for table, month in missing():
            name = partition_name(table, month)
            conn.execute(f"create table {RAW_SCHEMA}.{name} (like {RAW_SCHEMA}.{table} including defaults)")
            conn.execute(f"alter table {RAW_SCHEMA}.{table} attach partition {RAW_SCHEMA}.{name} "
                         f"for values from ('{month.isoformat()}') to ('{next_month(month).isoformat()}')")
            created.append(name)
    log.info("created raw partitions %s", ", ".join(created))
    return created


def _plain_raw_tables(conn: psycopg.Connection) -> list[str]:
    """The raw tables still in the layout before partitioning (plain tables)."""
    rows = conn.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = %s and c.relkind = 'r' and c.relname = any(%s)",
        (RAW_SCHEMA, list(RAW_PARTITIONED_TABLES))).fetchall()
    return [name for (name,) in rows]


def _set_aside(conn: psycopg.Connection, table: str) -> str:
    """Rename a plain raw table out of the way and drop its indexes and foreign key, whose names the
    partitioned table takes over (the table itself is dropped once its rows are moved)."""
    aside = table + _SET_ASIDE_SUFFIX
    conn.execute(f"alter table {RAW_SCHEMA}.{table} rename to {aside}")
    for (index,) in conn.execute("select indexrelid::regclass::text from pg_index where indrelid = %s::regclass",
                                 (f"{RAW_SCHEMA}.{aside}",)).fetchall():
        conn.execute(f"drop index {index}")
    for (constraint,) in conn.execute("select conname from pg_constraint where conrelid = %s::regclass "
                                      "and contype = 'f'", (f"{RAW_SCHEMA}.{aside}",)).fetchall():
        conn.execute(f'alter table {RAW_SCHEMA}.{aside} drop constraint "{constraint}"')
    return aside


def _move_rows(conn: psycopg.Connection, table: str) -> int:
    """Copy a set-aside plain table's rows into the partitioned table of the same name, check that
    every row arrived, and drop the plain table."""
    aside, columns = table + _SET_ASIDE_SUFFIX, _RAW_COLUMNS[table]
    first, last, count = conn.execute(
        f"select min(business_date), max(business_date), count(*) from {RAW_SCHEMA}.{aside}").fetchone()
    if count:
        ensure_raw_partitions(conn, [table], first, last)
    moved = conn.execute(f"insert into {RAW_SCHEMA}.{table} ({columns}) "
                         f"select {columns} from {RAW_SCHEMA}.{aside}").rowcount
    (now_there,) = conn.execute(f"select count(*) from {RAW_SCHEMA}.{table}").fetchone()
    if moved != count or now_there != count:
        raise RuntimeError(f"moving {RAW_SCHEMA}.{table} into partitions: {count} rows before, {moved} moved, "
                           f"{now_there} in the partitioned table")
    # dbt's staging views read the raw tables, and followed the plain table when it was renamed aside:
    # they go with it, and the next dbt build creates them again over the partitioned table (dbt
    # rebuilds every view on each run).
    views = [name for (name,) in conn.execute(
        """select distinct dependent.oid::regclass::text
           from pg_depend d join pg_rewrite r on r.oid = d.objid
           join pg_class dependent on dependent.oid = r.ev_class
           where d.refobjid = %s::regclass and dependent.oid <> d.refobjid""",
        (f"{RAW_SCHEMA}.{aside}",)).fetchall()]
    conn.execute(f"drop table {RAW_SCHEMA}.{aside} cascade")
    if views:
        log.warning("views over %s.%s dropped with its plain table (the next dbt build recreates them): %s",
                    RAW_SCHEMA, table, ", ".join(views))
    log.info("moved %d rows of %s.%s into monthly partitions", count, RAW_SCHEMA, table)
    return count


# A ledger created before retention (or before stale extracts were recorded) checks the status against
# fewer values.
_LEDGER_STATUS_UPGRADE = f"""
do $$ begin
    if exists (select 1 from pg_constraint
               where conrelid = '{RAW_SCHEMA}.load_ledger'::regclass and conname = 'load_ledger_status_check'
                 and pg_get_constraintdef(oid) not like '%stale%') then
        alter table {RAW_SCHEMA}.load_ledger drop constraint load_ledger_status_check;
        alter table {RAW_SCHEMA}.load_ledger add constraint load_ledger_status_check
            check (status in ('loading', 'loaded', 'superseded', 'purged', 'stale'));
    end if;
end $$;
"""


def ensure_schema(url: str | None = None) -> None:
    """Create the raw layer and ledgers if missing (idempotent, safe to run concurrently).

    A warehouse of the layout before partitioning (plain raw tables) is upgraded in place, in the same
    transaction: each plain table is set aside, the partitioned table is created, the rows are copied
    into monthly partitions, counted, and the plain table dropped. All of it commits or none of it."""
    with connect(url) as conn:
        # Serialise concurrent first runs: "create if not exists" races on catalog rows otherwise.
        conn.execute("select pg_advisory_xact_lock(hashtext('chiso.ensure_schema'))")
        plain = _plain_raw_tables(conn)
        for table in plain:
            _set_aside(conn, table)
        conn.execute(DDL)
        conn.execute(_LEDGER_STATUS_UPGRADE)
        for table in plain:
            _move_rows(conn, table)
