"""The portal simulator: deterministic, authenticated, paged, with manifests that match the payload."""

from __future__ import annotations

from datetime import date, timedelta

import requests

from chiso.contract import get_entity, sha256_of_rows
from chiso.ingest.validate import row_problems
from chiso.simulator.scenarios import get_scenario
from chiso.simulator.server import PortalSimulator, RunningSimulator

DAY = date(2024, 11, 15)
UNITS = get_scenario("cu_kuin_2024")


def _all_pages(url: str, token: str, entity: str, day: date, page_size: int) -> list[dict]:
    rows, page, total_pages = [], 1, 1
    while page <= total_pages:
        answer = requests.get(f"{url}/api/v1/{entity}", params={"ngay": day.isoformat(), "page": page,
                              "page_size": page_size}, headers={"X-Api-Token": token}, timeout=10)
        answer.raise_for_status()
        body = answer.json()
        rows += body["items"]
        total_pages = body["total_pages"]
        page += 1
    return rows


def test_same_seed_same_extract_other_seed_other_extract():
    assert PortalSimulator(1, UNITS).rows("dossiers", DAY) == PortalSimulator(1, UNITS).rows("dossiers", DAY)
    assert PortalSimulator(1, UNITS).rows("dossiers", DAY) != PortalSimulator(2, UNITS).rows("dossiers", DAY)


def test_pages_of_any_size_add_up_to_the_manifest():
    with RunningSimulator(PortalSimulator(7, UNITS), "t0ken") as sim:
        manifest = requests.get(f"{sim.url}/api/v1/dossiers/manifest", params={"ngay": DAY.isoformat()},
                                headers={"X-Api-Token": "t0ken"}, timeout=10).json()
        for page_size in (1000, 37):
            rows = _all_pages(sim.url, "t0ken", "dossiers", DAY, page_size)
            assert sha256_of_rows(rows) == (manifest["sha256"], manifest["row_count"])
        assert manifest["row_count"] > 100


def test_api_requires_the_token_and_valid_parameters():
    with RunningSimulator(PortalSimulator(7, UNITS), "t0ken") as sim:
        url = f"{sim.url}/api/v1/dossiers"
        assert requests.get(url, params={"ngay": "2024-11-15"}, timeout=10).status_code == 401
        wrong = requests.get(url, params={"ngay": "2024-11-15"}, headers={"X-Api-Token": "nope"}, timeout=10)
        assert wrong.status_code == 401
        bad_date = requests.get(url, params={"ngay": "15/11/2024"}, headers={"X-Api-Token": "t0ken"}, timeout=10)
        assert bad_date.status_code == 400 and "YYYY-MM-DD" in bad_date.json()["error"]


def test_every_generated_row_satisfies_the_contract():
    portal = PortalSimulator(3, UNITS)
    for entity in ("units", "dossiers"):
        for row in portal.rows(entity, DAY):
            assert row_problems(get_entity(entity), row) == []
            assert set(row) <= set(get_entity(entity).fields)


def test_extracts_are_a_change_feed_where_a_dossier_reappears_when_it_ends():
    portal = PortalSimulator(5, UNITS)
    first = {row["MaHoSo"]: row for row in portal.rows("dossiers", DAY)}
    open_today = [code for code, row in first.items() if row["TrangThaiHoSo"] == 4 and code.endswith(
        f"-{DAY:%y%m%d}-" + code.rsplit("-", 1)[1])]
    assert open_today, "some dossiers received on the day are still open at its end"
    later = {}
    for offset in range(1, 22):
        for row in portal.rows("dossiers", DAY + timedelta(days=offset)):
            later.setdefault(row["MaHoSo"], row)
    reappeared = [code for code in open_today if code in later]
    assert reappeared, "open dossiers come back in the extract of the day they end"
    assert all(later[code]["TrangThaiHoSo"] == 10 and later[code]["NgayKetThucXuLy"] for code in reappeared)


def test_citizen_ids_have_the_real_12_digit_shape():
    rows = PortalSimulator(9, UNITS).rows("dossiers", DAY)
    assert all(len(r["SoGiayToChuHoSo"]) == 12 and r["SoGiayToChuHoSo"].isdigit() for r in rows)


def test_units_and_procedures_are_configurable():
    from chiso.simulator.scenarios import PROCEDURES

    one_unit, one_procedure = UNITS[:1], PROCEDURES[:1]
    rows = PortalSimulator(4, one_unit, one_procedure).rows("dossiers", DAY)
    assert rows and {r["MaDonViTiepNhan"] for r in rows} == {one_unit[0].code}
    assert {r["MaTTHC"] for r in rows} == {one_procedure[0].code}
    assert [u["MaDonVi"] for u in PortalSimulator(4, one_unit).rows("units", DAY)] == [one_unit[0].code]
