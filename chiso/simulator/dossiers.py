"""Dossiers, their process log and their ratings, generated a unit-month at a time.

Every dossier's whole life (procedure, channel, due date, supplement, end, rating…) is drawn when the
block of its unit and month of reception is built, vectorised with numpy and seeded by (seed, unit,
year, month). The extract of day D is then the dossiers with an event on D, in their state at the end
of D: a change feed in which a dossier reappears each time it changes. Rows are yielded unit by unit,
so a day of any size streams in flat memory.

Rates follow the unit's behaviour exactly over any period within a year (see behaviour.py): each
day's quota of online dossiers, on-time dossiers, paid fees… is the difference of the rounded
cumulative expectation since 1 January, and the quota is spread evenly over the day's dossiers.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

import numpy as np
from faker.providers.address.vi_VN import Provider as _Address
from faker.providers.person.vi_VN import Provider as _Person

from chiso.contract.model import PORTAL_DATETIME_FORMAT
from chiso.simulator.behaviour import Schedule
from chiso.simulator.world import Procedure, Unit, World

# Weekday volume factors, Monday first: Saturday mornings only, closed on Sunday.
WEEKDAY_FACTOR = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.25, 0.0])
# Every event of a dossier happens within this many days of its reception.
MAX_LIFETIME_DAYS = 45
RATING_SHARE = 0.3  # of dossiers: rated by the applicant when it ends
STUCK_SHARE_OF_LATE = 0.1  # of late dossiers: still open long after their due date
MINUTE = np.timedelta64(1, "m")

_LAST = tuple(_Person.last_names) + ("H'", "Y", "Ksor", "Rcom", "Siu")
_MIDDLE = tuple(_Person.middle_names)
_GIVEN_MALE, _GIVEN_FEMALE = tuple(_Person.first_names_male), tuple(_Person.first_names_female)
_STREETS = tuple(_Address.streets)


def _fmt(moment: np.datetime64 | None) -> str | None:
    if moment is None or np.isnat(moment):
        return None
    return moment.astype("datetime64[s]").astype(datetime).strftime(PORTAL_DATETIME_FORMAT)


# ----------------------------------------------------------------------------- procedure sequences

@lru_cache(maxsize=16)
def procedure_sequence(procedures: tuple[Procedure, ...], length: int = 200_000) -> np.ndarray:
    """Indices into ``procedures`` in Webster (Sainte-Laguë) order of their weights.

    Any run of consecutive dossiers holds each procedure within one of its expected share, so counts
    derived from procedures (dossiers with a fee, with a written result) are exact per day too.
    """
    total = sum(p.weight for p in procedures)
    heap = [(0.5 / (p.weight / total), k) for k, p in enumerate(procedures)]
    heapq.heapify(heap)
    taken = [0] * len(procedures)
    sequence = np.empty(length, dtype=np.int16)
    for position in range(length):
        _, k = heapq.heappop(heap)
        sequence[position] = k
        taken[k] += 1
        heapq.heappush(heap, ((taken[k] + 0.5) / (procedures[k].weight / total), k))
    return sequence


# ----------------------------------------------------------------------------- unit-years

@dataclass
class UnitYear:
    """Daily volumes of one unit in one year and the cumulative populations its quotas need."""

    unit: Unit
    year: int
    days: np.ndarray  # datetime64[D], every day of the year
    received: np.ndarray  # dossiers received per day
    cum_received: np.ndarray  # received through each day
    cum_fee: np.ndarray  # dossiers with a fee received through each day
    cum_rated: np.ndarray  # rated dossiers through each day
    procedures: tuple[Procedure, ...]

    def _expected(self, share: Schedule, cum_population: np.ndarray) -> np.ndarray:
        if len(share.points) == 1:
            return share.points[0][1] * cum_population
        population = np.diff(cum_population, prepend=0)
        values = np.array([share.at(day.astype(date)) for day in self.days])
        return np.cumsum(population * values)

    @lru_cache(maxsize=32)  # noqa: B019 (per-instance cache is intended: instances are cached too)
    def quotas(self, share_name: str, population: str) -> np.ndarray:
        """How many of each day's population get the attribute, so that running totals are exact."""
        share = getattr(self.unit.behaviour, share_name)
        cum_population = {"received": self.cum_received, "fee": self.cum_fee, "rated": self.cum_rated}[population]
        expected = np.rint(self._expected(share, cum_population)).astype(np.int64)
        return np.diff(expected, prepend=0).clip(min=0)

    def __hash__(self):
        return id(self)


@lru_cache(maxsize=4096)
def unit_year(seed: int, world: World, unit_code: str, year: int) -> UnitYear:
    unit = world.by_code[unit_code]
    days = np.arange(np.datetime64(f"{year}-01-01"), np.datetime64(f"{year + 1}-01-01"))
    weekday = (days.astype("datetime64[D]").view("int64") - 4) % 7  # 1970-01-01 was a Thursday
    first, last = np.datetime64(unit.valid_from), np.datetime64(unit.valid_to or date(9999, 12, 31))
    active = (days >= first) & (days <= last)
    rng = np.random.default_rng([seed, world.unit_index[unit_code], year, 0])
    received = rng.poisson(unit.daily_dossiers * WEEKDAY_FACTOR[weekday]) * active
    cum_received = np.cumsum(received)
    procedures = tuple(world.procedures_for(unit, date(year, 7, 1)) or world.procedures)
    sequence = procedure_sequence(procedures)
    has_fee = np.array([p.fee > 0 for p in procedures])[sequence]
    fee_prefix = np.concatenate([[0], np.cumsum(has_fee)])
    cum_fee = fee_prefix[cum_received % len(sequence)] + (cum_received // len(sequence)) * fee_prefix[-1]
    cum_rated = np.rint(RATING_SHARE * cum_received).astype(np.int64)
    return UnitYear(unit, year, days, received, cum_received, cum_fee, cum_rated, procedures)


# ----------------------------------------------------------------------------- unit-month blocks

def _spread_evenly(position: np.ndarray, counts: np.ndarray, quota: np.ndarray, offset: float) -> np.ndarray:
    """Select exactly quota[i] of the counts[i] items of day i, evenly spaced (systematic sampling).

    ``position`` is each item's index within its day; items are laid out day after day.
    """
    step = np.repeat(np.where(counts > 0, quota / np.maximum(counts, 1), 0.0), counts)
    return np.floor((position + 1) * step + offset) - np.floor(position * step + offset) >= 1


@dataclass
class Block:
    """Every dossier a unit received in one month, with its whole life."""

    unit: Unit
    year: int
    month: int
    procedures: tuple[Procedure, ...]
    counter: np.ndarray  # daily counter in MaHoSo (1-based)
    procedure: np.ndarray  # index into procedures
    received_at: np.ndarray  # datetime64[m]
    submitted_at: np.ndarray
    login_at: np.ndarray  # NaT for direct dossiers
    due_at: np.ndarray
    supplement_at: np.ndarray  # NaT without a supplement request
    supplement_back_at: np.ndarray
    new_due_at: np.ndarray
    ended_at: np.ndarray  # NaT while open
    online: np.ndarray
    paid: np.ndarray  # 0 none, 1 national portal, 2 province gateway
    digitised: np.ndarray
    reused: np.ndarray
    personal_store: np.ndarray
    vneid: np.ndarray
    synced: np.ndarray
    e_result: np.ndarray
    rated: np.ndarray
    satisfied: np.ndarray
    person: np.ndarray  # (n, 8) integers that make up the applicant

    def __len__(self) -> int:
        return len(self.counter)

    def events_on(self, day: date) -> np.ndarray:
        """Indices of dossiers with a change on ``day``."""
        start = np.datetime64(day, "m")
        end = start + np.timedelta64(1, "D")
        hits = np.zeros(len(self), dtype=bool)
        for moments in (self.received_at, self.supplement_at, self.supplement_back_at, self.ended_at):
            hits |= (moments >= start) & (moments < end)
        return np.flatnonzero(hits)


@lru_cache(maxsize=2048)
def block(seed: int, world: World, unit_code: str, year: int, month: int) -> Block:
    year_data = unit_year(seed, world, unit_code, year)
    unit, procedures = year_data.unit, year_data.procedures
    first = np.datetime64(f"{year}-{month:02d}-01")
    last = first.astype("datetime64[M]") + 1
    day_index = np.arange((first - year_data.days[0]).astype(int), (last.astype("datetime64[D]")
                                                                     - year_data.days[0]).astype(int))
    counts = year_data.received[day_index]
    n = int(counts.sum())
    day_of = np.repeat(day_index, counts)  # day of year of each dossier
    position = np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)  # index within its day
    rng = np.random.default_rng([seed, world.unit_index[unit_code], year, month])
    behaviour = unit.behaviour
    def share(name: str, population: str = "received", within: np.ndarray | None = None) -> np.ndarray:
        """The dossiers that get an attribute: each day's quota, spread evenly over the day's
        dossiers, or over those of them ``within`` a sub-population (e.g. the ones with a fee)."""
        quota = year_data.quotas(name, population)[day_index]
        if within is None:
            return _spread_evenly(position, counts, quota, rng.random())
        selected = np.zeros(n, dtype=bool)
        members = np.flatnonzero(within)
        day_of_member = np.searchsorted(np.cumsum(counts), members, side="right")
        sub_counts = np.bincount(day_of_member, minlength=len(counts))
        sub_position = np.arange(len(members)) - np.repeat(np.cumsum(sub_counts) - sub_counts, sub_counts)
        selected[members] = _spread_evenly(sub_position, sub_counts, np.minimum(quota, sub_counts), rng.random())
        return selected

    def per_dossier(schedule: Schedule) -> np.ndarray:
        if len(schedule.points) == 1:
            return np.full(n, schedule.points[0][1])
        daily = np.array([schedule.at(d.astype(date)) for d in year_data.days[day_index]])
        return daily[day_of - day_index[0]]

    sequence = procedure_sequence(procedures)
    global_index = (year_data.cum_received[day_of] - counts.repeat(counts) + position) if n else position
    procedure = sequence[global_index % len(sequence)]
    fee = np.array([p.fee for p in procedures])[procedure]
    working_days = np.array([p.working_days for p in procedures])[procedure]

    day_start = (year_data.days[0] + day_of).astype("datetime64[m]")
    received_at = day_start + (450 + rng.integers(0, 540, n)) * MINUTE
    online = share("online")
    submitted_at = received_at - np.where(online, rng.integers(5, 600, n), 0) * MINUTE
    login_minutes = np.maximum(1, rng.exponential(per_dossier(behaviour.login_minutes))).astype(int)
    login_at = np.where(online, submitted_at - login_minutes * MINUTE, np.datetime64("NaT"))
    due_day = np.busday_offset(received_at.astype("datetime64[D]"), working_days, roll="forward")
    due_at = due_day.astype("datetime64[m]") + 17 * 60 * MINUTE

    supplement = share("supplement")
    supplement_at = np.where(supplement, np.busday_offset(received_at.astype("datetime64[D]"), 1, roll="forward")
                             .astype("datetime64[m]") + 10 * 60 * MINUTE, np.datetime64("NaT"))
    supplement_back_at = np.where(supplement, supplement_at + rng.integers(1, 4, n) * 24 * 60 * MINUTE,
                                  np.datetime64("NaT"))
    new_due_at = np.where(supplement, np.busday_offset(due_day, 3, roll="forward").astype("datetime64[m]")
                          + 17 * 60 * MINUTE, np.datetime64("NaT"))
    effective_due = np.where(supplement, new_due_at, due_at)
    earliest_end = np.where(supplement, supplement_back_at + 60 * MINUTE, received_at + 30 * MINUTE)

    on_time = share("on_time")
    span = (effective_due - earliest_end).astype(int)
    early_end = earliest_end + (rng.uniform(0.05, 0.95, n) * np.maximum(span, 0)).astype(int) * MINUTE
    late_end = effective_due + rng.integers(120, 72 * 60, n) * MINUTE
    stuck = ~on_time & (rng.random(n) < STUCK_SHARE_OF_LATE)
    ended_at = np.where(on_time, np.minimum(early_end, effective_due), late_end)
    ended_at = np.where(stuck, np.datetime64("NaT"), ended_at)

    paid = share("paid_online", "fee", within=fee > 0)
    rated = _spread_evenly(position, counts, np.diff(year_data.cum_rated, prepend=0)[day_index], rng.random())
    satisfied = share("satisfied", "rated", within=rated)
    digitised = share("digitised")
    reused = share("reused", within=digitised)  # a re-used component is a digitised one
    person = np.column_stack([
        rng.integers(0, len(_LAST), n), rng.integers(0, len(_MIDDLE), n), rng.integers(0, 2, n),
        rng.integers(0, 10_000, n), rng.integers(1950, 2007, n), rng.integers(0, 1_000_000, n),
        rng.integers(0, 100_000_000, n), rng.integers(0, len(_STREETS), n),
    ]) if n else np.zeros((0, 8), dtype=np.int64)
    counter = position + 1
    return Block(
        unit, year, month, procedures, counter, procedure, received_at, submitted_at, login_at, due_at,
        supplement_at, supplement_back_at, new_due_at, ended_at, online,
        np.where(paid, np.where(rng.random(n) < 0.3, 1, 2), 0), digitised, reused,
        share("personal_store"), share("vneid"), share("synced"), share("e_result"), rated, satisfied, person,
    )


# ----------------------------------------------------------------------------- rows of a day

def _blocks_touching(seed: int, world: World, unit: Unit, day: date) -> Iterator[Block]:
    """The blocks of the months in which a dossier with an event on ``day`` may have been received."""
    first = day - timedelta(days=MAX_LIFETIME_DAYS)
    month = date(first.year, first.month, 1)
    while month <= day:
        if unit.active_on(month) or unit.active_on(min(_month_end(month), day)) or \
                (unit.valid_from <= _month_end(month) and (unit.valid_to is None or unit.valid_to >= month)):
            yield block(seed, world, unit.code, month.year, month.month)
        month = _month_end(month) + timedelta(days=1)


def _month_end(month_start: date) -> date:
    following = date(month_start.year + month_start.month // 12, month_start.month % 12 + 1, 1)
    return following - timedelta(days=1)


def _dossier_code(b: Block, i: int) -> str:
    received = b.received_at[i].astype(datetime)
    return f"{b.unit.code}-{received:%y%m%d}-{int(b.counter[i]):04d}"


def _at(values: np.ndarray, i: int, until: np.datetime64) -> np.datetime64 | None:
    """values[i] if it happened before ``until`` (end of the extract's day), else None."""
    moment = values[i]
    return None if np.isnat(moment) or moment >= until else moment


def _applicant(b: Block, i: int) -> dict:
    last, middle, female, given, born, serial, phone, street = (int(v) for v in b.person[i])
    given_names = _GIVEN_FEMALE if female else _GIVEN_MALE
    given_name = given_names[given % len(given_names)]
    middle_name = "Thị" if female and middle % 3 == 0 else _MIDDLE[middle]
    name = f"{_LAST[last]} {middle_name} {given_name}".replace("' ", "'")
    province = b.unit.code.rsplit(".", 1)[-1]
    century_sex = (0 if born < 2000 else 2) + female
    birth_province = (sum(map(ord, province)) % 96) + 1
    return {
        "ChuHoSo": name,
        "SoGiayToChuHoSo": f"{birth_province:03d}{century_sex}{born % 100:02d}{serial:06d}",
        "SoDienThoai": f"0{'3579'[phone % 4]}{phone:08d}",
        "Email": (f"{_ascii(given_name)}{_ascii(_LAST[last])}{serial % 1000}@gmail.com" if serial % 5 < 2 else None),
        "DiaChiChuHoSo": f"{serial % 300 + 1} {_STREETS[street]}, {b.unit.name.removeprefix('UBND ')}",
        "LoaiDoiTuong": 1 if b.procedures[b.procedure[i]].individuals else 2,
    }


_ASCII = str.maketrans("àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ'",
                       "aaaaaaaaaaaaaaaaaeeeeeeeeeeeiiiiiooooooooooooooooouuuuuuuuuuuyyyyyd ")


def _ascii(text: str) -> str:
    return text.lower().translate(_ASCII).replace(" ", "")


def _documents(b: Block, i: int) -> list[dict]:
    procedure = b.procedures[b.procedure[i]]
    count = 1 + int(b.person[i, 5]) % 3
    documents = []
    for k in range(count):
        documents.append({
            "MaGiayTo": f"{procedure.code}.GT{k + 1}",
            "TenGiayTo": ("Tờ khai", "Giấy tờ tùy thân", "Giấy tờ chứng minh")[k],
            "DuocSoHoa": int(bool(b.digitised[i])),
            "DuocTaiSuDung": int(bool(b.reused[i]) and k == 0),
            "DuocLayTuKhoDMQG": int(bool(b.personal_store[i]) and k == count - 1),
        })
    return documents


def dossier_version(b: Block, i: int, day: date) -> dict:
    """Dossier ``i`` of block ``b`` as it stood at the end of ``day``."""
    until = np.datetime64(day + timedelta(days=1), "m")
    procedure = b.procedures[b.procedure[i]]
    supplement_at = _at(b.supplement_at, i, until)
    back_at = _at(b.supplement_back_at, i, until)
    ended_at = _at(b.ended_at, i, until)
    if ended_at is not None:
        status, changed = 10, ended_at + 30 * MINUTE
    elif supplement_at is not None and back_at is None:
        status, changed = 5, supplement_at
    else:
        status, changed = 4, back_at if back_at is not None else b.received_at[i]
    supplements = []
    if supplement_at is not None:
        supplements.append({"NgayBoSung": _fmt(supplement_at), "NgayTiepNhanBoSung": _fmt(back_at),
                            "NgayHenTraMoi": _fmt(b.new_due_at[i])})
    results = []
    if ended_at is not None:
        electronic = bool(b.e_result[i]) and procedure.written_result
        results.append({
            "TenGiayTo": f"Kết quả {procedure.name.lower()}",
            "DuongDanTepTinKetQua": (f"https://dichvucong.gov.vn/ketqua/{_dossier_code(b, i)}.pdf"
                                     if electronic else None),
            "DayLenKhoDMQG": int(electronic and bool(b.personal_store[i])),
        })
    online = bool(b.online[i])
    return {
        "MaHoSo": _dossier_code(b, i),
        "MaTTHC": procedure.code,
        "TenTTHC": procedure.name,
        "MaLinhVuc": procedure.field_code,
        "TenLinhVuc": procedure.field_name,
        "MaDonViTiepNhan": b.unit.code,
        "DonViXuLy": b.unit.code,
        "KenhThucHien": 2 if online else (3 if int(b.person[i, 6]) % 40 == 0 else None),
        "NgayDangNhap": _fmt(b.login_at[i]) if online else None,
        "NgayNopHoSo": _fmt(b.submitted_at[i]),
        "NgayTiepNhan": _fmt(b.received_at[i]),
        "NgayHenTra": _fmt(b.due_at[i]),
        "NgayKetThucXuLy": _fmt(ended_at),
        "NgayTra": _fmt(ended_at + 30 * MINUTE) if ended_at is not None else None,
        "NgayTuChoi": None,
        "NgayCapNhat": _fmt(changed),
        "TrangThaiHoSo": status,
        **_applicant(b, i),
        "DanhSachLePhi": ([{"MaPhiLePhi": f"LP.{procedure.code}", "TenPhiLePhi": f"Lệ phí {procedure.name.lower()}",
                            "Gia": procedure.fee}] if procedure.fee else []),
        "DuocThanhToanTrucTuyen": int(b.paid[i]) if procedure.fee else None,
        "TaiLieuNop": _documents(b, i),
        "HoSoCoThanhPhanSoHoa": int(bool(b.digitised[i])),
        "TaiKhoanDuocXacThucVoiVNeID": int(bool(b.vneid[i]) and online),
        "DanhSachGiayToKetQua": results,
        "DanhSachHoSoBoSung": supplements,
        "DongBoDVCQG": int(bool(b.synced[i])),
    }


def process_steps(b: Block, i: int) -> list[dict]:
    """Every step of dossier ``i``'s life, numbered; the extract of a day keeps that day's steps."""
    code = _dossier_code(b, i)
    moments = [(b.received_at[i], 2, "Tiếp nhận hồ sơ"), (b.received_at[i] + 5 * MINUTE, 4, "Chuyển xử lý")]
    if not np.isnat(b.supplement_at[i]):
        moments.append((b.supplement_at[i], 5, "Yêu cầu bổ sung hồ sơ"))
        moments.append((b.supplement_back_at[i], 4, "Tiếp nhận hồ sơ bổ sung"))
    if not np.isnat(b.ended_at[i]):
        moments.append((b.ended_at[i], 9, "Hoàn thành xử lý"))
        moments.append((b.ended_at[i] + 30 * MINUTE, 10, "Trả kết quả"))
    officials = ("Cán bộ một cửa", "Công chức chuyên môn", "Lãnh đạo UBND")
    return [{"MaHoSo": code, "STT": step, "DonViXuLy": b.unit.code, "NguoiXuLy": officials[min(step - 1, 2) % 3],
             "ThoiDiemXuLy": _fmt(moment), "TrangThai": status, "NoiDungXuLy": text}
            for step, (moment, status, text) in enumerate(moments, start=1)]


def rating(b: Block, i: int) -> dict | None:
    if not b.rated[i] or np.isnat(b.ended_at[i]):
        return None
    level = 3 if not b.satisfied[i] else (1 if int(b.person[i, 3]) % 10 < 7 else 2)
    return {"MaHoSo": _dossier_code(b, i), "MaDonVi": b.unit.code, "NgayDanhGia": _fmt(b.ended_at[i] + 45 * MINUTE),
            "MucDoHaiLong": level, "KenhDanhGia": 2 if b.online[i] else 1,
            "YKien": None if level != 3 else "Thời gian giải quyết còn chậm"}


def _same_day(text: str | None, day: date) -> bool:
    return text is not None and text[:8] == day.strftime("%Y%m%d")


def dossier_rows(seed: int, world: World, day: date) -> Iterator[dict]:
    for unit in world.units:
        if unit.daily_dossiers <= 0:
            continue
        for b in _blocks_touching(seed, world, unit, day):
            for i in b.events_on(day):
                yield dossier_version(b, int(i), day)


def process_log_rows(seed: int, world: World, day: date) -> Iterator[dict]:
    for unit in world.units:
        if unit.daily_dossiers <= 0:
            continue
        for b in _blocks_touching(seed, world, unit, day):
            for i in b.events_on(day):
                yield from (s for s in process_steps(b, int(i)) if _same_day(s["ThoiDiemXuLy"], day))


def rating_rows(seed: int, world: World, day: date) -> Iterator[dict]:
    for unit in world.units:
        if unit.daily_dossiers <= 0:
            continue
        for b in _blocks_touching(seed, world, unit, day):
            for i in b.events_on(day):
                row = rating(b, int(i))
                if row is not None and _same_day(row["NgayDanhGia"], day):
                    yield row
