"""The simulated world: units (with their versions and the 1/7/2025 reorganisation), procedures.

A ``World`` is everything the portal knows that is not a daily event. Scenarios (scenarios.py)
build worlds; the generators turn a world and a day into extracts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

from chiso.simulator.behaviour import Behaviour

REORGANISATION_DAY = date(2025, 7, 1)  # two-level local government: districts abolished, communes merged
FOREVER = None


@dataclass(frozen=True)
class Unit:
    code: str  # electronic id (MaDonVi): dossiers name their unit by it
    name: str
    kind: str  # PROVINCE, AGENCY, DISTRICT, COMMUNE
    parent_code: str | None
    portal_code: str | None = None  # the national portal's code, e.g. H21.227
    statistical_code: str | None = None
    valid_from: date = date(2000, 1, 1)
    valid_to: date | None = FOREVER  # last day of validity
    daily_dossiers: float = 0.0  # mean dossiers received on a weekday
    behaviour: Behaviour = field(default_factory=Behaviour)

    def active_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True)
class Procedure:
    code: str  # MaTTHC
    name: str
    field_code: str
    field_name: str
    level: int  # CapThucHien: 2 province, 3 district, 4 commune
    online_level: str  # TOAN_TRINH, MOT_PHAN, KHONG
    fee: int  # VND, 0 = free
    written_result: bool
    individuals: bool
    full_online_eligible: bool
    working_days: int
    weight: float = 1.0  # relative frequency among a unit's dossiers
    valid_from: date = date(2000, 1, 1)
    valid_to: date | None = FOREVER

    def active_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True)
class Succession:
    old_code: str
    new_code: str
    effective: date
    legal_basis: str


@dataclass(frozen=True, eq=False)  # identity hash: worlds key the generators' caches, and are big
class World:
    name: str
    units: tuple[Unit, ...]
    procedures: tuple[Procedure, ...]
    successions: tuple[Succession, ...] = ()
    # Province-level bodies whose procedure publications the portal records (CKMB indicators).
    publishers: tuple[str, ...] = ()

    @cached_property
    def by_code(self) -> dict[str, Unit]:
        return {u.code: u for u in self.units}

    @cached_property
    def groups(self) -> dict[str, tuple[Unit, ...]]:
        """Units that receive dossiers, by province: the generators work a province at a time."""
        grouped: dict[str, list[Unit]] = {}
        for unit in self.units:
            if unit.daily_dossiers > 0:
                grouped.setdefault(self.province_of(unit), []).append(unit)
        return {code: tuple(units) for code, units in grouped.items()}

    @cached_property
    def group_index(self) -> dict[str, int]:
        """A stable small integer per province group, used to seed its random streams."""
        return {code: i for i, code in enumerate(self.groups)}

    def province_of(self, unit: Unit) -> str:
        while unit.kind != "PROVINCE" and unit.parent_code in self.by_code:
            unit = self.by_code[unit.parent_code]
        return unit.code

    def procedures_for(self, unit: Unit, day: date) -> list[Procedure]:
        """Procedures a unit handles on a day: communes the commune level, others the rest."""
        wanted = (4,) if unit.kind == "COMMUNE" else (3,) if unit.kind == "DISTRICT" else (1, 2)
        return [p for p in self.procedures if p.level in wanted and p.active_on(day)]


# ----------------------------------------------------------------------------- procedures

def _procedure(code, name, field_code, field_name, level, online_level, fee, written, individuals,
               days, weight=1.0, **dates) -> Procedure:
    return Procedure(code, name, field_code, field_name, level, online_level, fee, written, individuals,
                     online_level == "TOAN_TRINH", days, weight, **dates)


HT, CT, DD, XD, LD, KD = ("HTX", "Tư pháp - Hộ tịch"), ("CT", "Chứng thực"), ("DD", "Đất đai"), \
    ("XD", "Xây dựng"), ("LDTBXH", "Lao động - Thương binh và Xã hội"), ("KD", "Thành lập và hoạt động doanh nghiệp")

COMMUNE_PROCEDURES: tuple[Procedure, ...] = (
    _procedure("1.001193", "Đăng ký khai sinh", *HT, 4, "TOAN_TRINH", 0, True, True, 1, 3.0),
    _procedure("1.000894", "Đăng ký kết hôn", *HT, 4, "MOT_PHAN", 0, True, True, 3, 1.0),
    _procedure("1.000656", "Đăng ký khai tử", *HT, 4, "TOAN_TRINH", 0, True, True, 1, 1.0),
    _procedure("2.000635", "Cấp bản sao trích lục hộ tịch", *HT, 4, "TOAN_TRINH", 8000, True, True, 1, 2.0),
    _procedure("1.004873", "Xác nhận tình trạng hôn nhân", *HT, 4, "TOAN_TRINH", 0, True, True, 3, 1.5),
    _procedure("2.000815", "Chứng thực bản sao từ bản chính giấy tờ, văn bản", *CT, 4, "MOT_PHAN", 2000, True,
               True, 1, 4.0),
    _procedure("2.000884", "Chứng thực chữ ký trong các giấy tờ, văn bản", *CT, 4, "MOT_PHAN", 10000, True,
               True, 1, 1.0),
    _procedure("1.001612", "Đăng ký thường trú", *("CA", "Đăng ký, quản lý cư trú"), 4, "TOAN_TRINH", 20000,
               True, True, 7, 1.0),
    _procedure("1.002755", "Đăng ký biến động quyền sử dụng đất", *DD, 4, "MOT_PHAN", 30000, True, True, 10,
               0.8),
    _procedure("1.001776", "Hỗ trợ chi phí mai táng cho đối tượng bảo trợ xã hội", *LD, 4, "MOT_PHAN", 0,
               True, True, 3, 0.4),
)

PROVINCE_PROCEDURES: tuple[Procedure, ...] = (
    _procedure("2.001610", "Cấp giấy phép xây dựng mới", *XD, 2, "MOT_PHAN", 75000, True, False, 15, 1.0),
    _procedure("2.001199", "Đăng ký thành lập doanh nghiệp tư nhân", *KD, 2, "TOAN_TRINH", 50000, True, False,
               3, 2.0),
    _procedure("1.005385", "Cấp phiếu lý lịch tư pháp", *("LLTP", "Lý lịch tư pháp"), 2, "TOAN_TRINH", 200000,
               True, True, 10, 2.0),
    _procedure("1.002993", "Cấp giấy phép lái xe", *("GTVT", "Đường bộ"), 2, "MOT_PHAN", 135000, True, True, 10,
               1.5),
    _procedure("1.004227", "Cấp giấy chứng nhận quyền sử dụng đất lần đầu", *DD, 2, "MOT_PHAN", 100000, True,
               True, 20, 0.8),
)

DISTRICT_PROCEDURES: tuple[Procedure, ...] = (
    _procedure("2.000488", "Cấp giấy chứng nhận đăng ký hộ kinh doanh", *KD, 3, "TOAN_TRINH", 100000, True,
               False, 3, 1.0),
    _procedure("1.003003", "Đăng ký lại khai sinh có yếu tố nước ngoài", *HT, 3, "MOT_PHAN", 0, True, True, 5,
               0.3),
)

ALL_PROCEDURES = COMMUNE_PROCEDURES + PROVINCE_PROCEDURES + DISTRICT_PROCEDURES
