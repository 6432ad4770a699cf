"""The built-in scenarios tell the seeds' story: rates computed here from the generated extracts
match the plans' figures within 0.5 points."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from chiso.simulator.scenarios import CAMPAIGN_001, CAMPAIGN_002, get_scenario
from chiso.simulator.server import PortalSimulator

TOLERANCE = 0.5  # percentage points
# Seed 002, Phụ lục I: online rate on 13/11/2024 and the campaign's target (rate + 5 points).
CU_KUIN_ANNEX = {"Ea Bhôk": (58.1, 63.1), "Ea Ning": (56.7, 61.7), "Cư Êwi": (69.1, 74.1),
                 "Dray Bhăng": (72.5, 77.5), "Hòa Hiệp": (63.0, 68.0), "Ea Hu": (70.6, 75.6),
                 "Ea Ktur": (29.9, 34.9), "Ea Tiêu": (44.4, 49.4)}


def _days(first: date, last: date):
    return (first + timedelta(days=k) for k in range((last - first).days + 1))


def latest_versions(portal: PortalSimulator, first: date, last: date) -> dict[str, dict]:
    """Each dossier's latest version across the daily extracts of [first, last]."""
    latest = {}
    for day in _days(first, last):
        for row in portal.stream("dossiers", day):
            latest[row["MaHoSo"]] = row
    return latest


def _received_between(row: dict, first: date, last: date) -> bool:
    return first.strftime("%Y%m%d") <= row["NgayTiepNhan"][:8] <= last.strftime("%Y%m%d")


def _pct(numerator: int, denominator: int) -> float:
    return 100.0 * numerator / denominator


def online_rate(rows) -> float:
    rows = list(rows)
    return _pct(sum(r["KenhThucHien"] == 2 for r in rows), len(rows))


def paid_online_rate(rows) -> float:
    with_fee = [r for r in rows if r["DanhSachLePhi"]]
    return _pct(sum(r["DuocThanhToanTrucTuyen"] in (1, 2) for r in with_fee), len(with_fee))


def digitised_rate(rows) -> float:
    rows = list(rows)
    return _pct(sum(r["HoSoCoThanhPhanSoHoa"] == 1 for r in rows), len(rows))


def on_time_rate(rows) -> float:
    """Ended by the due date, the supplement's new due date when there was one; open = late."""
    rows = list(rows)

    def on_time(row):
        due = row["NgayHenTra"]
        if row["DanhSachHoSoBoSung"]:
            due = row["DanhSachHoSoBoSung"][-1]["NgayHenTraMoi"]
        return row["NgayKetThucXuLy"] is not None and row["NgayKetThucXuLy"] <= due

    return _pct(sum(map(on_time, rows)), len(rows))


@pytest.fixture(scope="module")
def cu_kuin():
    world = get_scenario("cu_kuin_2024")
    portal = PortalSimulator(766, world)
    names = {u.code: u.name.removeprefix("UBND xã ") for u in world.units if u.kind == "COMMUNE"}
    return portal, names, latest_versions(portal, date(2024, 1, 1), CAMPAIGN_002[1])


@pytest.fixture(scope="module")
def ia_tor():
    world = get_scenario("ia_tor_2024")
    portal = PortalSimulator(766, world)
    code = next(u.code for u in world.units if u.name == "UBND xã Ia Tôr")
    return portal, code


def by_commune(latest, names, first, last):
    grouped = {name: [] for name in names.values()}
    for row in latest.values():
        if row["MaDonViTiepNhan"] in names and _received_between(row, first, last):
            grouped[names[row["MaDonViTiepNhan"]]].append(row)
    return grouped


def test_cu_kuin_online_rates_of_13_11_2024_are_the_annex(cu_kuin):
    _, names, latest = cu_kuin
    year_to_date = by_commune(latest, names, date(2024, 1, 1), date(2024, 11, 13))
    for commune, (annex_rate, _) in CU_KUIN_ANNEX.items():
        assert online_rate(year_to_date[commune]) == pytest.approx(annex_rate, abs=TOLERANCE), commune
        assert paid_online_rate(year_to_date[commune]) <= 0.2, "payment was 0-0.11% before the campaign"


def test_cu_kuin_improves_during_the_campaign_and_ea_ktur_falls_short(cu_kuin):
    _, names, latest = cu_kuin
    start, end = CAMPAIGN_002
    before = by_commune(latest, names, date(2024, 1, 1), start - timedelta(days=1))
    final_days = by_commune(latest, names, end - timedelta(days=9), end)
    met = {c for c, (_, target) in CU_KUIN_ANNEX.items() if online_rate(final_days[c]) >= target}
    for commune in CU_KUIN_ANNEX:
        assert online_rate(final_days[commune]) > online_rate(before[commune]) + 1, commune
        assert paid_online_rate(final_days[commune]) > paid_online_rate(before[commune]), commune
    assert "Ea Ktur" not in met and len(met) >= 5


def test_ia_tor_2023_profile_is_seed_001s(ia_tor):
    portal, code = ia_tor
    latest = latest_versions(portal, date(2023, 1, 1), date(2024, 2, 14))  # ends of December's dossiers too
    year = [r for r in latest.values() if r["MaDonViTiepNhan"] == code
            and _received_between(r, date(2023, 1, 1), date(2023, 12, 31))]
    assert len(year) > 1000
    assert online_rate(year) == pytest.approx(0.2, abs=TOLERANCE)
    assert paid_online_rate(year) == pytest.approx(0.0, abs=TOLERANCE)
    assert digitised_rate(year) == pytest.approx(19.5, abs=TOLERANCE)
    assert on_time_rate(year) == pytest.approx(90.24, abs=TOLERANCE)
    ratings = [r for day in _days(date(2023, 1, 1), date(2023, 12, 31)) for r in portal.stream("ratings", day)
               if r["MaDonVi"] == code]
    assert ratings and all(r["MucDoHaiLong"] in (1, 2) for r in ratings), "satisfaction 100%"


def test_ia_tor_reaches_the_campaign_milestones(ia_tor):
    portal, code = ia_tor
    start, end = CAMPAIGN_001
    day_50 = start + timedelta(days=49)
    latest = latest_versions(portal, day_50 - timedelta(days=6), end)
    around_day_50 = [r for r in latest.values() if r["MaDonViTiepNhan"] == code
                     and _received_between(r, day_50 - timedelta(days=6), day_50)]
    final_week = [r for r in latest.values() if r["MaDonViTiepNhan"] == code
                  and _received_between(r, end - timedelta(days=6), end)]
    assert online_rate(around_day_50) == pytest.approx(29.0, abs=2.5)  # climbing to 30% on day 50
    assert online_rate(final_week) == pytest.approx(59.0, abs=2.5)  # climbing to 60% on day 100
    assert digitised_rate(final_week) > 90
