"""Connections to the warehouse and the tables chiso owns outside dbt (raw layer, ledgers).

dbt owns staging and marts; the raw layer and the operational ledgers are created here, by code,
because they must exist before the first load and must never be rebuilt by a ``dbt build``.
"""

from __future__ import annotations

from contextlib import contextmanager
from urllib.parse import unquote, urlparse

import psycopg

from chiso import settings
from chiso.contract import ENTITIES

RAW_SCHEMA = "raw"
OPS_SCHEMA = "ops"


def warehouse_url() -> str:
    return settings.require("CHISO_WAREHOUSE_URL")


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
    # staging models type the fields they use.
    return f"""
    create table if not exists {RAW_SCHEMA}.{table} (
        load_id      bigint      not null references {RAW_SCHEMA}.load_ledger (load_id),
        business_date date       not null,
        source_file  text        not null,
        line_number  integer     not null,
        loaded_at    timestamptz not null default now(),
        record       jsonb       not null
    );
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
    status            text        not null check (status in ('loading', 'loaded', 'superseded')),
    started_at        timestamptz not null default now(),
    finished_at       timestamptz
);
create unique index if not exists load_ledger_one_current
    on {RAW_SCHEMA}.load_ledger (entity, business_date) where status = 'loaded';

create table if not exists {RAW_SCHEMA}.quarantine (
    load_id        bigint      not null references {RAW_SCHEMA}.load_ledger (load_id),
    entity         text        not null,
    business_date  date        not null,
    source_file    text        not null,
    line_number    integer     not null,
    reason         text        not null,
    original_text  text        not null,
    quarantined_at timestamptz not null default now()
);

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

-- Every publication of the marts to the reporting schema (chiso.publish).
create table if not exists {OPS_SCHEMA}.reporting_publications (
    publication_id bigserial primary key,
    business_date  date        not null,
    relations      integer     not null,
    warnings       jsonb       not null,
    published_at   timestamptz not null default now()
);

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
    extracted_at   timestamptz not null,
    source_file    text        not null,
    line_number    integer     not null,
    loaded_at      timestamptz not null default now(),
    record         jsonb       not null
);
""" + "".join(_raw_entity_ddl(entity.raw_table) for entity in ENTITIES.values()) + f"""
-- The engine's nightly build re-derives only the dossiers that changed: it finds all their versions here.
create index if not exists portal__dossiers_dossier_code_idx on {RAW_SCHEMA}.portal__dossiers ((record ->> 'MaHoSo'));
create index if not exists portal__ratings_dossier_code_idx on {RAW_SCHEMA}.portal__ratings ((record ->> 'MaHoSo'));
"""


def ensure_schema(url: str | None = None) -> None:
    """Create the raw layer and ledgers if missing (idempotent, safe to run concurrently)."""
    with connect(url) as conn:
        # Serialise concurrent first runs: "create if not exists" races on catalog rows otherwise.
        conn.execute("select pg_advisory_xact_lock(hashtext('chiso.ensure_schema'))")
        conn.execute(DDL)
