"""Fetch → land → load against the real Postgres: accounting, idempotence, quarantine, pseudonyms."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from datetime import date

import psycopg
import pytest

from chiso.contract import canonical_line, sha256_of_rows
from chiso.ingest.fetch import Portal, PortalError, fetch_day, fetch_day_file, fetch_extract
from chiso.ingest.landing import LandingError, iter_rows, land, landed_dir
from chiso.ingest.load import load_extract
from chiso.ingest.pseudonymise import Pseudonymiser
from chiso.ingest.validate import ContractError
from chiso.simulator.scenarios import get_scenario
from chiso.simulator.server import PortalSimulator, RunningSimulator
from chiso.core.warehouse import ensure_schema

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
    assert quarantine[0][1] == "TrangThaiHoSo: an integer is not in the code list"
    assert quarantine[1][1] == "NgayHenTra: a text of 10 characters is not a yyyyMMddHHmmss date"
    assert "42" not in quarantine[0][1] and "31/12/2024" not in quarantine[1][1], "reasons never hold the value"
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
    from chiso.orchestration import pipeline

    with RunningSimulator(PortalSimulator(11, get_scenario("cu_kuin_2024")), TOKEN) as running:
        portal_connection(running)
        fetched = Path(pipeline.fetch("dossiers", DAY))
        page = fetched / "page-00001.json"
        page.write_bytes(page.read_bytes().replace(b'"TrangThaiHoSo":4', b'"TrangThaiHoSo":5', 1))
        landed = Path(pipeline.land("dossiers", DAY, str(fetched)))
    assert landed.exists() and "_incoming" not in str(landed)


def test_a_manifest_that_keeps_disagreeing_fails_loudly(portal_connection):
    from chiso.orchestration import pipeline
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


# ---------------------------------------------------------------- whole-day files (CHISO_PORTAL_TRANSFER=files)


def _files_portal(running, **kwargs):
    return Portal(running.url, TOKEN, transfer="files", **kwargs)


def _counting_file_downloads(portal, cut_first: int = 0):
    """Count the simulator's whole-day file downloads; the first ``cut_first`` lose their last bytes."""
    served = []
    original = portal.file_chunks

    def file_chunks(*args, **kwargs):
        served.append(args[:3])
        body = b"".join(original(*args, **kwargs))
        return iter([body[:-100]] if len(served) <= cut_first else [body])

    portal.file_chunks = file_chunks
    return served


def test_a_whole_day_file_lands_where_the_pages_land_and_loads_the_same_rows(simulator, make_database, tmp_path):
    from chiso.ingest.landing import DAY_FILE, FILE_MANIFEST

    portal, running = simulator
    pages = land(fetch_extract(Portal(running.url, TOKEN, page_size=100), "dossiers", DAY, tmp_path / "p"),
                 tmp_path / "p", "dossiers", DAY)
    files = land(fetch_day(_files_portal(running), "dossiers", DAY, tmp_path / "f"), tmp_path / "f", "dossiers", DAY)
    assert files.relative_to(tmp_path / "f") == pages.relative_to(tmp_path / "p")  # same rows, same place
    assert sorted(p.name for p in files.iterdir()) == [DAY_FILE, FILE_MANIFEST, "manifest.json"]
    assert all((p.stat().st_mode & 0o077) == 0 for p in files.iterdir())
    manifest = json.loads((files / "manifest.json").read_text())
    assert (manifest["sha256"], manifest["row_count"]) == sha256_of_rows(portal.rows("dossiers", DAY))
    stored = {}
    for name, landed_extract in (("pages", pages), ("files", files)):
        url = make_database()
        ensure_schema(url)
        with psycopg.connect(url) as conn:
            result = load_extract(conn, "dossiers", DAY, landed_extract, KEY)
            stored[name] = sorted(r[0] for r in conn.execute(
                "select line_number || ' ' || record::text from raw.portal__dossiers"))
        assert (result.rows_loaded, result.rows_quarantined) == (manifest["row_count"], 0)
        assert result.checksum == manifest["sha256"]
    assert stored["files"] == stored["pages"]


def test_a_day_already_landed_from_pages_is_not_downloaded_again_as_a_file(simulator, landed, tmp_path):
    portal, running = simulator
    served = _counting_file_downloads(portal)
    assert fetch_day(_files_portal(running), "dossiers", DAY, tmp_path) == landed
    assert served == []


def test_a_whole_file_left_by_an_interrupted_try_is_not_downloaded_again(simulator, tmp_path):
    from chiso.ingest.landing import DAY_FILE

    portal, running = simulator
    fetched = fetch_day_file(_files_portal(running), "dossiers", DAY, tmp_path)
    (fetched / "manifest.json").unlink()  # the try died before writing its manifests
    served = _counting_file_downloads(portal)
    again = fetch_day_file(_files_portal(running), "dossiers", DAY, tmp_path)
    assert again == fetched and served == [] and (again / DAY_FILE).exists()
    assert land(again, tmp_path, "dossiers", DAY).exists()


def test_a_file_cut_short_once_is_downloaded_again(simulator, tmp_path):
    portal, running = simulator
    served = _counting_file_downloads(portal, cut_first=1)
    fetched = fetch_day_file(_files_portal(running), "dossiers", DAY, tmp_path)
    assert len(served) == 2
    assert sum(1 for _ in iter_rows(land(fetched, tmp_path, "dossiers", DAY))) == len(portal.rows("dossiers", DAY))


def test_a_truncated_file_is_downloaded_again_then_refused_naming_its_url(tmp_path):
    from chiso.simulator.faults import FaultSchedule

    portal = PortalSimulator(11, get_scenario("cu_kuin_2024"), FaultSchedule.parse("*=truncated_file"))
    served = _counting_file_downloads(portal)
    with RunningSimulator(portal, TOKEN) as running, pytest.raises(
            PortalError, match=r"GET http://\S+/api/v1/dossiers/files/2024-11-15\.ndjson\.gz gave \d+ bytes .*"
                               r"manifest says \d+ bytes .*truncated or corrupted, 2 downloads"):
        fetch_day_file(_files_portal(running), "dossiers", DAY, tmp_path)
    assert len(served) == 2
    assert not list(tmp_path.rglob("*.ndjson.gz*")), "no partial file is left to be mistaken for a whole one"


def test_a_truncated_gzip_file_is_refused_when_read(simulator, tmp_path):
    from chiso.ingest.landing import DAY_FILE

    _, running = simulator
    fetched = fetch_day_file(_files_portal(running), "dossiers", DAY, tmp_path)
    data = (fetched / DAY_FILE).read_bytes()
    (fetched / DAY_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(LandingError, match=r"day\.ndjson\.gz is not a whole gzip file \(truncated\?\)"):
        land(fetched, tmp_path, "dossiers", DAY)


def test_an_empty_day_file_loads_no_row_and_the_ledger_says_so(warehouse_url, tmp_path):
    from chiso.simulator.faults import FaultSchedule

    portal = PortalSimulator(11, get_scenario("cu_kuin_2024"), FaultSchedule.parse("*=empty_day"))
    with RunningSimulator(portal, TOKEN) as running:
        landed_extract = land(fetch_day_file(_files_portal(running), "dossiers", DAY, tmp_path), tmp_path,
                              "dossiers", DAY)
    ensure_schema(warehouse_url)
    with psycopg.connect(warehouse_url) as conn:
        result = load_extract(conn, "dossiers", DAY, landed_extract, KEY)
    assert (result.rows_in_manifest, result.rows_loaded, result.rows_quarantined) == (0, 0, 0)
    assert [row[2:] for row in _ledger(warehouse_url)] == [(0, 0, 0, "loaded")]


def test_throttling_and_read_timeouts_are_retried_and_logged(tmp_path, caplog):
    from chiso.simulator.faults import FaultSchedule

    schedule = FaultSchedule.parse("units=http_429:attempts=1:retry_after=1;procedures=timeout:attempts=1:seconds=1.5")
    with RunningSimulator(PortalSimulator(11, get_scenario("cu_kuin_2024"), schedule), TOKEN) as running:
        portal = _files_portal(running, read_timeout=0.5)
        for entity in ("units", "procedures"):
            land(fetch_day(portal, entity, DAY, tmp_path), tmp_path, entity, DAY)
    retried = [r.getMessage() for r in caplog.records if "answered after" in r.getMessage()]
    throttled = [m for m in retried if "/units/files/" in m]
    assert len(throttled) == 2 and all("1 retry (HTTP 429)" in m for m in throttled)  # manifest and file
    assert all(float(m.rsplit(", ", 1)[1].split(" s")[0]) >= 1.0 for m in throttled), "Retry-After was honoured"
    timed_out = [m for m in retried if "/procedures/files/" in m]
    assert len(timed_out) == 2 and all("1 retry (ReadTimeoutError)" in m for m in timed_out)


def test_the_transfer_is_checked():
    with pytest.raises(ValueError, match="pages, files"):
        Portal("http://127.0.0.1:1", TOKEN, transfer="ftp")


def test_an_empty_dossiers_day_is_not_published_unless_a_person_accepts_it(warehouse_url):
    from chiso.orchestration import pipeline

    ensure_schema(warehouse_url)
    with psycopg.connect(warehouse_url) as conn:
        for entity, rows, loaded in (("units", 10, 10), ("procedures", 17, 17), ("dossiers", 0, 0), ("feedback", 0, 0)):
            conn.execute("insert into raw.load_ledger (entity, business_date, checksum, source_path, rows_in_manifest, "
                         "rows_loaded, rows_quarantined, status) values (%s, %s, 'x', 'x', %s, %s, %s, 'loaded')",
                         (entity, DAY, rows, loaded, rows - loaded))
    with pytest.raises(pipeline.EmptyExtract, match=r"no rows of dossiers \(dossiers: 0 in the manifest, 0 loaded\)"
                                                    r".*\"accept_empty_day\": true"):
        pipeline.check_extracts_have_rows(DAY)
    assert pipeline.check_extracts_have_rows(DAY, accept_empty_day=True)["dossiers"] == 0
    with psycopg.connect(warehouse_url) as conn:
        conn.execute("update raw.load_ledger set rows_loaded = 0, rows_quarantined = 10 where entity = 'units'")
    with pytest.raises(pipeline.EmptyExtract, match=r"no rows of units \(units: 10 in the manifest, 0 loaded\)"):
        pipeline.check_extracts_have_rows(DAY, accept_empty_day=True)  # an empty catalogue is never accepted
