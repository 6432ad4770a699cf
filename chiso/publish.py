"""Write-audit-publish: the marts reach BI users only after the day's gates passed.

dbt writes the marts into the ``marts`` schema, which the BI role cannot read (write); the gates
validate them there (audit); :func:`publish` then copies every mart into a fresh ``reporting_next``
schema and, in one transaction, swaps it in as ``reporting`` and drops the previous copy (publish).

Why copies and a schema swap:

* BI users (role ``chiso_bi``) see the old complete day or the new complete day, never a half: the
  renames and the grants commit together, and a query that started on the old schema keeps reading
  the old tables until it ends (the drop waits for it).
* dbt keeps building into ``marts``, whose incremental state (docs/engine-incremental.md) is never
  renamed away from under it; ``reporting`` holds plain tables nobody builds into.
* A failed gate leaves ``reporting`` exactly as it was: the previous published day stays visible.

``chiso_bi`` is created if missing, NOLOGIN (grant it to the login roles of Metabase and analysts),
with USAGE and SELECT on ``reporting`` only. Table and column comments (dbt's persisted docs) are
copied, so Metabase shows the same descriptions; so are the marts' indexes (built after the rows
are in, which is quicker than maintaining them row by row), and every copy is analysed before the
swap, so that the first dashboard query of the day is planned on real statistics rather than on an
empty table's guesses (a fresh table has none until autovacuum gets to it).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date

from psycopg import sql

from chiso.warehouse import OPS_SCHEMA, connect, ensure_schema

log = logging.getLogger(__name__)

SOURCE_SCHEMA = "marts"
REPORTING_SCHEMA = "reporting"
NEXT_SCHEMA = "reporting_next"
OLD_SCHEMA = "reporting_old"
BI_ROLE = "chiso_bi"
STATUS_TABLE = "publication_status"


@dataclass(frozen=True)
class Publication:
    business_date: date
    relations: list[str]
    warnings: list[dict]


def _relations(conn) -> list[str]:
    """Every table and view dbt built in the marts schema (not dbt's temporary relations)."""
    rows = conn.execute(
        """select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where n.nspname = %s and c.relkind in ('r', 'p', 'v', 'm')
             and c.relname not like '%%__dbt_tmp%%' and c.relname not like '%%__dbt_backup%%'
           order by 1""", (SOURCE_SCHEMA,)).fetchall()
    return [name for (name,) in rows]


def ensure_bi_role(conn) -> None:
    conn.execute(sql.SQL("""
        do $$ begin
            if not exists (select from pg_roles where rolname = {role_text}) then
                create role {role} nologin;
            end if;
        exception when duplicate_object then null;  -- created concurrently
        end $$""").format(role_text=sql.Literal(BI_ROLE), role=sql.Identifier(BI_ROLE)))


def _copy_comments(conn, relation: str) -> None:
    comments = conn.execute(
        """select a.attnum, a.attname, col_description(c.oid, a.attnum), obj_description(c.oid, 'pg_class')
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
           join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
           where n.nspname = %s and c.relname = %s order by a.attnum""", (SOURCE_SCHEMA, relation)).fetchall()
    target = sql.Identifier(NEXT_SCHEMA, relation)
    if comments and comments[0][3]:
        conn.execute(sql.SQL("comment on table {} is {}").format(target, sql.Literal(comments[0][3])))
    for _, column, text, _ in comments:
        if text:
            conn.execute(sql.SQL("comment on column {}.{} is {}").format(
                target, sql.Identifier(column), sql.Literal(text)))


def _copy_indexes(conn, relation: str) -> int:
    """Create on the copy each index the mart has (dbt's ``indexes`` config): same columns, same
    uniqueness, same name (index names are per schema)."""
    definitions = conn.execute(
        """select pg_get_indexdef(i.indexrelid) from pg_index i
           join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace
           where n.nspname = %s and c.relname = %s order by i.indexrelid""", (SOURCE_SCHEMA, relation)).fetchall()
    source = f" ON {SOURCE_SCHEMA}.{relation} USING "  # pg_get_indexdef's form; our names need no quotes
    for (definition,) in definitions:
        if source not in definition:
            raise RuntimeError(f"unexpected index definition on {SOURCE_SCHEMA}.{relation}: {definition}")
        conn.execute(definition.replace(source, f" ON {NEXT_SCHEMA}.{relation} USING ", 1))
    return len(definitions)


def publish(business_date: date, warnings: list[dict] | None = None, url: str | None = None) -> Publication:
    """Copy the audited marts to ``reporting`` and grant the BI role, atomically."""
    warnings = warnings or []
    ensure_schema(url)
    with connect(url) as conn:
        # One publisher at a time (two DAG runs never publish concurrently, but a person might).
        conn.execute("select pg_advisory_xact_lock(hashtext('chiso.publish'))")
        ensure_bi_role(conn)
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(NEXT_SCHEMA)))
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(OLD_SCHEMA)))
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(NEXT_SCHEMA)))
        relations = _relations(conn)
        for relation in relations:
            conn.execute(sql.SQL("create table {} as table {}").format(
                sql.Identifier(NEXT_SCHEMA, relation), sql.Identifier(SOURCE_SCHEMA, relation)))
            _copy_comments(conn, relation)
            _copy_indexes(conn, relation)
            conn.execute(sql.SQL("analyze {}").format(sql.Identifier(NEXT_SCHEMA, relation)))
        # What BI users are looking at: the day, when it was published and any warnings it passed with.
        conn.execute(sql.SQL(
            "create table {} as select %s::date as business_date, now() as published_at, %s::jsonb as warnings"
        ).format(sql.Identifier(NEXT_SCHEMA, STATUS_TABLE)), (business_date, json.dumps(warnings, ensure_ascii=False)))
        conn.execute(sql.SQL("analyze {}").format(sql.Identifier(NEXT_SCHEMA, STATUS_TABLE)))
        conn.execute(sql.SQL("comment on table {} is {}").format(
            sql.Identifier(NEXT_SCHEMA, STATUS_TABLE),
            sql.Literal("The business date published in this schema, when, and the warn-level gate failures it "
                        "was published with (docs/quality.md).")))
        conn.execute(sql.SQL("grant usage on schema {} to {}").format(
            sql.Identifier(NEXT_SCHEMA), sql.Identifier(BI_ROLE)))
        conn.execute(sql.SQL("grant select on all tables in schema {} to {}").format(
            sql.Identifier(NEXT_SCHEMA), sql.Identifier(BI_ROLE)))
        # The swap: both renames and the drop commit together with the copies above.
        exists = conn.execute("select 1 from pg_namespace where nspname = %s", (REPORTING_SCHEMA,)).fetchone()
        if exists:
            conn.execute(sql.SQL("alter schema {} rename to {}").format(
                sql.Identifier(REPORTING_SCHEMA), sql.Identifier(OLD_SCHEMA)))
        conn.execute(sql.SQL("alter schema {} rename to {}").format(
            sql.Identifier(NEXT_SCHEMA), sql.Identifier(REPORTING_SCHEMA)))
        if exists:
            conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(OLD_SCHEMA)))
        # The BI role reads the reporting schema only: never the marts dbt writes, nor anything else.
        for schema in ("raw", "staging", "intermediate", SOURCE_SCHEMA, "reference", OPS_SCHEMA):
            conn.execute(sql.SQL("""
                do $$ begin
                    if exists (select from pg_namespace where nspname = {name}) then
                        revoke all on schema {schema} from {role};
                    end if;
                end $$""").format(name=sql.Literal(schema), schema=sql.Identifier(schema),
                                  role=sql.Identifier(BI_ROLE)))
        conn.execute(
            f"insert into {OPS_SCHEMA}.reporting_publications (business_date, relations, warnings) values (%s, %s, %s)",
            (business_date, len(relations), json.dumps(warnings, ensure_ascii=False)))
    log.info("Published %d marts of %s to %s%s", len(relations), business_date, REPORTING_SCHEMA,
             f" with {len(warnings)} warning(s)" if warnings else "")
    return Publication(business_date, relations, warnings)
