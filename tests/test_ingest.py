"""Fetch → land → load against the real Postgres: accounting, idempotence, quarantine, pseudonyms."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from datetime import date

import psycopg
import pytest

from chiso.contract import canonical_line, sha256_of_rows
from chiso.ingest.fetch import Portal, PortalError, fetch_extract
from chiso.ingest.landing import LandingError, iter_rows, land, landed_dir
from chiso.ingest.load import load_extract
from chiso.ingest.pseudonymise import Pseudonymiser
from chiso.ingest.validate import ContractError
from chiso.simulator.scenarios import get_scenario
from chiso.simulator.server import PortalSimulator, RunningSimulator
from chiso.warehouse import ensure_schema

DAY = date(2024, 11, 15)
TOKEN = "test-token"
KEY = Pseudonymiser("test-key")


@pytest.fixture
def simulator():
    portal = PortalSimulator(11, get_scenario("cu_kuin_2024"))
    with RunningSimulator(portal, TOKEN) as running:
        yield portal, running


@pytest.fixture
def landed(simulator, tmp_path):
    _, running = simulator
    fetched = fetch_extract(Portal(running.url, TOKEN, page_size=50), "dossiers", DAY, tmp_path)
    return land(fetched, tmp_path, "dossiers", DAY)


def _ledger(url):
    with psycopg.connect(url) as conn:
        return conn.execute("select load_id, checksum, rows_in_manifest, rows_loaded, rows_quarantined, status "
                            "from raw.load_ledger order by load_id").fetchall()


def _raw_count(url):
    with psycopg.connect(url) as conn:
        return conn.execute("select count(*) from raw.portal__dossiers").fetchone()[0]


def test_landing_is_verified_immutable_and_owner_only(simulator, landed, tmp_path):
    portal, _ = simulator
    manifest = json.loads((landed / "manifest.json").read_text())
    assert landed == landed_dir(tmp_path, "dossiers", DAY, manifest["sha256"])
    assert len(list(landed.glob("page-*.json"))) == -(-manifest["row_count"] // 50)
    assert all((p.stat().st_mode & 0o077) == 0 for p in landed.iterdir())
    assert manifest["row_count"] == len(portal.rows("dossiers", DAY))


def test_tampered_pages_are_refused_before_loading(landed, tmp_path):
    copy = tmp_path / "tampered"
    shutil.copytree(landed, copy)
    page = copy / "page-00001.json"
    body = json.loads(page.read_text())
    body["items"][0]["TrangThaiHoSo"] = 9 if body["items"][0]["TrangThaiHoSo"] != 9 else 10
    page.write_text(json.dumps(body, ensure_ascii=False))
    with pytest.raises(LandingError, match="manifest says"):
        land(copy, tmp_path / "other-root", "dossiers", DAY)


def test_wrong_token_fails_with_the_url_and_status(simulator, tmp_path):
    _, running = simulator
    with pytest.raises(PortalError, match=r"dossiers/manifest.*HTTP 401"):
        fetch_extract(Portal(running.url, "wrong"), "dossiers", DAY, tmp_path)


def test_loading_twice_is_a_no_op(warehouse_url, landed):
    ensure_schema(warehouse_url)
    with psycopg.connect(warehouse_url) as conn:
        first = load_extract(conn, "dossiers", DAY, landed, KEY)
        second = load_extract(conn, "dossiers", DAY, landed, KEY)
    assert not first.skipped and second.skipped and second.load_id == first.load_id
    assert first.rows_loaded == first.rows_in_manifest == _raw_count(warehouse_url)
    assert len(_ledger(warehouse_url)) == 1


def test_a_corrected_extract_replaces_the_day_and_bad_rows_are_quarantined(warehouse_url, landed, tmp_path):
    ensure_schema(warehouse_url)
    with psycopg.connect(warehouse_url) as conn:
        load_extract(conn, "dossiers", DAY, landed, KEY)
    # The portal re-issues the day with two broken rows: a status outside 1-10 and a bad date.
    corrected = tmp_path / "corrected"
    shutil.copytree(landed, corrected)
    page = corrected / "page-00001.json"
    body = json.loads(page.read_text())
    body["items"][0]["TrangThaiHoSo"] = 42
    body["items"][1]["NgayHenTra"] = "31/12/2024"
    page.write_text(json.dumps(body, ensure_ascii=False))
    manifest = json.loads((corrected / "manifest.json").read_text())
    manifest["sha256"], manifest["row_count"] = sha256_of_rows(r.row for r in iter_rows(corrected))
    (corrected / "manifest.json").write_text(json.dumps(manifest))
    with psycopg.connect(warehouse_url) as conn:
        result = load_extract(conn, "dossiers", DAY, corrected, KEY)
        quarantine = conn.execute("select line_number, reason, original_text from raw.quarantine "
                                  "order by line_number").fetchall()
    assert (result.rows_loaded, result.rows_quarantined) == (manifest["row_count"] - 2, 2)
    assert _raw_count(warehouse_url) == manifest["row_count"] - 2  # the old day's rows are gone
    assert [line for line, _, _ in quarantine] == [1, 2]
    assert "TrangThaiHoSo=42" in quarantine[0][1] and "NgayHenTra='31/12/2024'" in quarantine[1][1]
    clear_name = body["items"][0]["ChuHoSo"]
    assert clear_name not in quarantine[0][2], "quarantined rows are pseudonymised too"
    statuses = [row[5] for row in _ledger(warehouse_url)]
    assert statuses == ["superseded", "loaded"]


def test_an_unknown_column_stops_the_load_and_leaves_nothing(warehouse_url, landed, tmp_path):
    ensure_schema(warehouse_url)
    renamed = tmp_path / "renamed"
    shutil.copytree(landed, renamed)
    page = renamed / "page-00002.json"
    body = json.loads(page.read_text())
    body["items"][3]["TrangThai"] = body["items"][3].pop("TrangThaiHoSo")
    page.write_text(json.dumps(body, ensure_ascii=False))
    with psycopg.connect(warehouse_url) as conn, pytest.raises(ContractError, match="TrangThai"):
        load_extract(conn, "dossiers", DAY, renamed, KEY)
    assert _raw_count(warehouse_url) == 0 and _ledger(warehouse_url) == []


def test_personal_data_is_pseudonymised_consistently(warehouse_url, simulator, landed):
    portal, _ = simulator
    ensure_schema(warehouse_url)
    with psycopg.connect(warehouse_url) as conn:
        load_extract(conn, "dossiers", DAY, landed, KEY)
        stored = dict(conn.execute("select record->>'MaHoSo', record::text from raw.portal__dossiers").fetchall())
    for row in portal.rows("dossiers", DAY):
        text = stored[row["MaHoSo"]]
        for field in ("ChuHoSo", "SoGiayToChuHoSo", "SoDienThoai", "Email"):
            if row[field]:
                assert row[field] not in text
                assert KEY.pseudonym(field, row[field]) in text
    assert KEY.pseudonym("SoGiayToChuHoSo", "066 090 123456") == KEY.pseudonym("SoGiayToChuHoSo", "066090123456")
    assert Pseudonymiser("other-key").pseudonym("ChuHoSo", "Lê Văn An") != KEY.pseudonym("ChuHoSo", "Lê Văn An")


def test_canonical_form_ignores_key_order_and_keeps_vietnamese_text():
    assert canonical_line({"b": 1, "a": "Đắk Lắk"}) == canonical_line({"a": "Đắk Lắk", "b": 1})
    assert "Đắk Lắk".encode() in canonical_line({"a": "Đắk Lắk"})


@pytest.mark.parametrize("fault", ["nfd_text", "cp1258_text"])
def test_decomposed_and_windows_1258_text_load_to_the_same_bytes_as_clean_utf8(make_database, tmp_path, fault):
    from chiso.simulator.faults import FaultSchedule

    stored = {}
    for variant, schedule in (("clean", None), (fault, FaultSchedule.parse(f"*={fault}"))):
        url = make_database()
        ensure_schema(url)
        with RunningSimulator(PortalSimulator(11, get_scenario("cu_kuin_2024"), schedule), TOKEN) as running:
            root = tmp_path / variant
            fetched = fetch_extract(Portal(running.url, TOKEN, page_size=100), "dossiers", DAY, root)
            landed = land(fetched, root, "dossiers", DAY)
        if variant != "clean":
            raw = b"".join(p.read_bytes() for p in landed.glob("page-*.json"))
            assert "Đắk Lắk".encode() not in raw  # the bytes really differ from clean UTF-8
        with psycopg.connect(url) as conn:
            result = load_extract(conn, "dossiers", DAY, landed, KEY)
            stored[variant] = sorted(r[0] for r in conn.execute("select record::text from raw.portal__dossiers"))
        assert result.rows_quarantined == 0
    assert stored[fault] == stored["clean"]


def test_a_bom_before_a_page_is_ignored(warehouse_url, landed, tmp_path):
    with_bom = tmp_path / "bom"
    shutil.copytree(landed, with_bom)
    page = with_bom / "page-00001.json"
    page.write_bytes(b"\xef\xbb\xbf" + page.read_bytes())
    relanded = land(with_bom, tmp_path / "bom-root", "dossiers", DAY)  # verifies against the manifest
    ensure_schema(warehouse_url)
    with psycopg.connect(warehouse_url) as conn:
        assert load_extract(conn, "dossiers", DAY, relanded, KEY).rows_quarantined == 0


def test_a_connection_dropped_mid_page_is_fetched_again(tmp_path):
    from chiso.simulator.faults import FaultSchedule

    schedule = FaultSchedule.parse("*=drop_connection:attempts=2")
    with RunningSimulator(PortalSimulator(11, get_scenario("cu_kuin_2024"), schedule), TOKEN) as running:
        fetched = fetch_extract(Portal(running.url, TOKEN, page_size=200), "dossiers", DAY, tmp_path)
    assert land(fetched, tmp_path, "dossiers", DAY).exists()


def test_a_page_that_never_arrives_whole_fails_naming_the_url(tmp_path):
    from chiso.simulator.faults import FaultSchedule

    schedule = FaultSchedule.parse("*=drop_connection:attempts=9")
    with RunningSimulator(PortalSimulator(11, get_scenario("cu_kuin_2024"), schedule), TOKEN) as running, \
            pytest.raises(PortalError, match=r"/api/v1/dossiers/manifest .* failed 3 times"):
        fetch_extract(Portal(running.url, TOKEN, page_size=200), "dossiers", DAY, tmp_path)


@pytest.fixture
def portal_connection(monkeypatch, tmp_path):
    """The Airflow connection and landing zone the pipeline's tasks read, pointed at a simulator."""
    import json as _json

    def connect_to(running):
        monkeypatch.setenv("AIRFLOW_CONN_CHISO_PORTAL", _json.dumps(
            {"conn_type": "http", "host": running.url, "password": TOKEN}))
        monkeypatch.setenv("CHISO_LANDING_DIR", str(tmp_path / "landing"))
    return connect_to


def test_a_corrupted_fetch_is_fetched_again_before_landing(portal_connection):
    from chiso import pipeline

    with RunningSimulator(PortalSimulator(11, get_scenario("cu_kuin_2024")), TOKEN) as running:
        portal_connection(running)
        fetched = Path(pipeline.fetch("dossiers", DAY))
        page = fetched / "page-00001.json"
        page.write_bytes(page.read_bytes().replace(b'"TrangThaiHoSo":4', b'"TrangThaiHoSo":5', 1))
        landed = Path(pipeline.land("dossiers", DAY, str(fetched)))
    assert landed.exists() and "_incoming" not in str(landed)


def test_a_manifest_that_keeps_disagreeing_fails_loudly(portal_connection):
    from chiso import pipeline
    from chiso.simulator.faults import FaultSchedule

    schedule = FaultSchedule.parse("*=manifest_mismatch")
    with RunningSimulator(PortalSimulator(11, get_scenario("cu_kuin_2024"), schedule), TOKEN) as running:
        portal_connection(running)
        fetched = pipeline.fetch("dossiers", DAY)
        with pytest.raises(LandingError, match="even after a re-fetch"):
            pipeline.land("dossiers", DAY, fetched)


def test_an_extra_column_is_kept_when_the_setting_allows_it(warehouse_url, landed, tmp_path):
    extra = tmp_path / "extra"
    shutil.copytree(landed, extra)
    page = extra / "page-00001.json"
    body = json.loads(page.read_text())
    for item in body["items"]:
        item["GhiChuNoiBo"] = "ghi chú"
    page.write_text(json.dumps(body, ensure_ascii=False))
    ensure_schema(warehouse_url)
    with psycopg.connect(warehouse_url) as conn:
        with pytest.raises(ContractError, match="GhiChuNoiBo"):
            load_extract(conn, "dossiers", DAY, extra, KEY, allow_new_columns=False)
        result = load_extract(conn, "dossiers", DAY, extra, KEY, allow_new_columns=True)
        kept = conn.execute("select count(*) from raw.portal__dossiers where record ? 'GhiChuNoiBo'").fetchone()[0]
    assert result.rows_quarantined == 0 and kept == len(body["items"])


def test_housekeeping_deletes_extracts_past_their_retention(tmp_path):
    from datetime import date as day_type

    from chiso.ingest.housekeeping import purge_landing

    for entity, day in (("dossiers", "2024-01-01"), ("dossiers", "2024-03-30"), ("units", "2024-01-02")):
        (tmp_path / "portal" / entity / f"business_date={day}" / "sha256=ab").mkdir(parents=True)
    (tmp_path / "_incoming" / "portal" / "dossiers" / "business_date=2023-12-31").mkdir(parents=True)
    removed = purge_landing(tmp_path, retention_days=30, today=day_type(2024, 4, 1))
    assert sorted(p.name for p in removed) == ["business_date=2023-12-31", "business_date=2024-01-01",
                                               "business_date=2024-01-02"]
    assert (tmp_path / "portal" / "dossiers" / "business_date=2024-03-30").exists()
    with pytest.raises(ValueError):
        purge_landing(tmp_path, retention_days=0, today=day_type(2024, 4, 1))
