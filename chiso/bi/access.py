"""Who may read ``reporting``, and which rows: BI logins and row-level security per province.

Roles (Postgres roles are shared by every database of the server):

* ``chiso_bi`` (chiso.publish.publication.BI_ROLE): NOLOGIN, USAGE and SELECT on ``reporting`` only. Every BI login
  is a member of it and has nothing else.
* ``<prefix>national``: a login that sees every unit.
* ``<prefix>p<province code>``, one per province of ``dim_units`` (its portal code, e.g. ``chiso_bi_ph15``
  for Đắk Lắk, H15): a login that sees its province's units only.

Each login gets a statement timeout, an idle-in-transaction and an idle-session timeout, a connection limit,
``default_transaction_read_only`` and ``search_path = reporting``. Passwords come from secrets, never from
the repository: a file named after the role in CHISO_BI_SECRETS_DIR (Docker/Kubernetes secrets mount
there), or CHISO_BI_NATIONAL_PASSWORD for the national login. A role without a supplied password is created
NOLOGIN (a password-less LOGIN role could be entered through a trust or peer rule of pg_hba.conf) or left
as it is, and the report says so. The password is hashed on the client (SCRAM-SHA-256): its clear text
never reaches the server, its logs or ``pg_stat_activity``.

Rows: ``reporting.bi_unit_scope`` maps every unit to its province and its province's login, from
``dim_units``' parent chain (a unit belongs to the province it belongs to now: a commune merged into
another province on 1/7/2025 is seen, history included, by its new province). Row-level security on the
scope table lets each province login see its own province's rows (one policy per province, generated); every
``reporting`` table with a unit column has row-level security with one policy for ``chiso_bi`` (the unit is
in the rows of the scope table the querying role can see) and one for the national login (everything).
Views in ``reporting`` are ``security_invoker`` (chiso.publish.publication), so the tables' policies apply to whoever
queries them. Tables without unit rows (calendar, indicators, procedures, publication status, pipeline
health) are read whole.

:func:`apply_row_security` runs inside every publication's transaction, after the tables are written: a
table that a publication re-created (new columns) gets its policies again, and a new unit or province gets
its scope before any BI user can see the day. :func:`audit` lists what would let a BI login read more than
its scope: tables with unit rows but no row security, views that are not security_invoker, SECURITY
DEFINER functions it may execute, and schemas other than ``reporting`` it may use.

Run ``python -m chiso.bi.access setup`` to create the logins with their passwords (then the policies, if
``reporting`` exists) and ``python -m chiso.bi.access check`` to audit; both print what they did or found.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from chiso.core import settings

log = logging.getLogger(__name__)

REPORTING_SCHEMA = "reporting"
BI_ROLE = "chiso_bi"
SCOPE_TABLE = "bi_unit_scope"
# Columns that say which unit a row is about, in the order a table's unit is looked for, each with the
# scope table's column it is matched with. mart_peer_lists' rows are a peer set's (a district's or
# province's) lists of its members; the reconciliation summary's rows are a province's (its portal code).
UNIT_COLUMNS = {"unit_code": "unit_code", "peer_set_unit_code": "unit_code", "province_code": "province_code"}
POLICY_PREFIX = "chiso_bi_"
NATIONAL = "national"
# Session limits of every BI login. A dashboard card that runs longer than the statement timeout is a
# card to fix, not a query to wait for; an abandoned transaction must not hold back vacuum; a pool that
# forgot its connections frees them within the idle-session timeout (Metabase's pool reconnects).
STATEMENT_TIMEOUT = "60s"
IDLE_IN_TRANSACTION_TIMEOUT = "60s"
IDLE_SESSION_TIMEOUT = "1h"
CONNECTION_LIMITS = {NATIONAL: 20, "province": 10}
# Schemas a BI login must not use even though they exist (the warehouse's own). ``internal`` holds the
# marts that name officials (mart_handler_attainment): for the plans' internal reports only, never published.
PRIVATE_SCHEMAS = ("raw", "staging", "intermediate", "marts", "internal", "reference", "ops")


@dataclass(frozen=True)
class Login:
    role: str
    province_unit_code: str | None  # None: the national login
    connection_limit: int


@dataclass(frozen=True)
class LoginOutcome:
    role: str
    created: bool
    password: str  # 'set', 'none supplied: NOLOGIN' or 'none supplied: unchanged'

    def describe(self) -> str:
        what = "created" if self.created else "exists"
        return f"{self.role}: {what}; password {self.password}"


def role_prefix() -> str:
    return settings.get("CHISO_BI_ROLE_PREFIX")


def national_login() -> Login:
    return Login(f"{role_prefix()}{NATIONAL}", None, CONNECTION_LIMITS[NATIONAL])


def province_role(portal_code: str) -> str:
    """``<prefix>p<code>``: the province's portal code (H15) in lower case, other characters as '_'."""
    return f"{role_prefix()}p{re.sub(r'[^a-z0-9]+', '_', portal_code.lower())}"


def provinces(conn, schema: str = REPORTING_SCHEMA) -> list[tuple[str, str]]:
    """(unit_code, portal_code) of every province of ``schema``.dim_units."""
    return conn.execute(sql.SQL("select unit_code, coalesce(portal_code, statistical_code, unit_code) "
                                "from {} where unit_kind = 'PROVINCE' order by unit_code").format(
        sql.Identifier(schema, "dim_units"))).fetchall()


def logins(conn, schema: str = REPORTING_SCHEMA) -> list[Login]:
    return [national_login()] + [Login(province_role(code), unit, CONNECTION_LIMITS["province"])
                                 for unit, code in provinces(conn, schema)]


def supplied_password(role: str) -> str | None:
    """The role's password from the secrets: CHISO_BI_SECRETS_DIR/<role>, or for the national login
    CHISO_BI_NATIONAL_PASSWORD. Trailing newlines of a secrets file are not part of the password."""
    directory = settings.get("CHISO_BI_SECRETS_DIR")
    if directory:
        path = Path(directory) / role
        if path.is_file():
            password = path.read_text(encoding="utf-8").rstrip("\r\n")
            if password:
                return password
    if role == national_login().role:
        return settings.get("CHISO_BI_NATIONAL_PASSWORD")
    return None


def _role_exists(conn, role: str) -> bool:
    return conn.execute("select exists (select from pg_roles where rolname = %s)", (role,)).fetchone()[0]


def ensure_group_role(conn) -> None:
    conn.execute(sql.SQL("""
        do $$ begin
            if not exists (select from pg_roles where rolname = {role_text}) then
                create role {role} nologin;
            end if;
        exception when duplicate_object or unique_violation then null;  -- created concurrently
        end $$""").format(role_text=sql.Literal(BI_ROLE), role=sql.Identifier(BI_ROLE)))


def ensure_login(conn, login: Login, password: str | None, update_existing: bool = True) -> LoginOutcome:
    """Create or update one BI login; set its password only when one is supplied. With ``update_existing``
    false (publication) a role that exists keeps its attributes and password: roles are shared by the
    server's databases, and a nightly publication should not rewrite them (the CLI's setup does)."""
    role = sql.Identifier(login.role)
    created = not _role_exists(conn, login.role)
    if created:
        conn.execute(sql.SQL("""
            do $$ begin
                create role {role} nologin;
            exception when duplicate_object or unique_violation then null;  -- created concurrently (another database)
            end $$""").format(role=role))
    options = sql.SQL("nosuperuser nocreatedb nocreaterole noreplication nobypassrls inherit connection limit {}") \
        .format(sql.Literal(login.connection_limit))
    if not created and not update_existing:
        outcome = "unchanged"
    elif password:
        # Hashed here, so that the clear text never reaches the server (nor its statement log).
        hashed = conn.pgconn.encrypt_password(password.encode(), login.role.encode(), b"scram-sha-256").decode()
        conn.execute(sql.SQL("alter role {} login {} password {}").format(role, options, sql.Literal(hashed)))
        outcome = "set"
    elif created:
        conn.execute(sql.SQL("alter role {} nologin {}").format(role, options))
        outcome = "none supplied: NOLOGIN"
    else:
        conn.execute(sql.SQL("alter role {} {}").format(role, options))
        outcome = "none supplied: unchanged"
    database = sql.Identifier(conn.info.dbname)
    for name, value in (("statement_timeout", STATEMENT_TIMEOUT),
                        ("idle_in_transaction_session_timeout", IDLE_IN_TRANSACTION_TIMEOUT),
                        ("idle_session_timeout", IDLE_SESSION_TIMEOUT),
                        ("default_transaction_read_only", "on"),
                        ("search_path", REPORTING_SCHEMA)):
        conn.execute(sql.SQL("alter role {} in database {} set {} = {}").format(
            role, database, sql.Identifier(name), sql.Literal(value)))
    conn.execute(sql.SQL("grant {} to {}").format(sql.Identifier(BI_ROLE), role))
    return LoginOutcome(login.role, created, outcome)


def _unit_tables(conn) -> dict[str, str]:
    """Tables of ``reporting`` with unit rows: name -> the column naming the unit."""
    rows = conn.execute(
        """select c.relname, a.attname from pg_class c join pg_namespace n on n.oid = c.relnamespace
           join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
           where n.nspname = %s and c.relkind in ('r', 'p') and a.attname = any(%s)""",
        (REPORTING_SCHEMA, list(UNIT_COLUMNS))).fetchall()
    columns: dict[str, list[str]] = {}
    for table, column in rows:
        columns.setdefault(table, []).append(column)
    order = list(UNIT_COLUMNS)
    return {table: min(found, key=order.index) for table, found in columns.items() if table != SCOPE_TABLE}


def _build_scope(conn) -> int:
    """(Re)fill reporting.bi_unit_scope from reporting.dim_units: every unit with its province."""
    scope = sql.Identifier(REPORTING_SCHEMA, SCOPE_TABLE)
    # Re-created each time (a few thousand rows), so that a release may change its columns; the policies
    # that read it go with it (cascade) and are created again by apply_row_security.
    conn.execute(sql.SQL("drop table if exists {} cascade").format(scope))
    conn.execute(sql.SQL("""create table {} (
        unit_code text not null, province_unit_code text not null, province_code text not null,
        province_login name not null)""").format(scope))
    conn.execute(sql.SQL("comment on table {} is {}").format(scope, sql.Literal(
        "Đơn vị và tỉnh của đơn vị: phạm vi dữ liệu mà tài khoản BI của mỗi tỉnh được xem (chiso.bi.access).")))
    units = sql.Identifier(REPORTING_SCHEMA, "dim_units")
    # Walk each unit's parent chain up to its province (communes -> districts until 30/6/2025 -> province).
    return conn.execute(sql.SQL("""
        insert into {scope} (unit_code, province_unit_code, province_code, province_login)
        with recursive chain (unit_code, ancestor_code, ancestor_kind, depth) as (
            select unit_code, unit_code, unit_kind, 0 from {units}
            union all
            select chain.unit_code, parent.unit_code, parent.unit_kind, chain.depth + 1
            from chain join {units} as child on child.unit_code = chain.ancestor_code
            join {units} as parent on parent.unit_code = child.parent_unit_code
            where chain.ancestor_kind <> 'PROVINCE' and chain.depth < 10
        )
        select distinct on (chain.unit_code) chain.unit_code, province.unit_code, province.code, %s || 'p' ||
               regexp_replace(lower(province.code), '[^a-z0-9]+', '_', 'g')
        from chain join (select unit_code, coalesce(portal_code, statistical_code, unit_code) as code from {units})
             as province on province.unit_code = chain.ancestor_code
        where chain.ancestor_kind = 'PROVINCE'
        order by chain.unit_code, chain.depth""").format(scope=scope, units=units), (role_prefix(),)).rowcount


def _replace_policies(conn, table: str, policies: list[sql.Composable]) -> None:
    target = sql.Identifier(REPORTING_SCHEMA, table)
    for (name,) in conn.execute("select policyname from pg_policies where schemaname = %s and tablename = %s",
                                (REPORTING_SCHEMA, table)).fetchall():
        conn.execute(sql.SQL("drop policy {} on {}").format(sql.Identifier(name), target))
    conn.execute(sql.SQL("alter table {} enable row level security").format(target))
    for policy in policies:
        conn.execute(policy)


# The reporting views of the figures as published (created by chiso.publish.published_values, which reads
# this module for the scope table): named here, where row-level security must know them.
PUBLISHED_VALUES_VIEW = "mart_published_values"
RESTATEMENTS_VIEW = "mart_value_restatements"


def _self_scoped_views() -> tuple[str, ...]:
    """Views that read the ops tables as their owner and so cannot be security_invoker: the published
    figures filter by the querying login's scope themselves (chiso.publish.published_values), and the pipeline's
    daily counts have no unit rows (chiso.bi.pipeline_health)."""
    from chiso.bi import pipeline_health

    return (PUBLISHED_VALUES_VIEW, RESTATEMENTS_VIEW, pipeline_health.VIEW)


def apply_row_security(conn) -> dict[str, str]:
    """Scope table, province policies and every unit table's policies, from reporting.dim_units; the
    province logins are created (NOLOGIN unless a password is supplied) if missing. Returns table -> the
    unit column its policies filter on. Runs in the caller's transaction."""
    ensure_group_role(conn)
    national = national_login()
    outcomes = [ensure_login(conn, login, supplied_password(login.role), update_existing=False)
                for login in logins(conn)]
    for outcome in outcomes:
        if outcome.created:
            log.info("BI login %s", outcome.describe())
    scoped = _build_scope(conn)
    national_role = sql.Identifier(national.role)
    scope = sql.Identifier(REPORTING_SCHEMA, SCOPE_TABLE)
    province_policies = [
        sql.SQL("create policy {} on {} for select to {} using (province_unit_code = {})").format(
            sql.Identifier(f"{POLICY_PREFIX}{login.role}"[:63]), scope, sql.Identifier(login.role),
            sql.Literal(login.province_unit_code))
        for login in logins(conn) if login.province_unit_code]
    _replace_policies(conn, SCOPE_TABLE, [
        sql.SQL("create policy {} on {} for select to {} using (true)").format(
            sql.Identifier(f"{POLICY_PREFIX}national"), scope, national_role), *province_policies])
    tables = _unit_tables(conn)
    for table, column in tables.items():
        target = sql.Identifier(REPORTING_SCHEMA, table)
        _replace_policies(conn, table, [
            sql.SQL("create policy {} on {} for select to {} using (true)").format(
                sql.Identifier(f"{POLICY_PREFIX}national"), target, national_role),
            # The scope table's own policies decide which of its rows the querying role sees.
            sql.SQL("create policy {} on {} for select to {} using ({} in (select {} from {}))").format(
                sql.Identifier(f"{POLICY_PREFIX}province"), target, sql.Identifier(BI_ROLE),
                sql.Identifier(column), sql.Identifier(UNIT_COLUMNS[column]), scope)])
    conn.execute(sql.SQL("grant select on {} to {}").format(scope, sql.Identifier(BI_ROLE)))
    conn.execute(sql.SQL("analyze {}").format(scope))
    log.info("Row-level security: %d units in %d provinces; %d reporting tables scoped by unit",
             scoped, len(outcomes) - 1, len(tables))
    return tables


def audit(conn) -> list[str]:
    """Everything that would let a BI login read beyond its scope, one sentence each (empty: none)."""
    problems = []
    unit_tables = _unit_tables(conn)
    for table, column in sorted(unit_tables.items()):
        row = conn.execute("""select c.relrowsecurity, count(p.policyname) from pg_class c
                              join pg_namespace n on n.oid = c.relnamespace
                              left join pg_policies p on p.schemaname = n.nspname and p.tablename = c.relname
                              where n.nspname = %s and c.relname = %s group by 1""",
                           (REPORTING_SCHEMA, table)).fetchone()
        if not row or not row[0] or row[1] == 0:
            problems.append(f"reporting.{table} has unit rows ({column}) but no row-level security policies.")
    for (view,) in conn.execute(
            """select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
               where n.nspname = %s and c.relkind in ('v', 'm')
                 and (c.relkind = 'm' or not coalesce('security_invoker=true' = any(c.reloptions), false))
               order by 1""", (REPORTING_SCHEMA,)).fetchall():
        if view in _self_scoped_views():
            continue
        problems.append(f"reporting.{view} is a view without security_invoker (or a materialised view): "
                        "it reads its tables as its owner, past their row-level security.")
    for schema, function in conn.execute(
            """select n.nspname, p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
               where p.prosecdef and n.nspname not in ('pg_catalog', 'information_schema')
                 and has_function_privilege(%s, p.oid, 'execute')
                 and has_schema_privilege(%s, n.oid, 'usage') order by 1, 2""", (BI_ROLE, BI_ROLE)).fetchall():
        problems.append(f"{function} in schema {schema} is SECURITY DEFINER and executable by {BI_ROLE}.")
    for (schema,) in conn.execute(
            """select nspname from pg_namespace where nspname = any(%s)
                 and has_schema_privilege(%s, oid, 'usage') order by 1""",
            (list(PRIVATE_SCHEMAS), BI_ROLE)).fetchall():
        problems.append(f"{BI_ROLE} may use schema {schema}, which is not for BI tools.")
    for schema, relation in conn.execute(
            """select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
               where c.relkind in ('r', 'p', 'v', 'm', 'f') and n.nspname not in ('pg_catalog', 'information_schema', %s)
                 and n.nspname not like 'pg_toast%%' and has_schema_privilege(%s, n.oid, 'usage')
                 and has_table_privilege(%s, c.oid, 'select') order by 1, 2""",
            (REPORTING_SCHEMA, BI_ROLE, BI_ROLE)).fetchall():
        problems.append(f"{BI_ROLE} may read {schema}.{relation}, outside reporting.")
    return problems


def setup(url: str | None = None) -> list[str]:
    """Create or update the BI logins (national and every province of reporting.dim_units) with their
    passwords from the secrets, and the row-level security if reporting is published; lines of what was
    done."""
    from chiso.core.warehouse import connect

    lines = []
    with connect(url) as conn:
        conn.execute("select pg_advisory_xact_lock(hashtext('chiso.publish'))")  # not during a publication
        ensure_group_role(conn)
        published = conn.execute("select to_regclass('reporting.dim_units') is not null").fetchone()[0]
        for login in (logins(conn) if published else [national_login()]):
            lines.append(ensure_login(conn, login, supplied_password(login.role)).describe())
        if published:
            tables = apply_row_security(conn)
            lines.append(f"row-level security on reporting.{SCOPE_TABLE} and {len(tables)} tables with unit rows: "
                         + ", ".join(sorted(tables)))
        else:
            lines.append("reporting is not published yet: province logins and row-level security come with the "
                         "first publication (or run this again after it)")
    if any("none supplied" in line for line in lines):
        lines.append("a login without a password cannot log in: put its password in a file named after the role in "
                     "CHISO_BI_SECRETS_DIR (the national login may use CHISO_BI_NATIONAL_PASSWORD) and run this again")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chiso.bi.access",
                                     description="BI logins and row-level security of the reporting schema.")
    parser.add_argument("command", choices=("setup", "check"),
                        help="setup: create or update the logins and policies; check: audit what BI logins may read")
    parser.add_argument("--url", help="warehouse URL (default: CHISO_WAREHOUSE_URL)")
    args = parser.parse_args(argv)
    if args.command == "setup":
        for line in setup(args.url):
            print(line)
        return 0
    from chiso.core.warehouse import connect

    with connect(args.url) as conn:
        problems = audit(conn)
    for problem in problems:
        print(problem)
    print("no problems found" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
