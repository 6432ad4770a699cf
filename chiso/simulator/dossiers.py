"""Dossiers, their process log and their ratings, generated a province-month at a time.

Every dossier's whole life (procedure, channel, due date, supplement, end, rating…) is drawn when the
block of its province and month of reception is built, vectorised with numpy over all the province's
units and seeded by (seed, province, year, month). The extract of day D is then the dossiers with an
event on D, in their state at the end of D: a change feed in which a dossier reappears each time it
changes. Rows are yielded province by province and unit by unit, in flat memory.

Rates follow each unit's behaviour exactly over any period within a year (see behaviour.py): each
day's quota of online dossiers, on-time dossiers, paid fees… is the difference of the rounded
cumulative expectation since 1 January, spread evenly over the day's dossiers.
"""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property, lru_cache

import numpy as np
from faker.providers.address.vi_VN import Provider as _Address
from faker.providers.person.vi_VN import Provider as _Person

from chiso.simulator.world import Procedure, Unit, World

# Weekday volume factors, Monday first: Saturday mornings only, closed on Sunday.
WEEKDAY_FACTOR = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.25, 0.0])
# Every event of a dossier happens within this many days of its reception.
MAX_LIFETIME_DAYS = 45
RATING_SHARE = 0.3  # of dossiers: rated by the applicant when it ends
STUCK_SHARE_OF_LATE = 0.1  # of late dossiers: still open long after their due date
MINUTE = np.timedelta64(1, "m")
NAT = np.datetime64("NaT", "m")
SEQUENCE_LENGTH = 200_000

_LAST = tuple(_Person.last_names) + ("H'", "Y", "Ksor", "Rcom", "Siu")
_MIDDLE = tuple(_Person.middle_names)
_FAMILY = tuple(_Person.last_names)  # officials' family names
_GIVEN_MALE, _GIVEN_FEMALE = tuple(_Person.first_names_male), tuple(_Person.first_names_female)
_STREETS = tuple(_Address.streets)
_ASCII = str.maketrans("àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ'",
                       "aaaaaaaaaaaaaaaaaeeeeeeeeeeeiiiiiooooooooooooooooouuuuuuuuuuuyyyyyd ")
# Officials per unit: the one-stop desk (bộ phận một cửa) receives and returns, each field of procedure
# (lĩnh vực) has one or two specialists who process its dossiers.
ONE_STOP_OFFICIALS = 2


# ----------------------------------------------------------------------------- procedure sequences

@dataclass(frozen=True)
class ProcedureMix:
    """A unit's procedures in Webster (Sainte-Laguë) order of their weights.

    Any run of consecutive dossiers holds each procedure within one of its expected share, so counts
    derived from procedures (dossiers with a fee) are exact per day, and quotas over them are too.
    """

    procedures: tuple[Procedure, ...]
    sequence: np.ndarray  # indices into procedures
    fee_prefix: np.ndarray  # dossiers with a fee among the first k of the sequence
    fees: np.ndarray  # fee of each procedure
    working_days: np.ndarray  # statutory working days of each procedure

    def fee_count(self, first_k: np.ndarray) -> np.ndarray:
        laps, rest = np.divmod(first_k, len(self.sequence))
        return laps * self.fee_prefix[-1] + self.fee_prefix[rest]


@lru_cache(maxsize=16)
def procedure_mix(procedures: tuple[Procedure, ...]) -> ProcedureMix:
    total = sum(p.weight for p in procedures)
    heap = [(0.5 / (p.weight / total), k) for k, p in enumerate(procedures)]
    heapq.heapify(heap)
    taken = [0] * len(procedures)
    sequence = np.empty(SEQUENCE_LENGTH, dtype=np.int16)
    for position in range(SEQUENCE_LENGTH):
        _, k = heapq.heappop(heap)
        sequence[position] = k
        taken[k] += 1
        heapq.heappush(heap, ((taken[k] + 0.5) / (procedures[k].weight / total), k))
    fees = np.array([p.fee for p in procedures])
    return ProcedureMix(procedures, sequence, np.concatenate([[0], np.cumsum(fees[sequence] > 0)]), fees,
                        np.array([p.working_days for p in procedures]))


# ----------------------------------------------------------------------------- province-years

class GroupYear:
    """Daily volumes of a province's units over a year ([unit, day] arrays) and their quotas."""

    def __init__(self, seed: int, world: World, group: str, year: int):
        self.units = world.groups[group]
        self.year = year
        self.days = np.arange(np.datetime64(f"{year}-01-01"), np.datetime64(f"{year + 1}-01-01"))
        weekday = (self.days.view("int64") - 4) % 7  # 1970-01-01 was a Thursday
        first = np.array([np.datetime64(u.valid_from) for u in self.units])[:, None]
        last = np.array([np.datetime64(u.valid_to or date(9999, 12, 31)) for u in self.units])[:, None]
        active = (self.days >= first) & (self.days <= last)
        means = np.array([u.daily_dossiers for u in self.units])[:, None] * WEEKDAY_FACTOR[weekday]
        rng = np.random.default_rng([seed, world.group_index[group], year, 0])
        self.received = rng.poisson(means) * active
        self.cum_received = np.cumsum(self.received, axis=1)
        self.mixes = [procedure_mix(tuple(world.procedures_for(u, date(year, 7, 1)) or world.procedures))
                      for u in self.units]
        self.cum_fee = np.stack([mix.fee_count(row) for mix, row in zip(self.mixes, self.cum_received)])
        self.cum_rated = np.rint(RATING_SHARE * self.cum_received).astype(np.int64)
        self._quotas: dict[tuple[str, str], np.ndarray] = {}

    def quotas(self, share_name: str, population: str) -> np.ndarray:
        """[unit, day]: how many of the day's population get the attribute (running totals exact)."""
        key = (share_name, population)
        if key not in self._quotas:
            cumulative = {"received": self.cum_received, "fee": self.cum_fee, "rated": self.cum_rated}[population]
            expected = np.empty(cumulative.shape)
            for u, unit in enumerate(self.units):
                schedule = getattr(unit.behaviour, share_name)
                if len(schedule.points) == 1:
                    expected[u] = schedule.points[0][1] * cumulative[u]
                else:
                    values = np.array([schedule.at(day) for day in self.days.astype(date)])
                    expected[u] = np.cumsum(np.diff(cumulative[u], prepend=0) * values)
            self._quotas[key] = np.diff(np.rint(expected).astype(np.int64), axis=1, prepend=0).clip(min=0) \
                .astype(np.int32)
        return self._quotas[key]


@lru_cache(maxsize=80)
def group_year(seed: int, world: World, group: str, year: int) -> GroupYear:
    return GroupYear(seed, world, group, year)


# ----------------------------------------------------------------------------- province-month blocks

def _spread_evenly(position: np.ndarray, size: np.ndarray, quota: np.ndarray, offset: float) -> np.ndarray:
    """Select exactly ``quota`` of the ``size`` items of each (unit, day) group, evenly spaced.

    All three arrays are per item: its index within its group, its group's size and quota.
    """
    step = quota / np.maximum(size, 1)
    return np.floor((position + 1) * step + offset) - np.floor(position * step + offset) >= 1


def _group_positions(group_id: np.ndarray, member: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Index of each item within its group (items sorted by group) and its group's size,
    counting only ``member`` items when given."""
    weights = np.ones(len(group_id), dtype=np.int64) if member is None else member.astype(np.int64)
    running = np.cumsum(weights) - weights
    starts = np.flatnonzero(np.r_[True, group_id[1:] != group_id[:-1]]) if len(group_id) else np.zeros(0, int)
    group_index = np.cumsum(np.r_[False, group_id[1:] != group_id[:-1]]) if len(group_id) else group_id
    first_running = running[starts][group_index]
    totals = np.add.reduceat(weights, starts) if len(group_id) else weights
    return running - first_running, totals[group_index]


class Block:
    """Every dossier a province's units received in one month, with its whole life."""

    def __init__(self, seed: int, world: World, group: str, year: int, month: int):
        self.world = world
        self.seed = seed
        gy = group_year(seed, world, group, year)
        self.units, self.mixes = gy.units, gy.mixes
        month_start = np.datetime64(f"{year}-{month:02d}-01")
        month_end = (np.datetime64(f"{year}-{month:02d}", "M") + 1).astype("datetime64[D]")
        days = np.arange((month_start - gy.days[0]).astype(int), (month_end - gy.days[0]).astype(int))
        counts = gy.received[:, days]  # [unit, day of month]
        n = int(counts.sum())
        self.n = n
        unit_grid, day_grid = np.meshgrid(np.arange(len(self.units)), days, indexing="ij")
        self.unit_of = np.repeat(unit_grid.ravel(), counts.ravel())
        self.day_of = np.repeat(day_grid.ravel(), counts.ravel())  # day of year
        cell = self.unit_of * 400 + self.day_of  # (unit, day) group of each dossier
        position, size = _group_positions(cell)
        self.counter = position + 1
        rng = np.random.default_rng([seed, world.group_index[group], year, month])

        def share(name: str, population: str = "received", within: np.ndarray | None = None) -> np.ndarray:
            quota = gy.quotas(name, population)[self.unit_of, self.day_of]
            offset = rng.random()
            if within is None:
                return _spread_evenly(position, size, quota, offset)
            sub_position, sub_size = _group_positions(cell, within)
            return within & _spread_evenly(sub_position, sub_size, np.minimum(quota, sub_size), offset)

        # Items are laid out unit by unit: each unit's items are one slice.
        bounds = np.searchsorted(self.unit_of, np.arange(len(self.units) + 1))
        unit_slices = [slice(bounds[u], bounds[u + 1]) for u in range(len(self.units))]

        def per_dossier(share_name: str) -> np.ndarray:
            schedules = [getattr(unit.behaviour, share_name) for unit in self.units]
            values = np.array([sc.points[0][1] if len(sc.points) == 1 else np.nan for sc in schedules])[self.unit_of]
            for u, schedule in enumerate(schedules):
                if len(schedule.points) > 1:
                    mine = unit_slices[u]
                    values[mine] = [schedule.at(d) for d in gy.days[self.day_of[mine]].astype(date)]
            return values

        # Procedure: the unit's Webster sequence, continued through the year.
        global_index = gy.cum_received[self.unit_of, self.day_of] - size + position
        self.procedure = np.empty(n, dtype=np.int16)
        self.fee = np.empty(n, dtype=np.int64)
        working_days = np.empty(n, dtype=np.int64)
        for u, mix in enumerate(self.mixes):
            mine = unit_slices[u]
            local = mix.sequence[global_index[mine] % len(mix.sequence)]
            self.procedure[mine] = local
            self.fee[mine] = mix.fees[local]
            working_days[mine] = mix.working_days[local]

        received_day = gy.days[self.day_of]
        self.received_at = received_day.astype("datetime64[m]") + (450 + rng.integers(0, 540, n)) * MINUTE
        self.online = share("online")
        self.submitted_at = self.received_at - np.where(self.online, rng.integers(5, 600, n), 0) * MINUTE
        login_minutes = np.maximum(1, rng.exponential(per_dossier("login_minutes"))).astype(np.int64)
        self.login_at = np.where(self.online, self.submitted_at - login_minutes * MINUTE, NAT)
        due_day = np.busday_offset(received_day, working_days, roll="forward")
        self.due_at = due_day.astype("datetime64[m]") + 17 * 60 * MINUTE

        supplement = share("supplement")
        asked = np.busday_offset(received_day, 1, roll="forward").astype("datetime64[m]") + 10 * 60 * MINUTE
        self.supplement_at = np.where(supplement, asked, NAT)
        self.supplement_back_at = np.where(supplement, asked + rng.integers(1, 4, n) * 24 * 60 * MINUTE, NAT)
        self.new_due_at = np.where(supplement, np.busday_offset(due_day, 3, roll="forward").astype("datetime64[m]")
                                   + 17 * 60 * MINUTE, NAT)
        effective_due = np.where(supplement, self.new_due_at, self.due_at)
        earliest_end = np.where(supplement, self.supplement_back_at + 60 * MINUTE, self.received_at + 30 * MINUTE)

        on_time = share("on_time")
        span = (effective_due - earliest_end).astype(np.int64)
        early_end = earliest_end + (rng.uniform(0.05, 0.95, n) * np.maximum(span, 0)).astype(np.int64) * MINUTE
        late_end = effective_due + rng.integers(120, 72 * 60, n) * MINUTE
        stuck = ~on_time & (rng.random(n) < STUCK_SHARE_OF_LATE)
        self.ended_at = np.where(stuck, NAT, np.where(on_time, np.minimum(early_end, effective_due), late_end))

        paid = share("paid_online", "fee", within=self.fee > 0)
        self.paid = np.where(paid, np.where(rng.random(n) < 0.3, 1, 2), 0)
        self.rated = _spread_evenly(position, size, np.diff(gy.cum_rated, axis=1, prepend=0)[self.unit_of, self.day_of],
                                    rng.random())
        self.satisfied = share("satisfied", "rated", within=self.rated)
        self.digitised = share("digitised")
        self.reused = share("reused", within=self.digitised)  # a re-used component is a digitised one
        self.personal_store = share("personal_store")
        self.vneid = share("vneid")
        self.synced = share("synced")
        self.e_result = share("e_result")
        self.person = rng.integers(0, 2**31, size=(n, 8))

    def events_on(self, day: date) -> np.ndarray:
        """Indices of dossiers with a change on ``day``, in (unit, reception) order."""
        start = np.datetime64(day, "m")
        end = start + np.timedelta64(1, "D")
        hits = np.zeros(self.n, dtype=bool)
        for moments in (self.received_at, self.supplement_at, self.supplement_back_at, self.ended_at):
            hits |= (moments >= start) & (moments < end)
        return np.flatnonzero(hits)


# Small: a national block is tens of MB; consecutive days of a small world still hit it.
@lru_cache(maxsize=24)
def block(seed: int, world: World, group: str, year: int, month: int) -> Block:
    return Block(seed, world, group, year, month)


def _months_touching(day: date) -> list[tuple[int, int]]:
    """Months in which a dossier with an event on ``day`` may have been received."""
    first = day - timedelta(days=MAX_LIFETIME_DAYS)
    months, cursor = [], (first.year, first.month)
    while cursor <= (day.year, day.month):
        months.append(cursor)
        cursor = (cursor[0] + cursor[1] // 12, cursor[1] % 12 + 1)
    return months


# ----------------------------------------------------------------------------- rows of a day

def _portal_times(values: np.ndarray) -> list[str | None]:
    """datetime64 values as the portal's yyyyMMddHHmmss text (None for NaT), vectorised."""
    seconds = values.astype("datetime64[s]")
    missing = np.isnat(seconds)
    seconds = np.where(missing, np.datetime64(0, "s"), seconds)
    days = seconds.astype("datetime64[D]")
    months = seconds.astype("datetime64[M]")
    year = months.astype(np.int64) // 12 + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (days - months.astype("datetime64[D]")).astype(np.int64) + 1
    second_of_day = (seconds - days.astype("datetime64[s]")).astype(np.int64)
    number = (((year * 100 + month) * 100 + day) * 100 + second_of_day // 3600) * 10_000 \
        + (second_of_day // 60 % 60) * 100 + second_of_day % 60
    text = number.astype("U14").tolist()
    if missing.any():
        return [None if gone else t for t, gone in zip(text, missing.tolist())]
    return text


class DayView:
    """The dossiers of one block with an event on one day, with everything rows need as lists."""

    def __init__(self, b: Block, day: date):
        self.block = b
        self.day = day
        self.index = b.events_on(day)
        idx = self.index
        until = np.datetime64(day + timedelta(days=1), "m")

        def before_end_of_day(values):
            picked = values[idx]
            return np.where(picked < until, picked, NAT)

        self.received = _portal_times(b.received_at[idx])
        self.received_plus5 = _portal_times(b.received_at[idx] + 5 * MINUTE)
        self.submitted = _portal_times(b.submitted_at[idx])
        self.login = _portal_times(b.login_at[idx])
        self.due = _portal_times(b.due_at[idx])
        self.new_due = _portal_times(b.new_due_at[idx])
        ended = before_end_of_day(b.ended_at)
        self.ended = _portal_times(ended)
        self.returned = _portal_times(ended + 30 * MINUTE)
        # Rated 45 minutes after the end, but on the same day: a rating is delivered with the day's extract
        # of the dossier's end (one after midnight would never be sent, yet the portal counts it).
        end_of_end_day = ended.astype("datetime64[D]").astype("datetime64[m]") + np.timedelta64(1439, "m")
        self.rated_at = _portal_times(np.minimum(ended + 45 * MINUTE, end_of_end_day))
        self.supplement = _portal_times(before_end_of_day(b.supplement_at))
        self.supplement_back = _portal_times(before_end_of_day(b.supplement_back_at))
        self.all_supplement = _portal_times(b.supplement_at[idx])
        self.all_supplement_back = _portal_times(b.supplement_back_at[idx])
        self.all_ended = _portal_times(b.ended_at[idx])
        self.all_returned = _portal_times(b.ended_at[idx] + 30 * MINUTE)
        for name in ("unit_of", "procedure", "counter", "online", "paid", "digitised", "reused", "personal_store",
                     "vneid", "synced", "e_result", "rated", "satisfied"):
            setattr(self, name, getattr(b, name)[idx].tolist())
        self.person = b.person[idx].tolist()

    def __len__(self) -> int:
        return len(self.index)

    @cached_property
    def codes(self) -> list[str]:
        b = self.block
        return [f"{b.units[u].code}-{r[2:8]}-{c:04d}" for u, r, c in zip(self.unit_of, self.received, self.counter)]


def _applicant(unit: Unit, procedure: Procedure, person: list[int]) -> dict:
    last, middle, female, given, born, serial, phone, street = person
    female = female % 2
    given_names = _GIVEN_FEMALE if female else _GIVEN_MALE
    given_name = given_names[given % len(given_names)]
    middle_name = "Thị" if female and middle % 3 == 0 else _MIDDLE[middle % len(_MIDDLE)]
    family = _LAST[last % len(_LAST)]
    name = f"{family} {middle_name} {given_name}".replace("' ", "'")
    year = 1950 + born % 57
    serial %= 1_000_000
    birth_province = sum(map(ord, unit.code[-3:])) % 96 + 1
    return {
        "ChuHoSo": name,
        "SoGiayToChuHoSo": f"{birth_province:03d}{(0 if year < 2000 else 2) + female}{year % 100:02d}{serial:06d}",
        "SoDienThoai": f"0{'3579'[phone % 4]}{phone % 100_000_000:08d}",
        "Email": (f"{given_name.lower().translate(_ASCII).replace(' ', '')}"
                  f"{family.lower().translate(_ASCII).replace(' ', '')}{serial % 1000}@gmail.com"
                  if serial % 5 < 2 else None),
        "DiaChiChuHoSo": f"{serial % 300 + 1} {_STREETS[street % len(_STREETS)]}, {unit.name.removeprefix('UBND ')}",
        "LoaiDoiTuong": 1 if procedure.individuals else 2,
    }


def _documents(procedure: Procedure, count: int, digitised: bool, reused: bool, personal_store: bool) -> list[dict]:
    return [{
        "MaGiayTo": f"{procedure.code}.GT{k + 1}",
        "TenGiayTo": ("Tờ khai", "Giấy tờ tùy thân", "Giấy tờ chứng minh")[k],
        "DuocSoHoa": int(digitised),
        "DuocTaiSuDung": int(reused and k == 0),
        "DuocLayTuKhoDMQG": int(personal_store and k == count - 1),
    } for k in range(count)]


def dossier_versions(view: DayView) -> Iterator[dict]:
    """Each dossier of the view as it stood at the end of the view's day."""
    b = view.block
    for k in range(len(view)):
        unit = b.units[view.unit_of[k]]
        procedure = b.mixes[view.unit_of[k]].procedures[view.procedure[k]]
        code = view.codes[k]
        ended, supplement, back = view.ended[k], view.supplement[k], view.supplement_back[k]
        if ended is not None:
            status, changed = 10, view.returned[k]
        elif supplement is not None and back is None:
            status, changed = 5, supplement
        else:
            status, changed = 4, back or view.received[k]
        online = bool(view.online[k])
        electronic = ended is not None and bool(view.e_result[k]) and procedure.written_result
        person = view.person[k]
        yield {
            "MaHoSo": code,
            "MaTTHC": procedure.code,
            "TenTTHC": procedure.name,
            "MaLinhVuc": procedure.field_code,
            "TenLinhVuc": procedure.field_name,
            "MaDonViTiepNhan": unit.code,
            "DonViXuLy": unit.code,
            "KenhThucHien": 2 if online else (3 if person[6] % 40 == 0 else None),
            "NgayDangNhap": view.login[k] if online else None,
            "NgayNopHoSo": view.submitted[k],
            "NgayTiepNhan": view.received[k],
            "NgayHenTra": view.due[k],
            "NgayKetThucXuLy": ended,
            "NgayTra": view.returned[k] if ended is not None else None,
            "NgayTuChoi": None,
            "NgayCapNhat": changed,
            "TrangThaiHoSo": status,
            **_applicant(unit, procedure, person),
            "DanhSachLePhi": ([{"MaPhiLePhi": f"LP.{procedure.code}", "TenPhiLePhi": f"Lệ phí {procedure.name.lower()}",
                                "Gia": procedure.fee}] if procedure.fee else []),
            "DuocThanhToanTrucTuyen": view.paid[k] if procedure.fee else None,
            "TaiLieuNop": _documents(procedure, 1 + person[5] % 3, view.digitised[k], view.reused[k],
                                     view.personal_store[k]),
            "HoSoCoThanhPhanSoHoa": int(view.digitised[k]),
            "TaiKhoanDuocXacThucVoiVNeID": int(bool(view.vneid[k]) and online),
            "DanhSachGiayToKetQua": ([{
                "TenGiayTo": f"Kết quả {procedure.name.lower()}",
                "DuongDanTepTinKetQua": f"https://dichvucong.gov.vn/ketqua/{code}.pdf" if electronic else None,
                "DayLenKhoDMQG": int(electronic and bool(view.personal_store[k])),
            }] if ended is not None else []),
            "DanhSachHoSoBoSung": ([{"NgayBoSung": supplement, "NgayTiepNhanBoSung": back,
                                     "NgayHenTraMoi": view.new_due[k]}] if supplement is not None else []),
            "DongBoDVCQG": int(view.synced[k]),
        }


@dataclass(frozen=True)
class Roster:
    """A unit's officials: the one-stop desk and each field's specialists, each specialist with a
    reliability (its share of the field's on-time dossiers against its share of the late ones)."""
    one_stop: tuple[str, ...]
    specialists: dict[str, tuple[tuple[str, float], ...]]  # field code -> (name, reliability)


def _official_name(rng: np.random.Generator) -> str:
    female = bool(rng.integers(0, 2))
    given_names = _GIVEN_FEMALE if female else _GIVEN_MALE
    given = given_names[int(rng.integers(0, len(given_names)))]
    middle = "Thị" if female and rng.random() < 0.4 else _MIDDLE[int(rng.integers(0, len(_MIDDLE)))]
    family = _FAMILY[int(rng.integers(0, len(_FAMILY)))]
    return f"{family} {middle} {given}"


@lru_cache(maxsize=4096)
def roster(seed: int, unit_code: str, field_codes: tuple[str, ...]) -> Roster:
    """The unit's officials, drawn from their own generator (seeded by the seed and the unit's code), so
    naming them changes nothing else the simulator draws."""
    rng = np.random.default_rng([seed, zlib.crc32(unit_code.encode()), 766])
    taken: set[str] = set()

    def fresh() -> str:
        while True:
            name = _official_name(rng)
            if name not in taken:
                taken.add(name)
                return name

    one_stop = tuple(fresh() for _ in range(ONE_STOP_OFFICIALS))
    specialists = {}
    for code in field_codes:
        count = int(rng.integers(1, 3))
        specialists[code] = tuple((fresh(), round(float(rng.uniform(0.2, 1.0)), 3)) for _ in range(count))
    return Roster(one_stop, specialists)


def unit_roster(b: Block, unit_index: int) -> Roster:
    unit = b.units[unit_index]
    fields = tuple(sorted({p.field_code for p in b.mixes[unit_index].procedures}))
    return roster(b.seed, unit.code, fields)


def _uniform(seed: int, code: str, salt: str) -> float:
    return zlib.crc32(f"{seed}/{code}/{salt}".encode()) / 2**32


def _pick_specialist(choices: tuple[tuple[str, float], ...], late: bool, u: float) -> str:
    """A specialist of the field: on-time dossiers in proportion to reliability, late ones to its lack."""
    weights = [(1.0 - r) if late else r for _, r in choices]
    total = sum(weights)
    running = 0.0
    for (name, _), weight in zip(choices, weights):
        running += weight / total
        if u < running:
            return name
    return choices[-1][0]


def process_steps(view: DayView) -> Iterator[dict]:
    """The steps of each dossier of the view that happened on the view's day, numbered in its life.
    The one-stop desk receives and returns (statuses 2 and 10); a specialist of the procedure's field
    transfers, asks for supplements and finishes (4, 5, 9). Who is named depends only on the dossier's
    code and whether it ends late, never on the simulator's random streams."""
    stamp = view.day.strftime("%Y%m%d")
    b = view.block
    for k in range(len(view)):
        unit_code = b.units[view.unit_of[k]].code
        moments = [(view.received[k], 2, "Tiếp nhận hồ sơ"), (view.received_plus5[k], 4, "Chuyển xử lý")]
        if view.all_supplement[k] is not None:
            moments += [(view.all_supplement[k], 5, "Yêu cầu bổ sung hồ sơ"),
                        (view.all_supplement_back[k], 4, "Tiếp nhận hồ sơ bổ sung")]
        if view.all_ended[k] is not None:
            moments += [(view.all_ended[k], 9, "Hoàn thành xử lý"), (view.all_returned[k], 10, "Trả kết quả")]
        if not any(moment.startswith(stamp) for moment, _, _ in moments):
            continue
        officials = unit_roster(b, view.unit_of[k])
        code = view.codes[k]
        field_code = b.mixes[view.unit_of[k]].procedures[view.procedure[k]].field_code
        due = view.new_due[k] if view.all_supplement[k] is not None else view.due[k]
        late = view.all_ended[k] is None or view.all_ended[k] > due
        desk = officials.one_stop[int(_uniform(b.seed, code, "desk") * len(officials.one_stop))]
        specialist = _pick_specialist(officials.specialists[field_code], late, _uniform(b.seed, code, "field"))
        for step, (moment, status, text) in enumerate(moments, start=1):
            if moment.startswith(stamp):
                yield {"MaHoSo": code, "STT": step, "DonViXuLy": unit_code,
                       "NguoiXuLy": desk if status in (2, 10) else specialist, "ThoiDiemXuLy": moment,
                       "TrangThai": status, "NoiDungXuLy": text}


def ratings(view: DayView) -> Iterator[dict]:
    stamp = view.day.strftime("%Y%m%d")
    b = view.block
    for k in range(len(view)):
        if not view.rated[k] or view.ended[k] is None or not view.rated_at[k].startswith(stamp):
            continue
        level = 3 if not view.satisfied[k] else (1 if view.person[k][3] % 10 < 7 else 2)
        yield {"MaHoSo": view.codes[k], "MaDonVi": b.units[view.unit_of[k]].code, "NgayDanhGia": view.rated_at[k],
               "MucDoHaiLong": level, "KenhDanhGia": 2 if view.online[k] else 1,
               "YKien": None if level != 3 else "Thời gian giải quyết còn chậm"}


def _views(seed: int, world: World, day: date) -> Iterator[DayView]:
    for group in world.groups:
        for year, month in _months_touching(day):
            view = DayView(block(seed, world, group, year, month), day)
            if len(view):
                yield view


def dossier_rows(seed: int, world: World, day: date) -> Iterator[dict]:
    for view in _views(seed, world, day):
        yield from dossier_versions(view)


def process_log_rows(seed: int, world: World, day: date) -> Iterator[dict]:
    for view in _views(seed, world, day):
        yield from process_steps(view)


def rating_rows(seed: int, world: World, day: date) -> Iterator[dict]:
    for view in _views(seed, world, day):
        yield from ratings(view)
