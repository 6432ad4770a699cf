"""Built-in unit sets the simulator serves.

``cu_kuin_2024``: the 8 communes of huyện Cư Kuin (Đắk Lắk) from seed 002, with the online-submission
shares of its annex (rates as of 13/11/2024) as each commune's propensity. Unit codes are shaped like
the portal's electronic ids but are illustrative, not the real ones. Issue #3 calibrates the
scenarios against the seeds' figures; v1 only borrows their proportions.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UnitProfile:
    code: str  # portal electronic id (MaDonVi / MaDonViTiepNhan)
    name: str
    kind: str  # AGENCY or COMMUNE
    parent_code: str | None
    statistical_code: str | None
    daily_dossiers: int  # mean dossiers received on a weekday
    online_share: float  # probability that a dossier is submitted online
    on_time_share: float  # probability that a finished dossier is finished on time


@dataclass(frozen=True)
class Procedure:
    code: str  # MaTTHC
    name: str  # TenTTHC
    field_code: str  # MaLinhVuc
    field_name: str  # TenLinhVuc
    working_days: int  # statutory processing time


PROCEDURES: tuple[Procedure, ...] = (
    Procedure("1.001193", "Đăng ký khai sinh", "HTX", "Tư pháp - Hộ tịch", 1),
    Procedure("1.000894", "Đăng ký kết hôn", "HTX", "Tư pháp - Hộ tịch", 3),
    Procedure("2.000635", "Cấp bản sao trích lục hộ tịch", "HTX", "Tư pháp - Hộ tịch", 1),
    Procedure("2.000815", "Chứng thực bản sao từ bản chính giấy tờ", "CT", "Chứng thực", 1),
    Procedure("1.003583", "Đăng ký biến động đất đai", "DD", "Đất đai", 7),
    Procedure("1.001612", "Xác nhận tình trạng hôn nhân", "HTX", "Tư pháp - Hộ tịch", 3),
)

_DISTRICT = "000.00.27.H15"

SCENARIOS: dict[str, tuple[UnitProfile, ...]] = {
    "cu_kuin_2024": (
        UnitProfile("000.31.27.H15", "UBND xã Ea Bhôk", "COMMUNE", _DISTRICT, "24580", 28, 0.581, 0.97),
        UnitProfile("000.32.27.H15", "UBND xã Ea Ning", "COMMUNE", _DISTRICT, "24583", 24, 0.567, 0.95),
        UnitProfile("000.33.27.H15", "UBND xã Cư Êwi", "COMMUNE", _DISTRICT, "24586", 18, 0.691, 0.98),
        UnitProfile("000.34.27.H15", "UBND xã Dray Bhăng", "COMMUNE", _DISTRICT, "24589", 30, 0.725, 0.96),
        UnitProfile("000.35.27.H15", "UBND xã Hòa Hiệp", "COMMUNE", _DISTRICT, "24592", 26, 0.630, 0.93),
        UnitProfile("000.36.27.H15", "UBND xã Ea Hu", "COMMUNE", _DISTRICT, "24595", 20, 0.706, 0.99),
        UnitProfile("000.37.27.H15", "UBND xã Ea Ktur", "COMMUNE", _DISTRICT, "24598", 32, 0.299, 0.90),
        UnitProfile("000.38.27.H15", "UBND xã Ea Tiêu", "COMMUNE", _DISTRICT, "24601", 22, 0.444, 0.94),
    ),
}


def get_scenario(name: str) -> tuple[UnitProfile, ...]:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"Unknown simulator scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
