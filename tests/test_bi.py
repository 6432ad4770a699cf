"""The dashboards of bi/dashboards on a really published ``reporting`` schema.

One warehouse is backfilled from the simulator, built with dbt, gated and published, as the nightly DAG
does. Every card's SQL runs as a read-only BI login (member of chiso_bi, the only role that may read
``reporting``) and its figures equal the card's independent computation from the marts. Then a real BI
server, Apache Superset 6.1 from its own virtualenv (``make bi-venv``), is provisioned from the same files
through its dashboard import, with that login as its database connection, and each dashboard is opened
in headless Chromium: every chart renders without an error, the figures shown are the marts', and a
screenshot of each is kept in test-artifacts/bi/.
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
PROVINCE = "000.00.00.H15"  # Đắk Lắk, the province of the cu_kuin_2024 world
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


@pytest.fixture(scope="module")
def published(make_database, tmp_path_factory):
    """A backfilled, built, gated and published warehouse, and a read-only BI login on it."""
    from chiso.orchestration.backfill import backfill, days_between
    from chiso.quality.gates import run_layer
    from chiso.orchestration.pipeline import transform
    from chiso.publish.publication import BI_ROLE, publish

    url = make_database("chiso_bi")
    login, password = f"chiso_test_bi_{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(18)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CHISO_WAREHOUSE_URL", url)
        env.setenv("CHISO_HOME", str(tmp_path_factory.mktemp("chiso-bi-home")))
        backfill(url, "cu_kuin_2024", days_between(FIRST, DAY), seed=766)
        transform()
        for layer in ("raw", "staging", "marts"):
            assert run_layer(layer, DAY).passed
        publish(DAY, [])
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"create role {login} login password '{password}' in role {BI_ROLE}")
            conn.execute(f"alter role {login} set default_transaction_read_only = on")
            # The province's scope under row-level security (chiso.bi.access): this login reads as the
            # province login of the world's one province, as Metabase or Superset would be set up.
            (province_login,) = conn.execute("select distinct province_login from reporting.bi_unit_scope").fetchone()
            conn.execute(f'grant "{province_login}" to {login}')
        base = url.rpartition("/")[0].replace("postgres@", f"{login}:{password}@", 1)
        try:
            yield {"url": url, "login": login, "password": password,
                   "login_url": f"{base}/{url.rpartition('/')[2]}"}
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
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


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium (Debian package 'chromium') is not installed; "
                                             ".ci/run installs it on CI")
def test_each_dashboard_renders_in_chromium_without_errors_and_shows_the_marts_figures(superset, published):
    from chiso.bi.browser import Browser
    from chiso.bi.superset import displayed

    cookie = {**superset.browser_cookie(), "url": superset.url}
    with Browser(width=1400, height=1500) as browser, psycopg.connect(published["url"]) as admin:
        for dashboard in bi_dashboards.load_all():
            page = f"{superset.url}/superset/dashboard/{dashboard.slug}/?standalone=1"
            assert browser.open(page, cookies=[cookie], ready=READY), f"{dashboard.slug} did not finish loading"
            shot = browser.screenshot(ARTIFACTS / f"superset-{dashboard.slug}.png")
            print(f"\nscreenshot: {shot}")
            assert browser.evaluate(ERRORS) == 0, f"{dashboard.slug} shows an error: {browser.text()[:1500]}"
            shown = browser.text()
            assert dashboard.title in shown
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
