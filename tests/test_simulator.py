"""The portal simulator: the contract, determinism, the HTTP API, files, and the change feed."""

from __future__ import annotations

import gzip
import json
from datetime import date, timedelta

import pytest
import requests

from chiso.contract import ENTITIES, canonical_line, get_entity, sha256_of_rows
from chiso.contract.csv_format import BOM, read_csv
from chiso.ingest.validate import row_problems
from chiso.simulator.faults import FaultSchedule
from chiso.simulator.scenarios import SCENARIOS, get_scenario
from chiso.simulator.server import PortalSimulator, RunningSimulator

DAY = date(2024, 11, 15)
TOKEN = "t0ken"
CU_KUIN = get_scenario("cu_kuin_2024")


def _get(sim, path, **params):
    return requests.get(f"{sim.url}{path}", params=params, headers={"X-Api-Token": TOKEN}, timeout=30)


def _all_pages(sim, entity: str, day: date, page_size: int) -> list[dict]:
    rows, page, total_pages = [], 1, 1
    while page <= total_pages:
        body = _get(sim, f"/api/v1/{entity}", ngay=day.isoformat(), page=page, page_size=page_size).json()
        rows += body["items"]
        total_pages = body["total_pages"]
        page += 1
    return rows


@pytest.fixture(scope="module")
def simulator():
    with RunningSimulator(PortalSimulator(7, CU_KUIN), TOKEN) as sim:
        yield sim


@pytest.mark.parametrize("scenario, day", [("cu_kuin_2024", DAY), ("ia_tor_2024", date(2024, 3, 25)),
                                           ("reorg_2025", date(2025, 7, 1)), ("single_commune", date(2024, 2, 5))])
def test_every_generated_row_of_every_entity_satisfies_the_contract(scenario, day):
    portal = PortalSimulator(3, get_scenario(scenario))
    for entity in ENTITIES:
        rows = list(portal.stream(entity, day))
        problems = [(row, row_problems(get_entity(entity), row)) for row in rows]
        assert [p for p in problems if p[1]] == []
        if entity in ("units", "procedures", "dossiers", "process_log"):
            assert rows, f"{scenario} serves {entity} on {day}"


def test_same_seed_same_extract_other_seed_other_extract():
    assert PortalSimulator(1, CU_KUIN).rows("dossiers", DAY) == PortalSimulator(1, CU_KUIN).rows("dossiers", DAY)
    assert PortalSimulator(1, CU_KUIN).rows("dossiers", DAY) != PortalSimulator(2, CU_KUIN).rows("dossiers", DAY)


def test_pages_of_any_size_add_up_to_the_manifest(simulator):
    manifest = _get(simulator, "/api/v1/dossiers/manifest", ngay=DAY.isoformat()).json()
    for page_size in (1000, 37):
        rows = _all_pages(simulator, "dossiers", DAY, page_size)
        assert sha256_of_rows(rows) == (manifest["sha256"], manifest["row_count"])
    assert manifest["row_count"] > 100


def test_whole_day_files_match_the_rows_and_their_manifests(simulator):
    rows = _all_pages(simulator, "dossiers", DAY, 5000)
    ndjson = _get(simulator, f"/api/v1/dossiers/files/{DAY}.ndjson.gz")
    assert ndjson.headers["Content-Type"] == "application/gzip"
    assert gzip.decompress(ndjson.content) == b"".join(canonical_line(r) for r in rows)
    csv_file = _get(simulator, f"/api/v1/dossiers/files/{DAY}.csv")
    assert csv_file.content.startswith(BOM)
    header = csv_file.content[len(BOM):].split(b"\r\n", 1)[0].decode()
    assert header.startswith("Mã hồ sơ,Mã thủ tục,Tên thủ tục")
    assert "15/11/2024" in csv_file.content.decode("utf-8-sig")
    assert list(read_csv(get_entity("dossiers"), csv_file.content)) == rows
    for fmt, body in (("ndjson.gz", ndjson.content), ("csv", csv_file.content)):
        manifest = _get(simulator, f"/api/v1/dossiers/files/{DAY}.{fmt}.manifest").json()
        assert manifest["row_count"] == len(rows) and manifest["bytes"] == len(body)
        assert manifest["rows_sha256"] == sha256_of_rows(rows)[0]


def test_api_requires_the_token_and_valid_parameters(simulator):
    url = f"{simulator.url}/api/v1/dossiers"
    assert requests.get(url, params={"ngay": "2024-11-15"}, timeout=10).status_code == 401
    wrong = requests.get(url, params={"ngay": "2024-11-15"}, headers={"X-Api-Token": "nope"}, timeout=10)
    assert wrong.status_code == 401
    bad_date = _get(simulator, "/api/v1/dossiers", ngay="15/11/2024")
    assert bad_date.status_code == 400 and "YYYY-MM-DD" in bad_date.json()["error"]
    bad_fault = _get(simulator, "/api/v1/dossiers", ngay="2024-11-15", fault="earthquake")
    assert bad_fault.status_code == 400 and "earthquake" in bad_fault.json()["error"]


def test_extracts_are_a_change_feed_where_a_dossier_reappears_when_it_changes():
    portal = PortalSimulator(5, CU_KUIN)
    first = {row["MaHoSo"]: row for row in portal.stream("dossiers", DAY)}
    received_today = {code: row for code, row in first.items() if row["NgayTiepNhan"].startswith("20241115")}
    open_today = [code for code, row in received_today.items() if row["TrangThaiHoSo"] in (4, 5)]
    assert open_today and len(received_today) < len(first), "the feed also carries older dossiers"
    later = {}
    for offset in range(1, 40):
        for row in portal.stream("dossiers", DAY + timedelta(days=offset)):
            later[row["MaHoSo"]] = row
    reappeared = [code for code in open_today if code in later]
    assert len(reappeared) > 0.8 * len(open_today)
    assert all(later[code]["NgayCapNhat"] > first[code]["NgayCapNhat"] for code in reappeared)
    assert any(later[code]["TrangThaiHoSo"] == 10 and later[code]["NgayKetThucXuLy"] for code in reappeared)


def test_applicants_look_vietnamese_with_real_shaped_citizen_ids():
    rows = list(PortalSimulator(9, CU_KUIN).stream("dossiers", DAY))
    assert all(len(r["SoGiayToChuHoSo"]) == 12 and r["SoGiayToChuHoSo"].isdigit() for r in rows)
    family_names = {r["ChuHoSo"].split()[0] for r in rows}
    assert {"Nguyễn", "Trần", "Lê"} & family_names
    assert all(r["SoDienThoai"].startswith("0") and len(r["SoDienThoai"]) == 10 for r in rows)


def test_the_2025_reorganisation_moves_dossiers_to_the_successor_communes():
    world = get_scenario("reorg_2025")
    portal = PortalSimulator(4, world)
    successions = {row["MaDonViCu"]: row["MaDonViMoi"] for row in portal.stream("unit_crosswalk", date(2025, 7, 1))}
    assert len(successions) == 6 and len(set(successions.values())) == 2
    assert list(portal.stream("unit_crosswalk", date(2025, 6, 30))) == []
    before = {r["MaDonViTiepNhan"] for r in portal.stream("dossiers", date(2025, 6, 30))
              if r["NgayTiepNhan"].startswith("20250630")}
    after = {r["MaDonViTiepNhan"] for r in portal.stream("dossiers", date(2025, 7, 1))
             if r["NgayTiepNhan"].startswith("20250701")}
    assert before and before <= set(successions) | {"000.00.09.H21"}
    assert after and after <= set(successions.values())
    units = {r["MaDonVi"]: r for r in portal.stream("units", date(2025, 7, 1))}
    assert all(units[old]["HieuLucDen"] == "20250630235959" for old in successions)
    assert all(units[new]["HieuLucTu"] == "20250701000000" for new in successions.values())


def test_faults_scheduled_for_a_day_are_played_and_other_days_are_clean():
    schedule = FaultSchedule.parse("2024-11-15/dossiers=duplicate_rows:rate=0.1")
    with RunningSimulator(PortalSimulator(7, CU_KUIN, schedule), TOKEN) as sim:
        faulty = _all_pages(sim, "dossiers", DAY, 5000)
        clean = list(PortalSimulator(7, CU_KUIN).stream("dossiers", DAY))
        assert len(faulty) > len(clean)
        assert {json.dumps(r, sort_keys=True) for r in faulty} == {json.dumps(r, sort_keys=True) for r in clean}
        other_day = _all_pages(sim, "dossiers", DAY + timedelta(days=1), 5000)
        assert other_day == list(PortalSimulator(7, CU_KUIN).stream("dossiers", DAY + timedelta(days=1)))


def test_http_faults_on_request_then_recovery(simulator):
    params = {"ngay": DAY.isoformat(), "page": 1, "page_size": 10, "fault": "http_429:attempts=2:retry_after=1"}
    answers = [_get(simulator, "/api/v1/units", **params) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "1"
    garbled = _get(simulator, "/api/v1/units", ngay=DAY.isoformat(), fault="cp1258_text")
    with pytest.raises(UnicodeDecodeError):
        garbled.content.decode("utf-8")


def test_scenarios_build():
    for name in SCENARIOS:
        if name != "national":  # the national world is exercised by scripts/bench_simulator.py
            assert get_scenario(name).units


def test_byte_and_connection_faults_through_http(simulator):
    day = DAY.isoformat()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):  # the body stops short
        _get(simulator, "/api/v1/units", ngay=day, page=1, page_size=3, fault="drop_connection")
    assert _get(simulator, "/api/v1/units", ngay=day, page=1, page_size=3, fault="drop_connection").status_code == 200
    whole = _get(simulator, f"/api/v1/dossiers/files/{day}.csv").content
    truncated = _get(simulator, f"/api/v1/dossiers/files/{day}.csv", fault="truncated_file").content
    assert len(truncated) < len(whole) and whole.startswith(truncated)
    honest = _get(simulator, "/api/v1/dossiers/manifest", ngay=day).json()
    lying = _get(simulator, "/api/v1/dossiers/manifest", ngay=day, fault="manifest_mismatch").json()
    assert (lying["row_count"], lying["sha256"]) != (honest["row_count"], honest["sha256"])
    empty = _get(simulator, "/api/v1/dossiers", ngay=day, fault="empty_day").json()
    assert empty["items"] == [] and empty["total_rows"] == 0
