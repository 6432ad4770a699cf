"""Write-audit-publish: the marts reach BI users only after the day's gates passed.

dbt writes the marts into the ``marts`` schema, which the BI role cannot read (write); the gates
validate them there (audit); :func:`publish` then brings ``reporting`` up to date with them in one
transaction (publish).

What a publication writes follows what the night's build changed, not the length of the history:

* The incremental marts (``fct_dossiers``, ``fct_indicator_values``, ``fct_unit_scores``) carry
  ``built_at``, the start of the dbt build that wrote each row (indexed). Their ``reporting`` copies
  receive only the rows built since the newest ``built_at`` they hold: those rows' keys (the mart's
  unique index) are deleted and the rows inserted. A complete rebuild rewrites every row, so it is
  published whole, as it should be.
* The other tables (dimensions, targets, reconciliation: small, or rebuilt whole by dbt) are replaced
  by their current rows.
* A view of the marts becomes a view of the same name in ``reporting`` that reads ``reporting``'s
  tables: it is never materialised (the dossiers' indicator contributions would be every dossier's
  rows, every night).
* A table whose columns or indexes changed (a new release) is created again, with the marts'
  indexes (built after the rows are in) and column comments.

Why one transaction over persistent tables: BI users (role ``chiso_bi``) see the old complete day or
the new complete day, never a half (Postgres' snapshots: a query that started before the commit keeps
reading the old rows); a failed gate or a failed publication leaves ``reporting`` exactly as it was;
dbt keeps building into ``marts``, whose incremental state (docs/engine-incremental.md) is never
touched. Every changed table is analysed before the commit, so that the first dashboard query of the
day is planned on real statistics.

``chiso_bi`` is created if missing, NOLOGIN, with USAGE and SELECT on ``reporting`` only; the BI logins
(national and one per province) are its members, and the publication renews the row-level security that
keeps a province's login to its province's units, in the same transaction (chiso.bi.access). Views are
created ``security_invoker`` so that the policies hold through them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date
from graphlib import TopologicalSorter

from psycopg import sql

from chiso.publish import published_values
from chiso.bi.access import BI_ROLE, PRIVATE_SCHEMAS, SCOPE_TABLE, apply_row_security, ensure_group_role
from chiso.bi import pipeline_health
from chiso.core.warehouse import OPS_SCHEMA, connect, ensure_schema

log = logging.getLogger(__name__)

SOURCE_SCHEMA = "marts"
REPORTING_SCHEMA = "reporting"
# Schemas of the copy-and-swap publication of earlier versions: dropped if a warehouse still has them.
NEXT_SCHEMA = "reporting_next"
OLD_SCHEMA = "reporting_old"
STATUS_TABLE = "publication_status"
BUILT_AT = "built_at"  # when the dbt build wrote the row (the incremental marts; macro engine_built_at)


@dataclass(frozen=True)
class Publication:
    business_date: date
    relations: list[str]
    warnings: list[dict]
    rows_written: dict[str, int] = field(default_factory=dict)  # per table: rows inserted into reporting
    publication_id: int | None = None
    # The figures kept as published (new or changed values and scores; chiso.publish.published_values).
    figures_kept: published_values.Recorded | None = None


def _relations(conn, schema: str = SOURCE_SCHEMA) -> dict[str, str]:
    """Every table and view of ``schema`` (not dbt's temporary relations): name -> 'table' or 'view'."""
    rows = conn.execute(
        """select c.relname, case when c.relkind in ('v', 'm') then 'view' else 'table' end
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where n.nspname = %s and c.relkind in ('r', 'p', 'v', 'm')
             and c.relname not like '%%__dbt_tmp%%' and c.relname not like '%%__dbt_backup%%'
           order by 1""", (schema,)).fetchall()
    return dict(rows)


def ensure_bi_role(conn) -> None:
    ensure_group_role(conn)


def _copy_comments(conn, relation: str) -> None:
    comments = conn.execute(
        """select a.attnum, a.attname, col_description(c.oid, a.attnum), obj_description(c.oid, 'pg_class')
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
           join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
           where n.nspname = %s and c.relname = %s order by a.attnum""", (SOURCE_SCHEMA, relation)).fetchall()
    target = sql.Identifier(REPORTING_SCHEMA, relation)
    kind = sql.SQL("view" if _relations_kind(conn, relation) == "view" else "table")
    if comments and comments[0][3]:
        conn.execute(sql.SQL("comment on {} {} is {}").format(kind, target, sql.Literal(comments[0][3])))
    for _, column, text, _ in comments:
        if text:
            conn.execute(sql.SQL("comment on column {}.{} is {}").format(
                target, sql.Identifier(column), sql.Literal(text)))


def _relations_kind(conn, relation: str) -> str | None:
    row = conn.execute("""select case when c.relkind in ('v', 'm') then 'view' else 'table' end
                          from pg_class c join pg_namespace n on n.oid = c.relnamespace
                          where n.nspname = %s and c.relname = %s""", (REPORTING_SCHEMA, relation)).fetchone()
    return row[0] if row else None


def _index_definitions(conn, schema: str, relation: str) -> list[str]:
    """The relation's index definitions with the schema taken out (comparable across schemas)."""
    rows = conn.execute(
        """select pg_get_indexdef(i.indexrelid) from pg_index i
           join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace
           where n.nspname = %s and c.relname = %s order by i.indexrelid""", (schema, relation)).fetchall()
    marker = f" ON {schema}.{relation} USING "  # pg_get_indexdef's form; our names need no quotes
    definitions = []
    for (definition,) in rows:
        if marker not in definition:
            raise RuntimeError(f"unexpected index definition on {schema}.{relation}: {definition}")
        definitions.append(definition.replace(marker, f" ON {{schema}}.{relation} USING ", 1))
    return definitions


def _columns(conn, schema: str, relation: str) -> list[tuple[str, str]]:
    return conn.execute(
        """select a.attname, format_type(a.atttypid, a.atttypmod)
           from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
           where n.nspname = %s and c.relname = %s and a.attnum > 0 and not a.attisdropped
           order by a.attnum""", (schema, relation)).fetchall()


def _unique_key(conn, relation: str) -> list[str] | None:
    """The columns of the mart's first unique index (its dbt unique_key), if it has one."""
    row = conn.execute(
        """select array_agg(a.attname order by k.ordinality)
           from pg_index i
           join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace
           cross join lateral unnest(i.indkey) with ordinality as k(attnum, ordinality)
           join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum
           where n.nspname = %s and c.relname = %s and i.indisunique and i.indexprs is null
           group by i.indexrelid order by i.indexrelid limit 1""", (SOURCE_SCHEMA, relation)).fetchone()
    return list(row[0]) if row else None


def _create_copy(conn, relation: str) -> int:
    """(Re)create the reporting table as a copy of the mart, then its indexes (quicker after the rows)."""
    source, target = sql.Identifier(SOURCE_SCHEMA, relation), sql.Identifier(REPORTING_SCHEMA, relation)
    conn.execute(sql.SQL("drop table if exists {} cascade").format(target))
    cursor = conn.execute(sql.SQL("create table {} as table {}").format(target, source))
    for definition in _index_definitions(conn, SOURCE_SCHEMA, relation):
        conn.execute(definition.replace("{schema}", REPORTING_SCHEMA, 1))
    return cursor.rowcount


def _publish_changed_rows(conn, relation: str, key: list[str]) -> int | None:
    """Bring an incremental mart's copy up to date with the rows built since its newest ``built_at``;
    None when the copy cannot be trusted that way (rows without ``built_at``): copy it whole instead."""
    source, target = sql.Identifier(SOURCE_SCHEMA, relation), sql.Identifier(REPORTING_SCHEMA, relation)
    built_at = sql.Identifier(BUILT_AT)
    # Rows of a build before built_at existed have none: their build is unknown.
    if conn.execute(sql.SQL("select exists (select 1 from {} where {} is null)").format(source, built_at)).fetchone()[0]:
        return None
    (published_through,) = conn.execute(sql.SQL("select max({}) from {}").format(built_at, target)).fetchone()
    if published_through is None:
        return None
    newer = sql.SQL("{} > {}").format(sql.Identifier("changed", BUILT_AT), sql.Literal(published_through))
    same_key = sql.SQL(" and ").join(
        sql.SQL("published.{column} = changed.{column}").format(column=sql.Identifier(column)) for column in key)
    conn.execute(sql.SQL("delete from {} as published using {} as changed where {} and {}").format(
        target, source, newer, same_key))
    cursor = conn.execute(sql.SQL("insert into {} select * from {} as changed where {}").format(
        target, source, newer))
    return cursor.rowcount


def _publish_table(conn, relation: str) -> int:
    """Rows written into the reporting copy of one mart table."""
    same_shape = (_relations_kind(conn, relation) == "table"
                  and _columns(conn, SOURCE_SCHEMA, relation) == _columns(conn, REPORTING_SCHEMA, relation)
                  and _index_definitions(conn, SOURCE_SCHEMA, relation)
                  == _index_definitions(conn, REPORTING_SCHEMA, relation))
    if not same_shape:
        return _create_copy(conn, relation)
    key = _unique_key(conn, relation)
    if key and BUILT_AT in dict(_columns(conn, SOURCE_SCHEMA, relation)):
        written = _publish_changed_rows(conn, relation, key)
        if written is not None:
            return written
    target = sql.Identifier(REPORTING_SCHEMA, relation)
    # delete, not truncate: truncate is not MVCC-safe (a query that started before would see no rows).
    conn.execute(sql.SQL("delete from {}").format(target))
    return conn.execute(sql.SQL("insert into {} table {}").format(
        target, sql.Identifier(SOURCE_SCHEMA, relation))).rowcount


def _never_analysed(conn, relation: str) -> bool:
    return conn.execute("select reltuples < 0 from pg_class where oid = %s::regclass",
                        (f"{REPORTING_SCHEMA}.{relation}",)).fetchone()[0]


def _publish_view(conn, relation: str) -> None:
    """The mart's view, reading reporting's copies instead of the marts (its definition, re-pointed).
    security_invoker: the view reads its tables as the role that queries it, so the tables' row-level
    security (chiso.bi.access) applies through it; a plain view would read them as its owner."""
    (definition,) = conn.execute("select pg_get_viewdef(%s::regclass)",
                                 (f"{SOURCE_SCHEMA}.{relation}",)).fetchone()
    definition = definition.replace(f"{SOURCE_SCHEMA}.", f"{REPORTING_SCHEMA}.")
    target = sql.Identifier(REPORTING_SCHEMA, relation)
    if _relations_kind(conn, relation) == "table":
        conn.execute(sql.SQL("drop table {} cascade").format(target))
    conn.execute(sql.SQL("drop view if exists {} cascade").format(target))
    conn.execute(sql.SQL("create view {} with (security_invoker = true) as ").format(target) + sql.SQL(definition))


def _views_in_dependency_order(conn, views: list[str]) -> list[str]:
    """The marts' views, each after the views it reads (a view of a view is created after it)."""
    edges = conn.execute(
        """select distinct dependent.relname, used.relname
           from pg_rewrite r join pg_class dependent on dependent.oid = r.ev_class
           join pg_namespace n on n.oid = dependent.relnamespace
           join pg_depend d on d.classid = 'pg_rewrite'::regclass and d.objid = r.oid
           join pg_class used on used.oid = d.refobjid
           where n.nspname = %s and used.relnamespace = n.oid and used.oid <> dependent.oid
             and used.relkind = 'v'""", (SOURCE_SCHEMA,)).fetchall()
    graph: dict[str, set[str]] = {view: set() for view in views}
    for dependent, used in edges:
        if dependent in graph and used in graph:
            graph[dependent].add(used)
    return list(TopologicalSorter(graph).static_order())


def publish(business_date: date, warnings: list[dict] | None = None, url: str | None = None) -> Publication:
    """Bring ``reporting`` up to date with the audited marts and grant the BI role, atomically."""
    warnings = warnings or []
    ensure_schema(url)
    with connect(url) as conn:
        # One publisher at a time (two DAG runs never publish concurrently, but a person might).
        conn.execute("select pg_advisory_xact_lock(hashtext('chiso.publish'))")
        ensure_bi_role(conn)
        for leftover in (NEXT_SCHEMA, OLD_SCHEMA):
            conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(leftover)))
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(REPORTING_SCHEMA)))
        marts = _relations(conn)
        (publication_id,) = conn.execute(
            f"insert into {OPS_SCHEMA}.reporting_publications (business_date, relations, warnings) "
            "values (%s, %s, %s) returning publication_id",
            (business_date, len(marts), json.dumps(warnings, ensure_ascii=False))).fetchone()
        # Before the marts' rows reach reporting, keep what this publication makes public that differs
        # from what was published before (docs/publication.md, "As published").
        figures_kept = published_values.record(conn, publication_id, business_date)
        # Relations the marts no longer have (a model removed by a release) leave reporting too.
        kept = {STATUS_TABLE, SCOPE_TABLE, pipeline_health.VIEW, *published_values.REPORTING_VIEWS}
        for gone in set(_relations(conn, REPORTING_SCHEMA)) - set(marts) - kept:
            kind = sql.SQL("view" if _relations_kind(conn, gone) == "view" else "table")
            conn.execute(sql.SQL("drop {} if exists {} cascade").format(kind, sql.Identifier(REPORTING_SCHEMA, gone)))
        written = {}
        for relation in [name for name, kind in marts.items() if kind == "table"]:
            written[relation] = _publish_table(conn, relation)
            _copy_comments(conn, relation)
            if written[relation] or _never_analysed(conn, relation):
                conn.execute(sql.SQL("analyze {}").format(sql.Identifier(REPORTING_SCHEMA, relation)))
        for relation in _views_in_dependency_order(conn, [name for name, kind in marts.items() if kind == "view"]):
            _publish_view(conn, relation)
            _copy_comments(conn, relation)
        _record_status(conn, business_date, warnings)
        pipeline_health.publish_view(conn, REPORTING_SCHEMA)
        # Row-level security per province, renewed from the day's dim_units before anyone sees the day.
        scoped = apply_row_security(conn)
        # After the scope table they filter by (re-created above, which drops what depends on it).
        published_values.create_reporting_views(conn)
        conn.execute(sql.SQL("grant usage on schema {} to {}").format(
            sql.Identifier(REPORTING_SCHEMA), sql.Identifier(BI_ROLE)))
        conn.execute(sql.SQL("grant select on all tables in schema {} to {}").format(
            sql.Identifier(REPORTING_SCHEMA), sql.Identifier(BI_ROLE)))
        # The BI role reads the reporting schema only: never the marts dbt writes, the internal marts that
        # name officials, nor anything else.
        for schema in PRIVATE_SCHEMAS:
            conn.execute(sql.SQL("""
                do $$ begin
                    if exists (select from pg_namespace where nspname = {name}) then
                        revoke all on schema {schema} from {role};
                    end if;
                end $$""").format(name=sql.Literal(schema), schema=sql.Identifier(schema),
                                  role=sql.Identifier(BI_ROLE)))
    log.info("Published %d marts of %s to %s (%s rows written; %d tables with unit rows under row-level security)%s",
             len(marts), business_date, REPORTING_SCHEMA, f"{sum(written.values()):,}", len(scoped),
             f" with {len(warnings)} warning(s)" if warnings else "")
    return Publication(business_date, list(marts), warnings, written, publication_id, figures_kept)


def _record_status(conn, business_date: date, warnings: list[dict]) -> None:
    """What BI users are looking at: the day, when it was published and any warnings it passed with."""
    status = sql.Identifier(REPORTING_SCHEMA, STATUS_TABLE)
    conn.execute(sql.SQL("create table if not exists {} (business_date date, published_at timestamptz, "
                         "warnings jsonb)").format(status))
    conn.execute(sql.SQL("delete from {}").format(status))
    conn.execute(sql.SQL("insert into {} values (%s, now(), %s::jsonb)").format(status),
                 (business_date, json.dumps(warnings, ensure_ascii=False)))
    conn.execute(sql.SQL("analyze {}").format(status))
    conn.execute(sql.SQL("comment on table {} is {}").format(
        status, sql.Literal("The business date published in this schema, when, and the warn-level gate failures it "
                            "was published with (docs/quality.md).")))
