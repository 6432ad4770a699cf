"""BI logins, row-level security per province and the semantic layer, on a really published ``reporting``.

One warehouse of two provinces (tests/bi_world.py: Đắk Lắk's huyện Cư Kuin and Gia Lai's huyện Chư Prông,
fetched from the simulator, loaded and built with dbt) is published once with the real publication. The
province login connects over TCP like a BI tool; every relation of ``reporting`` is found from the catalog,
not from a list. Roles are shared by the server's databases: the test's logins get a prefix of their own
(CHISO_BI_ROLE_PREFIX) and are dropped at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata
import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

sys.path.insert(0, str(Path(__file__).parent))
from bi_world import DAYS, PROVINCES, load_and_build  # noqa: E402

DAY = DAYS[-1]
DAK_LAK, GIA_LAI = PROVINCES
SEMANTIC_VIEWS = {"unit_scores", "indicator_values", "target_attainment", "peer_rankings", "dossiers_behind_values"}
PRIVATE_SCHEMAS = ("raw", "staging", "intermediate", "marts", "internal", "reference", "ops")


@pytest.fixture(scope="module")
def published(make_database, tmp_path_factory, pg_admin_url):
    from chiso.publish.publication import publish

    url = make_database("chiso_bi")
    home = tmp_path_factory.mktemp("chiso-bi-home")
    secrets_dir = tmp_path_factory.mktemp("chiso-bi-secrets")
    prefix = f"chiso_t{uuid.uuid4().hex[:8]}_"
    passwords = {f"{prefix}national": uuid.uuid4().hex, f"{prefix}ph15": uuid.uuid4().hex}
    for role, password in passwords.items():
        (secrets_dir / role).write_text(password + "\n", encoding="utf-8")  # as secrets files often end
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CHISO_WAREHOUSE_URL", url)
        env.setenv("CHISO_HOME", str(home))
        env.setenv("CHISO_BI_ROLE_PREFIX", prefix)
        env.setenv("CHISO_BI_SECRETS_DIR", str(secrets_dir))
        env.delenv("CHISO_BI_NATIONAL_PASSWORD", raising=False)
        try:
            load_and_build(url)
            publish(DAY, [])
            yield {"url": url, "prefix": prefix, "passwords": passwords, "secrets_dir": secrets_dir,
                   "national": f"{prefix}national", "dak_lak": f"{prefix}ph15", "gia_lai": f"{prefix}ph21"}
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                roles = [r for (r,) in conn.execute("select rolname from pg_roles where starts_with(rolname, %s)",
                                                    (prefix,)).fetchall()]
                for role in roles:
                    conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(role)))
                    conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))


def execute(url, query, params=None):
    with psycopg.connect(url) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else None


def login_url(url: str, role: str, password: str | None = None) -> str:
    """The warehouse URL with another user, over TCP as a BI tool connects."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    info.update(user=role, password=password or "")
    return psycopg.conninfo.make_conninfo(**info)


@contextmanager
def as_role(url: str, role: str):
    """A connection whose queries run as ``role`` (SET ROLE: row-level security applies to it)."""
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("set role {}").format(sql.Identifier(role)))
        yield conn


def reporting_relations(conn) -> list[tuple[str, str]]:
    """(name, kind) of every table and view of reporting, from the catalog."""
    return conn.execute("""select c.relname, c.relkind::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
                           where n.nspname = 'reporting' and c.relkind in ('r', 'p', 'v', 'm', 'f')
                           order by 1""").fetchall()


def unit_columns(conn, relation: str) -> list[tuple[str, str]]:
    """Columns that name a unit or a province: (name, type)."""
    return conn.execute("""select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a
                           where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped
                             and (a.attname like '%%unit_code' or a.attname like '%%unit_codes'
                                  or a.attname = 'province_code')
                           order by a.attnum""", (f"reporting.{relation}",)).fetchall()


def province_units(url: str, province: str) -> tuple[set[str], str]:
    """The units of a province by dim_units' parent chain, computed here independently, and its portal code."""
    units = dict(execute(url, "select unit_code, parent_unit_code from marts.dim_units"))

    def province_of(unit):
        while units.get(unit):
            unit = units[unit]
        return unit

    (code,) = execute(url, "select portal_code from marts.dim_units where unit_code = %s", (province,))[0]
    return {unit for unit in units if province_of(unit) == province}, code


# ------------------------------------------------------------------------------ isolation


def test_a_province_login_sees_its_own_units_in_every_relation_and_nothing_else(published):
    url, role = published["url"], published["dak_lak"]
    own, own_code = province_units(url, DAK_LAK)
    others, _ = province_units(url, GIA_LAI)
    assert own and others and not own & others
    seen_rows = {}
    # The province's login connects as a BI tool does (its password came from the secrets directory).
    with psycopg.connect(login_url(url, role, published["passwords"][role])) as conn, \
            psycopg.connect(url) as admin:
        assert conn.execute("select current_user").fetchone()[0] == role
        relations = reporting_relations(conn)
        assert SEMANTIC_VIEWS <= {name for name, _ in relations}
        for relation, kind in relations:
            columns = unit_columns(admin, relation)
            target = sql.Identifier("reporting", relation)
            (visible,) = conn.execute(sql.SQL("select count(*) from {}").format(target)).fetchone()
            seen_rows[relation] = visible
            for column, type_ in columns:
                name = sql.Identifier(column)
                if type_.endswith("[]"):
                    values = {v for (v,) in conn.execute(
                        sql.SQL("select distinct unnest({}) from {}").format(name, target)).fetchall()}
                else:
                    values = {v for (v,) in conn.execute(
                        sql.SQL("select distinct {} from {}").format(name, target)).fetchall()}
                values.discard(None)
                allowed = {own_code} if column == "province_code" else own
                assert values <= allowed, f"reporting.{relation}.{column} shows other provinces' {values - allowed}"
            if any(column == "unit_code" for column, _ in columns):
                # Exactly the province's rows: none lost to the policies either.
                (expected,) = admin.execute(sql.SQL("select count(*) from {} where unit_code = any(%s)").format(target),
                                            (list(own),)).fetchone()
                assert visible == expected, f"reporting.{relation}: {visible} rows seen, {expected} are the province's"
    # The check above had something to look at: the province's scores, values, targets and dossiers.
    for relation in ("unit_scores", "indicator_values", "target_attainment", "dossiers_behind_values",
                     "fct_dossiers", "dim_units", "bi_unit_scope"):
        assert seen_rows[relation] > 0, relation


def test_the_national_login_sees_every_province(published):
    url, role = published["url"], published["national"]
    with psycopg.connect(login_url(url, role, published["passwords"][role])) as conn, \
            psycopg.connect(url) as admin:
        for relation, _ in reporting_relations(conn):
            target = sql.SQL("select count(*) from {}").format(sql.Identifier("reporting", relation))
            assert conn.execute(target).fetchone() == admin.execute(target).fetchone(), relation
        provinces = {p for (p,) in conn.execute("select distinct province_unit_code from reporting.unit_scores")}
    assert provinces == set(PROVINCES)


def test_a_province_login_reads_nothing_outside_reporting_and_writes_nothing(published):
    url, role = published["url"], published["dak_lak"]
    with psycopg.connect(url) as admin:
        tables = admin.execute("""select distinct on (n.nspname) n.nspname, c.relname
                                  from pg_class c join pg_namespace n on n.oid = c.relnamespace
                                  where n.nspname = any(%s) and c.relkind in ('r', 'p', 'v')
                                  order by n.nspname, c.relname""", (list(PRIVATE_SCHEMAS),)).fetchall()
    assert {schema for schema, _ in tables} == set(PRIVATE_SCHEMAS)
    with psycopg.connect(login_url(url, role, published["passwords"][role]), autocommit=True) as conn:
        for schema, table in tables:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql.SQL("select 1 from {} limit 1").format(sql.Identifier(schema, table)))
        # Read-only sessions: even a table it may read cannot be written.
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("delete from reporting.dim_units")
        assert conn.execute("show statement_timeout").fetchone() == ("1min",)
        assert conn.execute("show idle_in_transaction_session_timeout").fetchone() == ("1min",)
        assert conn.execute("show idle_session_timeout").fetchone() == ("1h",)
        assert conn.execute("show search_path").fetchone() == ("reporting",)


def test_logins_are_members_of_the_bi_role_with_limits_and_hashed_passwords_from_the_secrets(published):
    url = published["url"]
    rows = execute(url, """select r.rolname, r.rolcanlogin, r.rolconnlimit, r.rolbypassrls, r.rolsuper,
                                  pg_has_role(r.rolname, 'chiso_bi', 'member'), a.rolpassword
                           from pg_roles r join pg_authid a on a.oid = r.oid
                           where starts_with(r.rolname, %s) order by 1""", (published["prefix"],))
    by_role = {row[0]: row[1:] for row in rows}
    assert set(by_role) == {published["national"], published["dak_lak"], published["gia_lai"]}
    for role, (can_login, limit, bypass, superuser, member, stored) in by_role.items():
        assert member and not bypass and not superuser and limit > 0
        if role in published["passwords"]:
            assert can_login and stored.startswith("SCRAM-SHA-256$")
            assert published["passwords"][role] not in stored
        else:  # Gia Lai's login had no secret: it exists (its policies name it) but cannot log in.
            assert not can_login and stored is None
    with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
        psycopg.connect(login_url(url, published["gia_lai"]), connect_timeout=5).close()


def test_the_audit_finds_nothing_and_would_find_a_leaking_view_or_function(published):
    from chiso.bi.access import audit

    url = published["url"]
    with psycopg.connect(url) as conn:
        assert audit(conn) == []
        # Views published are security_invoker, so the tables' policies hold through them.
        assert conn.execute("""select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
                               where n.nspname = 'reporting' and c.relkind = 'v'
                                 and 'security_invoker=true' = any(c.reloptions)""").fetchone()[0] >= len(SEMANTIC_VIEWS)
        conn.execute("create view reporting.leaky as select * from reporting.fct_unit_scores")
        conn.execute("""create function reporting.all_scores() returns bigint language sql security definer
                        as 'select count(*) from reporting.fct_unit_scores'""")
        conn.execute("grant select on reporting.leaky to chiso_bi")
        conn.execute("alter table reporting.mart_peer_lists disable row level security")
        problems = audit(conn)
        conn.rollback()
    assert any("reporting.leaky is a view without security_invoker" in p for p in problems), problems
    assert any("reporting.all_scores() in schema reporting is SECURITY DEFINER" in p for p in problems), problems
    assert any("reporting.mart_peer_lists has unit rows (peer_set_unit_code)" in p for p in problems), problems


def test_every_publication_renews_the_policies_from_dim_units(published):
    """A unit that moves to another province (a re-organisation) moves its rows with it at the next
    publication; a table re-created by a release gets its policies again."""
    from chiso.publish.publication import publish

    url = published["url"]
    commune = execute(url, "select unit_code from marts.dim_units where unit_kind = 'COMMUNE' "
                           "and unit_code like '%%.H15' order by 1 limit 1")[0][0]
    (gia_lai_district,) = execute(url, "select unit_code from marts.dim_units where unit_kind = 'DISTRICT' "
                                       "and unit_code like '%%.H21'")[0]
    (old_parent,) = execute(url, "select parent_unit_code from marts.dim_units where unit_code = %s", (commune,))[0]

    def communes_seen(role):
        with as_role(url, role) as conn:
            return {u for (u,) in conn.execute("select distinct unit_code from reporting.unit_scores")}

    assert commune in communes_seen(published["dak_lak"])
    execute(url, "update marts.dim_units set parent_unit_code = %s where unit_code = %s", (gia_lai_district, commune))
    execute(url, "drop table reporting.fct_unit_scores cascade")  # as a release that changed its columns would
    try:
        publish(DAY, [])
        assert commune not in communes_seen(published["dak_lak"])
        assert commune in communes_seen(published["gia_lai"])
    finally:
        execute(url, "update marts.dim_units set parent_unit_code = %s where unit_code = %s", (old_parent, commune))
        publish(DAY, [])
    assert commune in communes_seen(published["dak_lak"])
    from chiso.bi.access import audit

    with psycopg.connect(url) as conn:
        assert audit(conn) == []


def test_the_cli_sets_up_logins_and_checks_reporting(published):
    env = {**os.environ, "CHISO_WAREHOUSE_URL": published["url"], "CHISO_BI_ROLE_PREFIX": published["prefix"],
           "CHISO_BI_SECRETS_DIR": str(published["secrets_dir"])}
    setup = subprocess.run([sys.executable, "-m", "chiso.bi.access", "setup"], env=env, capture_output=True,
                           text=True, timeout=120)
    assert setup.returncode == 0, setup.stderr
    lines = setup.stdout.splitlines()
    assert f"{published['dak_lak']}: exists; password set" in lines
    assert f"{published['gia_lai']}: exists; password none supplied: unchanged" in lines
    assert any("CHISO_BI_SECRETS_DIR" in line for line in lines)  # says how to give Gia Lai's login one
    assert all(password not in setup.stdout + setup.stderr for password in published["passwords"].values())
    check = subprocess.run([sys.executable, "-m", "chiso.bi.access", "check"], env=env, capture_output=True,
                           text=True, timeout=120)
    assert (check.returncode, check.stdout.strip()) == (0, "no problems found")


# ------------------------------------------------------------------------------ the semantic layer


def test_the_semantic_views_speak_vietnamese_and_agree_with_the_marts(published):
    url = published["url"]
    # Labels come from the seeds, through the marts.
    classes = {c for (c,) in execute(url, "select name_vi from reference.score_classes")}
    shown = {c for (c,) in execute(url, "select distinct class_name from reporting.unit_scores")}
    assert shown and shown <= classes
    statuses = {s for (s,) in execute(url, "select distinct status from reporting.target_attainment")}
    assert statuses and statuses <= {"đạt", "chưa đạt", "có nguy cơ", "chưa có dữ liệu"}
    groups = dict(execute(url, "select group_code, name_vi from reference.indicator_groups"))
    assert dict(execute(url, "select distinct group_code, group_name from reporting.indicator_values")) == groups
    # The same rows and figures as the marts they read.
    assert execute(url, """select business_date, period_type, unit_code, total_score, rank_in_province
                           from reporting.unit_scores except all
                           select business_date, period_type, unit_code, total_score, rank_in_peer_set
                           from marts.fct_unit_scores""") == []
    assert execute(url, "select count(*) from reporting.unit_scores") == \
        execute(url, "select count(*) from marts.fct_unit_scores")
    assert execute(url, """select count(*), sum(numerator_delta), sum(denominator_delta)
                           from reporting.dossiers_behind_values""") == \
        execute(url, """select count(*), sum(numerator_delta), sum(denominator_delta)
                        from marts.fct_dossier_indicator_contributions""")
    (loaded,) = execute(url, "select sum(rows_loaded) from reporting.pipeline_health")[0]
    assert loaded == execute(url, "select sum(rows_loaded) from raw.load_ledger where status = 'loaded'")[0][0]
    # Every column of every semantic view has a Vietnamese description, in NFC, that BI tools show.
    missing = execute(url, """select c.relname, a.attname from pg_attribute a join pg_class c on c.oid = a.attrelid
                              join pg_namespace n on n.oid = c.relnamespace
                              where n.nspname = 'reporting' and c.relname = any(%s) and a.attnum > 0
                                and col_description(c.oid, a.attnum) is null""",
                      (list(SEMANTIC_VIEWS | {"pipeline_health"}),))
    assert missing == []
    descriptions = [d for (d,) in execute(url, """select col_description(c.oid, a.attnum) from pg_attribute a
                                                  join pg_class c on c.oid = a.attrelid
                                                  join pg_namespace n on n.oid = c.relnamespace
                                                  where n.nspname = 'reporting' and c.relname = 'unit_scores'
                                                    and a.attnum > 0""")]
    assert all(unicodedata.is_normalized("NFC", d) for d in descriptions)
    assert "Xếp loại: Xuất sắc, Tốt, Khá, Trung bình hoặc Yếu (bảng score_classes)." in descriptions
