"""Province slices (CHISO_PORTAL_SOURCES, docs/ingest.md "Sources"): a national day fetched one province
at a time, so that Celery workers share the fetch, land and load of the entities the contract slices.

Real components: the portal simulator over HTTP with a two-province world (Cư Kuin of Đắk Lắk, Chư Prông
of Gia Lai), the real fetch → land → load path, a real PostgreSQL warehouse, and the daily DAG parsed by
Airflow with the setting on."""

from __future__ import annotations

import json
import re
import secrets
import sys
from datetime import date
from pathlib import Path

import psycopg
import pytest
import requests

from chiso.contract import ENTITIES
from chiso.core import settings
from chiso.core.warehouse import ensure_schema
from chiso.ingest.fetch import Portal, fetch_extract
from chiso.ingest.landing import land
from chiso.ingest.load import load_extract
from chiso.ingest.pseudonymise import Pseudonymiser
from chiso.ingest.sources import NATIONAL, Source, parse_sources, sources_for
from chiso.simulator.server import PortalSimulator, RunningSimulator

sys.path.insert(0, str(Path(__file__).parent))
from bi_world import two_provinces_world  # noqa: E402

DAY = date(2024, 11, 14)
TOKEN = "slices"
SLICES = "H15=/tinh/H15,H21=/tinh/H21"
SLICED = [name for name, entity in ENTITIES.items() if entity.province_field]
KEY = Pseudonymiser(secrets.token_urlsafe(16))


# ----------------------------------------------------------------------------- the setting

def test_the_setting_names_province_slices_by_path_or_address():
    assert parse_sources(None) == () and parse_sources("  ") == ()
    assert parse_sources("h15=/tinh/H15, H21=https://dvc.gialai.example.vn/") == (
        Source("H15", "/tinh/H15"), Source("H21", "https://dvc.gialai.example.vn/"))
    h21 = parse_sources("H21=https://dvc.gialai.example.vn/")[0]
    assert h21.conn_id == "chiso_portal_h21" and h21.base_url("http://portal") == "https://dvc.gialai.example.vn"
    h15 = parse_sources("H15=/tinh/H15")[0]
    assert h15.conn_id is None and h15.base_url("http://portal:8080/") == "http://portal:8080/tinh/H15"


@pytest.mark.parametrize("value, says", [
    ("H15", "is not CODE=URL"),
    ("H15=/tinh/H15,H15=/tinh/H16", "named twice"),
    ("15=/tinh/H15", "not a province's portal code"),
    ("H15=ftp://portal/tinh", "not an http(s):// address"),
    ("H15=tinh/H15", "neither a path on the portal nor"),
    ("H15=/tinh/../secrets", "neither a path on the portal nor"),
])
def test_a_wrong_value_is_refused_in_one_sentence_naming_the_variable(monkeypatch, value, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        parse_sources(value)
    with pytest.raises(settings.SettingError) as refused:
        settings.validate({"CHISO_PORTAL_SOURCES": value})
    sentence = str(refused.value)
    assert sentence.startswith("CHISO_PORTAL_SOURCES=") and says in sentence and "\n" not in sentence


def test_the_contract_says_which_entities_are_sliced_and_by_which_field():
    assert {"dossiers", "process_log", "feedback", "ratings"} <= set(SLICED)
    assert {"units", "procedures", "procedure_publications"}.isdisjoint(SLICED)
    for name in SLICED:
        assert ENTITIES[name].province_field in ENTITIES[name].fields, name
    slices = parse_sources(SLICES)
    assert sources_for("dossiers", slices) == slices
    assert [s.code for s in sources_for("units", slices)] == [NATIONAL]
    assert [s.code for s in sources_for("dossiers", ())] == [NATIONAL]


# ----------------------------------------------------------------------------- the portal's slices

@pytest.fixture(scope="module")
def portal():
    with RunningSimulator(PortalSimulator(766, two_provinces_world(0.3)), TOKEN) as sim:
        yield sim


def _rows(base_url: str, entity: str) -> list[dict]:
    rows, page = [], 1
    while True:
        answer = requests.get(f"{base_url}/api/v1/{entity}", params={"ngay": DAY.isoformat(), "page": page,
                                                                       "page_size": 5000},
                              headers={"X-Api-Token": TOKEN}, timeout=60)
        answer.raise_for_status()
        body = answer.json()
        rows += body["items"]
        if page >= body["total_pages"]:
            return rows
        page += 1


@pytest.mark.parametrize("entity", SLICED)
def test_the_provinces_slices_partition_the_national_day(portal, entity):
    whole = _rows(portal.url, entity)
    h15, h21 = (_rows(f"{portal.url}/tinh/{code}", entity) for code in ("H15", "H21"))
    canonical = lambda rows: sorted(json.dumps(row, sort_keys=True, ensure_ascii=False) for row in rows)  # noqa: E731
    assert canonical(h15 + h21) == canonical(whole)
    if entity == "dossiers":
        assert h15 and h21   # both provinces have dossiers that day: the partition is not trivial
        assert {r["MaDonViTiepNhan"].rsplit(".", 1)[-1][:3] for r in h15} == {"H15"}


def test_a_national_entity_is_not_served_by_province(portal):
    answer = requests.get(f"{portal.url}/tinh/H15/api/v1/units", params={"ngay": DAY.isoformat()},
                          headers={"X-Api-Token": TOKEN}, timeout=60)
    assert answer.status_code >= 400


# ----------------------------------------------------------------------------- loading slices

def _load(url: str, portal, root: Path, entity: str, source: str = NATIONAL, sources=None):
    base = portal.url if source == NATIONAL else f"{portal.url}/tinh/{source}"
    fetched = fetch_extract(Portal(base_url=base, token=TOKEN, page_size=500), entity, DAY, root, source)
    landed = land(fetched, root, entity, DAY, source)
    with psycopg.connect(url) as conn:
        return load_extract(conn, entity, DAY, landed, KEY, source=source, sources=sources), landed


def _raw(url: str, entity: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return sorted(text for (text,) in conn.execute(
            f"select record::text from raw.{ENTITIES[entity].raw_table} where business_date = %s", (DAY,)))


def _ledger(url: str, entity: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("select source, status, rows_loaded from raw.load_ledger "
                            "where entity = %s and business_date = %s order by load_id", (entity, DAY)).fetchall()


def test_a_day_loaded_by_slices_holds_what_the_whole_day_holds_once(make_database, portal, tmp_path):
    whole, sliced = make_database("chiso_sources_whole"), make_database("chiso_sources_sliced")
    ensure_schema(whole), ensure_schema(sliced)
    for entity in SLICED:
        _load(whole, portal, tmp_path / "whole", entity)
        results = [_load(sliced, portal, tmp_path / "sliced", entity, code, ("H15", "H21"))
                   for code in ("H15", "H21")]
        assert all(path.parts[-3] == f"tinh={code}" for (_, path), code in zip(results, ("H15", "H21")))
        assert _raw(sliced, entity) == _raw(whole, entity), entity
        assert [(s, status) for s, status, _ in _ledger(sliced, entity)] == [("H15", "loaded"), ("H21", "loaded")]
        assert sum(r for _, _, r in _ledger(sliced, entity)) == _ledger(whole, entity)[0][2]
    # Exactly once: loading a slice again changes nothing, and the other slice is never touched.
    before = {entity: (_raw(sliced, entity), _ledger(sliced, entity)) for entity in SLICED}
    again, _ = _load(sliced, portal, tmp_path / "sliced", "dossiers", "H21", ("H15", "H21"))
    assert again.skipped and again.source == "H21"
    assert {entity: (_raw(sliced, entity), _ledger(sliced, entity)) for entity in SLICED} == before


def test_a_day_loaded_whole_then_by_slices_is_not_counted_twice(make_database, portal, tmp_path):
    url = make_database("chiso_sources_switch")
    ensure_schema(url)
    _load(url, portal, tmp_path, "dossiers")
    whole = _raw(url, "dossiers")
    for code in ("H15", "H21"):
        _load(url, portal, tmp_path, "dossiers", code, ("H15", "H21"))
    assert _raw(url, "dossiers") == whole
    assert [(s, status) for s, status, _ in _ledger(url, "dossiers")] == [
        (NATIONAL, "superseded"), ("H15", "loaded"), ("H21", "loaded")]


def test_the_raw_gate_refuses_a_day_missing_a_slice(make_database, portal, tmp_path, monkeypatch):
    from chiso.orchestration import pipeline

    url = make_database("chiso_sources_gate")
    ensure_schema(url)
    monkeypatch.setenv("CHISO_WAREHOUSE_URL", url)
    monkeypatch.setenv("CHISO_PORTAL_SOURCES", SLICES)
    for entity in ENTITIES:
        for code in pipeline.sources_of(entity):
            if not (entity == "ratings" and code == "H21"):
                _load(url, portal, tmp_path, entity, code, tuple(pipeline.sources_of(entity)))
    with pytest.raises(pipeline.MissingSlice) as refused:
        pipeline.check_every_slice_loaded(DAY)
    assert "ratings of H21" in str(refused.value) and "dossiers" not in str(refused.value)
    _load(url, portal, tmp_path, "ratings", "H21", ("H15", "H21"))
    pipeline.check_every_slice_loaded(DAY)   # every slice there: nothing to say


def test_the_daily_dag_maps_the_sliced_entities_over_the_provinces(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("CHISO_PORTAL_SOURCES", SLICES)
    bag = DagBag(dag_folder=str(Path(__file__).parents[1] / "dags" / "chiso_daily.py"))
    assert bag.import_errors == {}
    dag = bag.dags["chiso_daily"]
    mapped = {task.task_id for task in dag.tasks if getattr(task, "is_mapped", False)}
    assert {f"{step}_{entity}" for step in ("fetch", "land", "load") for entity in SLICED} <= mapped
    assert not {f"fetch_{entity}" for entity in ENTITIES if entity not in SLICED} & mapped
