"""The catalogues the portal serves whole every day: units, their successions, procedures; and the
procedure publication events of the national TTHC database (a change feed)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

import numpy as np

from chiso.contract.model import PORTAL_DATETIME_FORMAT
from chiso.simulator.world import World


def _moment(day: date | None, at: time = time(0, 0)) -> str | None:
    return None if day is None else datetime.combine(day, at).strftime(PORTAL_DATETIME_FORMAT)


def unit_rows(world: World, day: date) -> Iterator[dict]:
    """Every version of every unit known on ``day`` (ceased ones included, with their end)."""
    for unit in world.units:
        if unit.valid_from > day:
            continue
        yield {
            "MaDonVi": unit.code,
            "MaDonViDVCQG": unit.portal_code,
            "MaThongKe": unit.statistical_code,
            "TenDonVi": unit.name,
            "LoaiDonVi": unit.kind,
            "MaDonViCha": unit.parent_code,
            "HieuLucTu": _moment(unit.valid_from),
            "HieuLucDen": _moment(unit.valid_to, time(23, 59, 59)),
        }


def crosswalk_rows(world: World, day: date) -> Iterator[dict]:
    for succession in world.successions:
        if succession.effective <= day:
            yield {"MaDonViCu": succession.old_code, "MaDonViMoi": succession.new_code,
                   "NgayHieuLuc": _moment(succession.effective), "CanCuPhapLy": succession.legal_basis}


def procedure_rows(world: World, day: date) -> Iterator[dict]:
    for p in world.procedures:
        if p.valid_from > day:
            continue
        yield {
            "MaTTHC": p.code, "TenTTHC": p.name, "MaLinhVuc": p.field_code, "TenLinhVuc": p.field_name,
            "CapThucHien": p.level, "MucDoDVC": p.online_level, "LePhi": p.fee,
            "CoKetQuaBangVanBan": int(p.written_result), "DoiTuongCaNhan": int(p.individuals),
            "DuDieuKienToanTrinh": int(p.full_online_eligible), "ThoiHanGiaiQuyet": p.working_days,
            "HieuLucTu": _moment(p.valid_from), "HieuLucDen": _moment(p.valid_to, time(23, 59, 59)),
        }


def _business_days_after(day: date, count: int) -> date:
    return np.busday_offset(np.datetime64(day), count, roll="forward").astype(date)


def _decisions_of_month(seed: int, world: World, publisher: str, year: int, month: int) -> list[dict]:
    """A province's publication decisions of one month, each with its publication events."""
    rng = random.Random(f"{seed}:{publisher}:{year}-{month}:publications")
    events = []
    for number in range(rng.randint(1, 4)):
        decided = date(year, month, rng.randint(1, 28))
        # Most legal bases take effect ≥ 5 working days after the decision; some arrive late.
        effective = _business_days_after(decided, rng.choice((6, 8, 10, 15, 20, 3, 1)))
        for procedure in rng.sample(world.procedures, rng.randint(1, 3)):
            public_after = rng.choice((1, 2, 3, 4, 5, 5, 7, 9))
            events.append({
                "MaTTHC": procedure.code,
                "MaCoQuanCongBo": publisher,
                "SoQuyetDinh": f"{rng.randint(100, 3000)}/QĐ-UBND.{year}{month:02d}{number}",
                "LoaiCongBo": rng.choice((1, 2, 2, 2, 3)),
                "NgayQuyetDinh": _moment(decided, time(8, 0)),
                "NgayHieuLucVanBan": _moment(effective),
                "_made_public": _business_days_after(decided, public_after),
                "DayDuBayBoPhan": int(rng.random() < 0.95),
            })
    return events


def publication_rows(seed: int, world: World, day: date) -> Iterator[dict]:
    """Publication events that changed on ``day``: decided that day, or made public that day."""
    months = {(day.year, day.month)}
    earlier = day - timedelta(days=20)
    months.add((earlier.year, earlier.month))
    for publisher in world.publishers:
        for year, month in sorted(months):
            for event in _decisions_of_month(seed, world, publisher, year, month):
                made_public = event.pop("_made_public")
                decided = datetime.strptime(event["NgayQuyetDinh"], PORTAL_DATETIME_FORMAT).date()
                if decided == day or made_public == day:
                    yield {**event, "NgayCongKhai": _moment(made_public, time(9, 0)) if made_public <= day else None}
