"""Deterministic generation of the portal's daily extracts.

Every dossier's whole life is drawn from a random stream seeded by (seed, unit, day received), so
any day's extract can be produced on its own, in any order, and is identical on every call. The
extract of day D is a change feed: dossiers received on D (in their state at the end of D) and
dossiers received earlier whose processing ended on D.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from chiso.contract.entities import PORTAL_DATETIME_FORMAT
from chiso.simulator.scenarios import PROCEDURES, Procedure, UnitProfile

# A dossier's processing never lasts longer than this many calendar days, so the extract of day D
# only has to replay the dossiers received in the window before it.
MAX_LIFETIME_DAYS = 21

_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Võ", "Đặng", "Bùi", "Đỗ", "H'", "Y")
_MIDDLE = ("Văn", "Thị", "Hữu", "Đức", "Ngọc", "Minh", "Thanh", "Quang", "Thu")
_GIVEN = ("An", "Bình", "Cường", "Dung", "Giang", "Hà", "Hùng", "Lan", "Linh", "Mai", "Nam", "Phúc",
          "Quyên", "Sơn", "Tâm", "Thảo", "Trang", "Tuấn", "Vy", "Xuân", "Điểu", "Niê", "Byă")
_ASCII = str.maketrans("àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ'",
                       "aaaaaaaaaaaaaaaaaeeeeeeeeeeeiiiiiooooooooooooooooouuuuuuuuuuuyyyyyd ")


@dataclass(frozen=True)
class _Lifecycle:
    record: dict  # fields that never change
    received_at: datetime
    ended_at: datetime | None


def _fmt(moment: datetime | None) -> str | None:
    return moment.strftime(PORTAL_DATETIME_FORMAT) if moment else None


def add_working_days(start: datetime, days: int) -> datetime:
    """Due date: ``days`` working days after ``start`` (weekends skipped; holidays come in #5)."""
    current = start
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            remaining -= 1
    return datetime.combine(current.date(), time(17, 0))


def _applicant(rng: random.Random) -> dict:
    family, middle, given = rng.choice(_FAMILY), rng.choice(_MIDDLE), rng.choice(_GIVEN)
    name = f"{family} {middle} {given}".replace("' ", "'")
    # CCCD: province of birth (3 digits), century+sex digit, year of birth (2), 6 random digits.
    born = rng.randint(1950, 2006)
    century_sex = (0 if born < 2000 else 2) + rng.randint(0, 1)
    citizen_id = f"066{century_sex}{born % 100:02d}{rng.randint(0, 999_999):06d}"
    phone = f"0{rng.choice('3579')}{rng.randint(0, 99_999_999):08d}"
    email = None
    if rng.random() < 0.4:
        email = f"{given.translate(_ASCII).lower().strip()}{rng.randint(1, 9999)}@gmail.com"
    return {"ChuHoSo": name, "SoGiayToChuHoSo": citizen_id, "SoDienThoai": phone, "Email": email,
            "LoaiDoiTuong": 1}


def _dossiers_received(seed: int, unit: UnitProfile, day: date,
                       procedures: Sequence[Procedure]) -> list[_Lifecycle]:
    rng = random.Random(f"{seed}:{unit.code}:{day.isoformat()}")
    weekday = day.weekday()
    mean = unit.daily_dossiers if weekday < 5 else (unit.daily_dossiers // 4 if weekday == 5 else 0)
    count = rng.randint(int(mean * 0.6), int(mean * 1.4)) if mean else 0
    lifecycles = []
    for counter in range(1, count + 1):
        procedure = rng.choice(procedures)
        received_at = datetime.combine(day, time(7, 30)) + timedelta(minutes=rng.randint(0, 540))
        online = rng.random() < unit.online_share
        channel = 2 if online else (3 if rng.random() < 0.03 else 1)
        submitted_at = received_at - timedelta(minutes=rng.randint(5, 600) if online else 0)
        due_at = add_working_days(received_at, procedure.working_days)
        outcome = rng.random()
        if outcome < unit.on_time_share:
            span = (due_at - received_at).total_seconds()
            ended_at = received_at + timedelta(seconds=rng.uniform(0.05, 1.0) * span)
        elif outcome < unit.on_time_share + (1 - unit.on_time_share) * 0.7:
            ended_at = due_at + timedelta(hours=rng.randint(2, 72))
        else:
            ended_at = None  # still being processed beyond the simulated window
        record = {
            "MaHoSo": f"{unit.code}-{day:%y%m%d}-{counter:04d}",
            "MaTTHC": procedure.code,
            "TenTTHC": procedure.name,
            "MaLinhVuc": procedure.field_code,
            "TenLinhVuc": procedure.field_name,
            "MaDonViTiepNhan": unit.code,
            "KenhThucHien": channel,
            "NgayNopHoSo": _fmt(submitted_at),
            "NgayTiepNhan": _fmt(received_at),
            "NgayHenTra": _fmt(due_at),
            "NgayTuChoi": None,
            **_applicant(rng),
        }
        lifecycles.append(_Lifecycle(record, received_at, ended_at))
    return lifecycles


def _version_at_end_of(lifecycle: _Lifecycle, day: date) -> dict:
    ended = lifecycle.ended_at is not None and lifecycle.ended_at.date() <= day
    return {
        **lifecycle.record,
        "TrangThaiHoSo": 10 if ended else 4,
        "NgayKetThucXuLy": _fmt(lifecycle.ended_at) if ended else None,
        "NgayTra": _fmt(lifecycle.ended_at + timedelta(minutes=30)) if ended else None,
    }


def dossier_changes(seed: int, units: Sequence[UnitProfile], day: date,
                    procedures: Sequence[Procedure] = PROCEDURES) -> Iterator[dict]:
    """The dossier extract of ``day``: every dossier created or changed that day."""
    for unit in units:
        for back in range(MAX_LIFETIME_DAYS, -1, -1):
            received_day = day - timedelta(days=back)
            for lifecycle in _dossiers_received(seed, unit, received_day, procedures):
                ended_today = lifecycle.ended_at is not None and lifecycle.ended_at.date() == day
                if back == 0 or ended_today:
                    yield _version_at_end_of(lifecycle, day)


def unit_catalogue(units: Sequence[UnitProfile]) -> Iterator[dict]:
    for unit in units:
        yield {
            "MaDonVi": unit.code,
            "TenDonVi": unit.name,
            "LoaiDonVi": unit.kind,
            "MaDonViCha": unit.parent_code,
            "MaThongKe": unit.statistical_code,
        }


def extract(entity: str, seed: int, units: Sequence[UnitProfile], day: date,
            procedures: Sequence[Procedure] = PROCEDURES) -> list[dict]:
    if entity == "dossiers":
        return list(dossier_changes(seed, units, day, procedures))
    if entity == "units":
        return list(unit_catalogue(units))
    raise ValueError(f"The simulator does not serve entity {entity!r}")
