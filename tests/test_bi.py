"""The dashboards of bi/dashboards on a really published ``reporting`` schema.

One warehouse of two provinces (huyện Cư Kuin of Đắk Lắk, and huyện Chư Prông of Gia Lai at a low volume)
is backfilled from the simulator, built with dbt, gated and published, as the nightly DAG does. Every
card's SQL runs as a read-only BI login that reads as Đắk Lắk's province login (row-level security,
chiso.bi.access) and its figures equal the card's independent computation from the marts; asked for Gia
Lai, every card answers that login nothing, and the national login something. Then a real BI server,
Apache Superset 6.1 from its own virtualenv (``make bi-venv``), is provisioned from the same files through
its dashboard import, with that province login as its database connection: what Superset can read through
it holds no Gia Lai unit (and through the national login it does), and each dashboard is opened in
headless Chromium: every chart renders without an error, the figures shown are the marts', no Gia Lai
unit is on screen, and a screenshot of each is kept in test-artifacts/bi/.
"""

from __future__ import annotations

import json
import re
import secrets
import unicodedata
import uuid
from datetime import date

import psycopg
import pytest

from chiso.bi import dashboards as bi_dashboards
from chiso.bi.checks import card_rows, compared_rows, expected_rows
from chiso.core.settings import REPO_ROOT

FIRST, DAY = date(2024, 11, 6), date(2024, 11, 15)
PROVINCE = "000.00.00.H15"  # Đắk Lắk (Cư Kuin): the province the BI login reads as
OTHER_PROVINCE = "000.00.00.H21"  # Gia Lai (Chư Prông), in the same warehouse, hidden from that login
DRILL_THROUGH = [  # (unit, indicator) whose dossiers dashboard (d) lists
    (PROVINCE, "ON_TIME"), ("000.37.27.H15", "ONLINE_DOSSIER_SHARE"), ("000.00.27.H15", "DOSSIER_SYNC"),
    ("000.33.27.H15", "DOSSIER_ONLINE_PAYMENT")]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "bi"


def cases():
    """Every (dashboard, card, parameter values) the tests run."""
    for dashboard in bi_dashboards.load_all():
        givens = ([{"province": PROVINCE, "unit": unit, "indicator": indicator} for unit, indicator in DRILL_THROUGH]
                  if "unit" in {p.name for p in dashboard.parameters} else [{"province": PROVINCE}])
        for given in givens:
            for card in dashboard.cards:
                yield pytest.param(dashboard, card, dashboard.values(given),
                                   id=f"{dashboard.slug}-{card.key}-{given.get('unit', '')}-{given.get('indicator', '')}")


def _login(conn, url: str, member_of: str) -> dict:
    """A read-only login of the BI group that reads as ``member_of`` (a province's or the national login)."""
    from chiso.publish.publication import BI_ROLE

    login, password = f"chiso_test_bi_{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(18)
    conn.execute(f"create role {login} login password '{password}' in role {BI_ROLE}")
    conn.execute(f"alter role {login} set default_transaction_read_only = on")
    conn.execute(f'grant "{member_of}" to {login}')
    base = url.rpartition("/")[0].replace("postgres@", f"{login}:{password}@", 1)
    return {"login": login, "password": password, "login_url": f"{base}/{url.rpartition('/')[2]}"}


@pytest.fixture(scope="module")
def published(make_database, tmp_path_factory):
    """A backfilled, built, gated and published warehouse of two provinces; a read-only BI login that reads
    as Đắk Lắk's province login, and one that reads as the national login."""
    import sys

    from chiso.bi.access import SCOPE_TABLE, national_login
    from chiso.orchestration.backfill import backfill, days_between
    from chiso.orchestration.pipeline import transform
    from chiso.publish.publication import publish
    from chiso.quality.gates import run_layer
    from chiso.simulator.server import PortalSimulator, RunningSimulator

    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from bi_world import two_provinces_world

    url = make_database("chiso_bi")
    logins = []
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CHISO_WAREHOUSE_URL", url)
        env.setenv("CHISO_HOME", str(tmp_path_factory.mktemp("chiso-bi-home")))
        with RunningSimulator(PortalSimulator(766, two_provinces_world(1.0, gia_lai_volume=0.3)), "bi") as portal:
            backfill(url, "cu_kuin_2024", days_between(FIRST, DAY), seed=766, portal_url=portal.url,
                     portal_token="bi")
        transform()
        for layer in ("raw", "staging", "marts"):
            assert run_layer(layer, DAY).passed
        publish(DAY, [])
        with psycopg.connect(url, autocommit=True) as conn:
            # As Metabase or Superset would be set up for a province's analysts: the province's login
            # (row-level security, chiso.bi.access) is the connection's role.
            (province_login,) = conn.execute(
                f"select province_login from reporting.{SCOPE_TABLE} where unit_code = %s", (PROVINCE,)).fetchone()
            province = _login(conn, url, province_login)
            national = _login(conn, url, national_login().role)
            logins = [province["login"], national["login"]]
        try:
            yield {"url": url, **province, "national": national}
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                for login in logins:
                    conn.execute(f"drop role if exists {login}")


def test_dashboard_files_define_every_dashboard_once_with_checked_cards():
    dashboards = bi_dashboards.load_all()
    assert [d.slug for d in dashboards] == ["tong_quan_tinh", "xep_hang_don_vi", "muc_tieu", "ho_so_sau_gia_tri",
                                            "suc_khoe_pipeline"]
    for dashboard in dashboards:
        for text in (dashboard.title, dashboard.description, *(c.title for c in dashboard.cards)):
            assert text == unicodedata.normalize("NFC", text)
        for card in dashboard.cards:
            assert "marts." not in card.sql and "reporting." in card.sql, card.key  # BI reads reporting only
            if card.drill_through:
                assert card.drill_through["dashboard"] in {d.slug for d in dashboards}


def test_a_card_without_a_check_or_with_an_unknown_parameter_is_refused(tmp_path):
    path = tmp_path / "x.yml"
    path.write_text("slug: x\ntitle: X\ndescription: x\nparameters: []\ncards:\n"
                    "  - {key: a, title: A, description: a, display: table, sql: select 1}\n")
    with pytest.raises(ValueError, match="card 'a' has no expected query"):
        bi_dashboards.load(path)
    path.write_text("slug: x\ntitle: X\ndescription: x\nparameters: []\ncards:\n"
                    "  - {key: a, title: A, description: a, display: table, sql: 'select {{unit}}', expected: 'select 1'}\n")
    with pytest.raises(ValueError, match=r"undeclared parameter\(s\) \['unit'\]"):
        bi_dashboards.load(path)
    dashboard = bi_dashboards.load_all()[0]
    with pytest.raises(ValueError, match="must be a code"):
        dashboard.values({"province": "x'; drop table y; --"})


@pytest.mark.parametrize(("dashboard", "card", "values"), list(cases()))
def test_every_card_answers_the_bi_login_with_the_marts_figures(published, dashboard, card, values):
    with psycopg.connect(published["login_url"]) as bi, psycopg.connect(published["url"]) as admin:
        columns, rows = card_rows(bi, card, values)
        assert rows, f"{dashboard.slug}/{card.key} returned no rows"
        assert len(set(columns)) == len(columns)
        assert compared_rows(bi, card, values) == expected_rows(admin, card, values)


def test_the_warehouse_holds_both_provinces_and_the_province_login_sees_one(published):
    with psycopg.connect(published["url"]) as admin:
        provinces = {unit for (unit,) in admin.execute(
            "select distinct province_unit_code from reporting.bi_unit_scope")}
    assert provinces == {PROVINCE, OTHER_PROVINCE}
    seen = {}
    for who in ("province", "national"):
        url = published["login_url"] if who == "province" else published["national"]["login_url"]
        with psycopg.connect(url) as bi:
            seen[who] = {unit for (unit,) in bi.execute(
                "select distinct s.unit_code from reporting.unit_scores as s")}
    assert seen["province"] and all(unit.endswith(".H15") for unit in seen["province"])
    assert any(unit.endswith(".H21") for unit in seen["national"])


def figures(rows: list[tuple]) -> list[tuple]:
    """The rows that carry anything: not only nulls and zeros."""
    return [row for row in rows if any(value not in (None, 0) for value in row)]


# (The pipeline-health dashboard is national: its daily counts have no unit rows and no province filter.)
@pytest.mark.parametrize("dashboard", [d for d in bi_dashboards.load_all() if d.parameters], ids=lambda d: d.slug)
def test_asked_for_the_other_province_every_card_answers_the_province_login_nothing(published, dashboard):
    """Row-level security, not the dashboards' province filter: with Gia Lai as the filter, the Đắk Lắk
    login gets no row from any card, while the national login gets rows from the cards that have any."""
    if "unit" in {p.name for p in dashboard.parameters}:
        given = {"province": OTHER_PROVINCE, "unit": OTHER_PROVINCE, "indicator": "ON_TIME"}
    else:
        given = {"province": OTHER_PROVINCE}
    values = dashboard.values(given)
    answered = 0
    with psycopg.connect(published["login_url"]) as province, \
            psycopg.connect(published["national"]["login_url"]) as national:
        for card in dashboard.cards:
            # (an aggregate over no row answers one row of nulls or zeros: nothing either)
            assert figures(card_rows(province, card, values)[1]) == [], (dashboard.slug, card.key)
            answered += bool(figures(card_rows(national, card, values)[1]))
    assert answered, dashboard.slug


# ----------------------------------------------------------------------------- a real BI server

from chiso.dev import superset_server  # noqa: E402
from chiso.bi.browser import CHROMIUM  # noqa: E402

# Settled: every chart holder is there and nothing is loading any more.
READY = ("document.querySelectorAll('.dashboard-component-chart-holder').length > 0 && "
         "document.querySelectorAll('.loading, .ant-skeleton, [aria-label=\"Loading\"]').length === 0")
ERRORS = "document.querySelectorAll('[role=\"alert\"], .ant-alert-error, .alert-danger').length"


@pytest.fixture(scope="module")
def superset(published, make_database, tmp_path_factory):
    if not superset_server.available():
        pytest.skip(f"Superset is not installed in {superset_server.BI_VENV}: `make bi-venv` (make test does it)")
    from chiso.bi.superset import DATABASE_FILE, bundle

    server = superset_server.start(make_database("chiso_test_superset"), tmp_path_factory.mktemp("superset"))
    try:
        with psycopg.connect(published["login_url"]) as bi:
            data = bundle(bi_dashboards.load_all(), {"province": PROVINCE},
                          published["login_url"].replace(f":{published['password']}@", "@"), bi)
        server.import_dashboards(data, {DATABASE_FILE: published["password"]})
        yield server
    finally:
        server.stop()


def test_superset_is_provisioned_from_the_files_and_importing_again_duplicates_nothing(superset, published):
    from chiso.bi.superset import DATABASE_FILE, bundle

    dashboards = bi_dashboards.load_all()
    counts = lambda: tuple(superset.get(path, q="(page_size:100)")["count"]  # noqa: E731
                           for path in ("/api/v1/dashboard/", "/api/v1/chart/", "/api/v1/dataset/",
                                        "/api/v1/database/"))
    before = counts()
    assert before == (len(dashboards), sum(len(d.cards) for d in dashboards),
                      sum(len(d.cards) for d in dashboards), 1)
    with psycopg.connect(published["login_url"]) as bi:
        data = bundle(dashboards, {"province": PROVINCE},
                      published["login_url"].replace(f":{published['password']}@", "@"), bi)
    superset.import_dashboards(data, {DATABASE_FILE: published["password"]})
    assert counts() == before
    (database,) = superset.get("/api/v1/database/")["result"]
    connection = superset.get(f"/api/v1/database/{database['id']}/connection")["result"]
    assert published["login"] in json.dumps(connection)  # Superset reads as the BI login


def test_superset_serves_each_card_with_the_marts_figures(superset, published):
    """What Superset's chart-data API (which its charts call) returns for each card's dataset equals the marts."""
    from chiso.bi.checks import normalised

    datasets = {d["table_name"]: d["id"] for d in superset.get("/api/v1/dataset/", q="(page_size:100)")["result"]}
    with psycopg.connect(published["url"]) as admin:
        for dashboard in bi_dashboards.load_all():
            values = dashboard.values({"province": PROVINCE})
            for card in dashboard.cards:
                columns, rows = card_rows(admin, card, values)
                answer = superset.api.post(f"{superset.url}/api/v1/chart/data", timeout=120, json={
                    "datasource": {"id": datasets[f"{dashboard.slug}__{card.key}"], "type": "table"},
                    "queries": [{"columns": columns, "metrics": [], "row_limit": 10000, "orderby": []}],
                    "result_format": "json", "result_type": "full"})
                assert answer.status_code == 200, (card.key, answer.text[:1000])
                served = answer.json()["result"][0]["data"]
                kept = [i for i, value in enumerate(rows[0]) if not isinstance(value, date)]  # dates: epoch ms there
                assert sorted((tuple(normalised(r[columns[i]]) for i in kept) for r in served), key=repr) == \
                    sorted((tuple(normalised(row[i]) for i in kept) for row in rows), key=repr), card.key


def _superset_units(superset, database_id: int) -> set[str]:
    """The unit codes Superset reads from reporting.unit_scores through one of its database connections:
    a physical dataset over the table, as an analyst exploring it would make, and its chart data."""
    api = superset.api or superset.login_api()
    answer = api.post(f"{superset.url}/api/v1/dataset/", timeout=120, json={
        "database": database_id, "schema": "reporting", "table_name": "unit_scores"})
    assert answer.status_code in (200, 201), answer.text[:1000]
    dataset = answer.json()["id"]
    answer = api.post(f"{superset.url}/api/v1/chart/data", timeout=120, json={
        "datasource": {"id": dataset, "type": "table"},
        "queries": [{"columns": ["unit_code"], "metrics": [], "row_limit": 100000, "orderby": []}],
        "result_format": "json", "result_type": "full"})
    assert answer.status_code == 200, answer.text[:1000]
    return {row["unit_code"] for row in answer.json()["result"][0]["data"]}


def test_through_superset_the_province_login_reads_no_other_provinces_units(superset, published):
    """Superset's own connection (the province login) reads Đắk Lắk's units only; a second connection as
    the national login, the negative control, reads Gia Lai's too: the check can fail."""
    (database,) = superset.get("/api/v1/database/")["result"]
    province_units = _superset_units(superset, database["id"])
    assert province_units and all(unit.endswith(".H15") for unit in province_units), sorted(province_units)
    national = published["national"]
    answer = (superset.api or superset.login_api()).post(f"{superset.url}/api/v1/database/", timeout=120, json={
        "database_name": "chiso (national login, test)", "sqlalchemy_uri": national["login_url"]})
    assert answer.status_code in (200, 201), answer.text[:1000]
    national_units = _superset_units(superset, answer.json()["id"])
    assert any(unit.endswith(".H21") for unit in national_units) and province_units < national_units


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium (Debian package 'chromium') is not installed; "
                                             ".ci/run installs it on CI")
def test_each_dashboard_renders_in_chromium_without_errors_and_shows_the_marts_figures(superset, published):
    from chiso.bi.browser import Browser
    from chiso.bi.superset import displayed

    cookie = {**superset.browser_cookie(), "url": superset.url}
    with psycopg.connect(published["url"]) as admin:
        # Gia Lai's units by name (no Đắk Lắk unit shares one): none may be on any dashboard.
        other_province_names = [name for (name,) in admin.execute(
            """select unit_name from reporting.dim_units where unit_code like '%%.H21' and unit_kind <> 'PROVINCE'
               and unit_name not in (select unit_name from reporting.dim_units where unit_code like '%%.H15')""")]
    assert other_province_names
    with Browser(width=1400, height=1500) as browser, psycopg.connect(published["url"]) as admin:
        for dashboard in bi_dashboards.load_all():
            page = f"{superset.url}/superset/dashboard/{dashboard.slug}/?standalone=1"
            assert browser.open(page, cookies=[cookie], ready=READY), f"{dashboard.slug} did not finish loading"
            shot = browser.screenshot(ARTIFACTS / f"superset-{dashboard.slug}.png")
            print(f"\nscreenshot: {shot}")
            assert browser.evaluate(ERRORS) == 0, f"{dashboard.slug} shows an error: {browser.text()[:1500]}"
            shown = browser.text()
            assert dashboard.title in shown
            leaked = [name for name in other_province_names if name in shown]
            assert not leaked, (dashboard.slug, leaked)
            values = dashboard.values({"province": PROVINCE})
            for card in dashboard.cards:
                assert card.title in shown, (dashboard.slug, card.title)
                if card.display == "scalar":
                    (row,) = card_rows(admin, card, values)[1]
                    assert displayed(row[0]) in shown, card.key
                elif card.display == "table":
                    flat = re.sub(r"\s+", " ", shown)
                    for row in card_rows(admin, card, values)[1][:5]:  # the first rows are on screen
                        assert " ".join(displayed(v) if v is not None else "N/A" for v in row) in flat, \
                            (card.key, row, flat[:3000])
            charts = sum(card.display in ("bar", "line") for card in dashboard.cards)
            assert browser.evaluate("document.querySelectorAll('.dashboard-component-chart-holder canvas').length") \
                >= charts, f"{dashboard.slug}: a bar or line chart drew nothing"
