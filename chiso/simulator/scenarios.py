"""Built-in worlds, from one commune to the whole country.

* ``cu_kuin_2024``: huyện Cư Kuin (Đắk Lắk) and its 8 communes, seed 002. Online shares before the
  campaign are the annex's rates of 13/11/2024; during the 60-day campaign (15/11/2024–13/1/2025) they
  climb, some communes reaching their +5 targets and Ea Ktur falling short; online payment climbs from
  ~0.1% towards the 5% target.
* ``ia_tor_2024``: xã Ia Tôr and the 19 other communes of huyện Chư Prông (Gia Lai), seed 001: Ia Tôr's
  2023 profile (online 0.2%, payment 0.0%, digitisation 19.5%, on time 90.24%, satisfaction 100%) and
  its 100-day campaign (22/3–29/6/2024: online 30% at day 50, 60% at day 100; payment 20% → 55%;
  digitisation 50% → 100%).
* ``reorg_2025``: six communes of one district merged into two on 1/7/2025, with the crosswalk.
* ``single_commune``: one commune, for the smallest tests.
* ``dak_rve_2025``: xã Đăk Rve (Quảng Ngãi) after 1/7/2025, seed 004, so that the plan's targets and
  recipients name a unit that exists.
* ``national``: 63 provinces, 696 districts and 10,035 communes until 30/6/2025; 34 provinces and
  3,321 communes from 1/7/2025 (the real province mergers of Resolution 202/2025/QH15; commune names and
  unit codes are illustrative), about 200,000 dossiers a day at volume 1.0.

Unit codes are shaped like the portal's but are illustrative; names of provinces, of huyện Cư Kuin's
communes and of xã Ia Tôr are real.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta

from chiso.simulator.behaviour import Behaviour, Schedule
from chiso.simulator.world import (
    ALL_PROCEDURES,
    REORGANISATION_DAY,
    Succession,
    Unit,
    World,
)

LAST_OLD_DAY = REORGANISATION_DAY - timedelta(days=1)
PROVINCE_MERGER_BASIS = "Nghị quyết 202/2025/QH15 về sắp xếp đơn vị hành chính cấp tỉnh"
COMMUNE_MERGER_BASIS = "Nghị quyết của Ủy ban Thường vụ Quốc hội về sắp xếp đơn vị hành chính cấp xã năm 2025"

AGENCY_NAMES = (
    "Văn phòng UBND tỉnh", "Sở Tư pháp", "Sở Tài chính", "Sở Xây dựng", "Sở Nông nghiệp và Môi trường",
    "Sở Công Thương", "Sở Y tế", "Sở Giáo dục và Đào tạo", "Sở Khoa học và Công nghệ",
    "Sở Văn hóa, Thể thao và Du lịch", "Sở Nội vụ", "Sở Dân tộc và Tôn giáo", "Thanh tra tỉnh",
    "Ban Quản lý các khu công nghiệp", "Công an tỉnh",
)


def _province(code: str, name: str, **kwargs) -> Unit:
    return Unit(f"000.00.00.{code}", f"UBND tỉnh {name}", "PROVINCE", None, code, **kwargs)


# ----------------------------------------------------------------------------- Cư Kuin (seed 002)

CAMPAIGN_002 = (date(2024, 11, 15), date(2025, 1, 13))
# (name, code suffix, weekday dossiers, online rate on 13/11/2024, online rate reached on 13/1/2025)
CU_KUIN_COMMUNES = (
    ("Ea Bhôk", 31, 28, 0.581, 0.640),
    ("Ea Ning", 32, 24, 0.567, 0.625),
    ("Cư Êwi", 33, 18, 0.691, 0.735),
    ("Dray Bhăng", 34, 30, 0.725, 0.790),
    ("Hòa Hiệp", 35, 26, 0.630, 0.700),
    ("Ea Hu", 36, 20, 0.706, 0.770),
    ("Ea Ktur", 37, 32, 0.299, 0.330),  # the laggard: well short of its 34.9% target
    ("Ea Tiêu", 38, 22, 0.444, 0.500),
)


def cu_kuin_2024(volume: float = 1.0) -> World:
    province = _province("H15", "Đắk Lắk")
    district = Unit("000.00.27.H15", "UBND huyện Cư Kuin", "DISTRICT", province.code, "H15.27", "660",
                    valid_to=LAST_OLD_DAY, daily_dossiers=8 * volume)
    start, end = CAMPAIGN_002
    communes = []
    for index, (name, suffix, weekday, before, reached) in enumerate(CU_KUIN_COMMUNES):
        communes.append(Unit(
            f"000.{suffix}.27.H15", f"UBND xã {name}", "COMMUNE", district.code, f"H15.27.{suffix}",
            f"{24580 + 3 * index}", valid_to=LAST_OLD_DAY, daily_dossiers=weekday * volume,
            behaviour=Behaviour(
                # Climb from the first day of the campaign, then hold for its last 10 days.
                online=Schedule.of((start - timedelta(days=1), before), (end - timedelta(days=10), reached)),
                paid_online=Schedule.of((start - timedelta(days=1), 0.001 * (index % 2)),
                                        (end, 0.02 + 0.01 * index)),
                on_time=Schedule.constant(0.93 + 0.008 * index),
                digitised=Schedule.of((start - timedelta(days=1), 0.55 + 0.03 * index), (end, 0.9)),
            ),
        ))
    return World("cu_kuin_2024", (province, district, *communes), ALL_PROCEDURES, publishers=(province.code,))


# ----------------------------------------------------------------------------- Ia Tôr (seed 001)

CAMPAIGN_001 = (date(2024, 3, 22), date(2024, 6, 29))
IA_TOR_2023 = {"online": 0.002, "paid_online": 0.0, "digitised": 0.195, "on_time": 0.9024, "satisfied": 1.0}
CHU_PRONG_COMMUNES = ("Ia Tôr", "Ia Kly", "Ia Drang", "Ia Phìn", "Ia Me", "Ia Vê", "Ia Bang", "Ia Pia",
                      "Ia Ga", "Ia Lâu", "Ia Piơr", "Ia Mơ", "Ia Púch", "Ia Ia Boòng", "Ia O", "Thăng Hưng",
                      "Bình Giáo", "Bàu Cạn", "Ia Băng", "Thị trấn Chư Prông")


def ia_tor_2024(volume: float = 1.0) -> World:
    province = _province("H21", "Gia Lai")
    district = Unit("000.00.17.H21", "UBND huyện Chư Prông", "DISTRICT", province.code, "H21.17", "612",
                    valid_to=LAST_OLD_DAY, daily_dossiers=6 * volume)
    start, end = CAMPAIGN_001
    day_50 = start + timedelta(days=49)
    communes = []
    for index, name in enumerate(CHU_PRONG_COMMUNES):
        kind_name = name if name.startswith("Thị trấn") else f"xã {name}"
        if index == 0:
            behaviour = Behaviour(
                online=Schedule.of(("2023-12-31", IA_TOR_2023["online"]), (start, IA_TOR_2023["online"]),
                                   (day_50, 0.30), (end, 0.60)),
                paid_online=Schedule.of((start, 0.0), (day_50, 0.20), (end, 0.55)),
                digitised=Schedule.of((start, IA_TOR_2023["digitised"]), (day_50, 0.50), (end, 1.0)),
                on_time=Schedule.of((start, IA_TOR_2023["on_time"]), (day_50, 1.0)),
                satisfied=Schedule.constant(IA_TOR_2023["satisfied"]),
            )
            weekday = 7
        else:
            rng = random.Random(f"chu_prong:{index}")
            behaviour = Behaviour(
                online=Schedule.constant(rng.uniform(0.01, 0.25)),
                paid_online=Schedule.constant(rng.uniform(0.0, 0.1)),
                digitised=Schedule.constant(rng.uniform(0.2, 0.7)),
                on_time=Schedule.constant(rng.uniform(0.85, 1.0)),
            )
            weekday = rng.randint(4, 12)
        communes.append(Unit(f"000.{40 + index}.17.H21", f"UBND {kind_name}", "COMMUNE", district.code,
                             f"H21.17.{40 + index}", f"{23700 + index}", valid_to=LAST_OLD_DAY,
                             daily_dossiers=weekday * volume, behaviour=behaviour))
    return World("ia_tor_2024", (province, district, *communes), ALL_PROCEDURES, publishers=(province.code,))


# ----------------------------------------------------------------------------- 1/7/2025 crossing

def reorg_2025(volume: float = 1.0) -> World:
    province = _province("H21", "Gia Lai")
    district = Unit("000.00.09.H21", "UBND huyện Đak Đoa", "DISTRICT", province.code, "H21.09", "599",
                    valid_to=LAST_OLD_DAY, daily_dossiers=5 * volume)
    old_names = ("Hà Bầu", "Nam Yang", "Đak Sơmei", "Hà Đông", "Hải Yang", "Kon Gang")
    new_names = ("Đak Đoa", "Kon Gang")
    old = [Unit(f"000.{50 + i}.09.H21", f"UBND xã {n}", "COMMUNE", district.code, f"H21.09.{50 + i}",
                f"{23500 + i}", valid_to=LAST_OLD_DAY, daily_dossiers=(8 + i) * volume)
           for i, n in enumerate(old_names)]
    new = [Unit(f"000.{70 + i}.00.H21", f"UBND xã {n}", "COMMUNE", province.code, f"H21.{270 + i}",
                f"{24800 + i}", valid_from=REORGANISATION_DAY, daily_dossiers=30 * volume)
           for i, n in enumerate(new_names)]
    successions = tuple(Succession(o.code, new[i // 3].code, REORGANISATION_DAY, COMMUNE_MERGER_BASIS)
                        for i, o in enumerate(old))
    return World("reorg_2025", (province, district, *old, *new), ALL_PROCEDURES, successions,
                 publishers=(province.code,))


def single_commune(volume: float = 1.0) -> World:
    province = _province("H15", "Đắk Lắk")
    commune = Unit("000.37.27.H15", "UBND xã Ea Ktur", "COMMUNE", province.code, "H15.27.37", "24598",
                   daily_dossiers=20 * volume)
    return World("single_commune", (province, commune), ALL_PROCEDURES, publishers=(province.code,))


# ----------------------------------------------------------------------------- Đăk Rve (seed 004)

def dak_rve_2025(volume: float = 1.0) -> World:
    """xã Đăk Rve, a commune of tỉnh Quảng Ngãi from 1/7/2025 (two-level local government: directly under
    the province), with its province. Seed 004's plan (9/2025) quotes no baseline: the propensities are
    ordinary ones, the login-to-submission time near the plan's 8 minutes."""
    province = _province("H22", "Quảng Ngãi")
    commune = Unit("000.61.00.H22", "UBND xã Đăk Rve", "COMMUNE", province.code, "H22.261", "23401",
                   valid_from=REORGANISATION_DAY, daily_dossiers=18 * volume,
                   behaviour=Behaviour(online=Schedule.constant(0.55), login_minutes=Schedule.constant(8.5),
                                       satisfied=Schedule.constant(0.92)))
    return World("dak_rve_2025", (province, commune), ALL_PROCEDURES, publishers=(province.code,))


# ----------------------------------------------------------------------------- national

# The 34 provinces from 1/7/2025 and the provinces each was formed from (Resolution 202/2025/QH15).
PROVINCES_2025 = (
    ("Hà Nội", ("Hà Nội",)), ("Huế", ("Thừa Thiên Huế",)), ("Lai Châu", ("Lai Châu",)),
    ("Điện Biên", ("Điện Biên",)), ("Sơn La", ("Sơn La",)), ("Lạng Sơn", ("Lạng Sơn",)),
    ("Quảng Ninh", ("Quảng Ninh",)), ("Thanh Hóa", ("Thanh Hóa",)), ("Nghệ An", ("Nghệ An",)),
    ("Hà Tĩnh", ("Hà Tĩnh",)), ("Cao Bằng", ("Cao Bằng",)),
    ("Tuyên Quang", ("Tuyên Quang", "Hà Giang")), ("Lào Cai", ("Lào Cai", "Yên Bái")),
    ("Thái Nguyên", ("Thái Nguyên", "Bắc Kạn")), ("Phú Thọ", ("Phú Thọ", "Vĩnh Phúc", "Hòa Bình")),
    ("Bắc Ninh", ("Bắc Ninh", "Bắc Giang")), ("Hưng Yên", ("Hưng Yên", "Thái Bình")),
    ("Hải Phòng", ("Hải Phòng", "Hải Dương")), ("Ninh Bình", ("Ninh Bình", "Hà Nam", "Nam Định")),
    ("Quảng Trị", ("Quảng Trị", "Quảng Bình")), ("Đà Nẵng", ("Đà Nẵng", "Quảng Nam")),
    ("Quảng Ngãi", ("Quảng Ngãi", "Kon Tum")), ("Gia Lai", ("Gia Lai", "Bình Định")),
    ("Khánh Hòa", ("Khánh Hòa", "Ninh Thuận")), ("Lâm Đồng", ("Lâm Đồng", "Đắk Nông", "Bình Thuận")),
    ("Đắk Lắk", ("Đắk Lắk", "Phú Yên")), ("Hồ Chí Minh", ("Hồ Chí Minh", "Bình Dương", "Bà Rịa - Vũng Tàu")),
    ("Đồng Nai", ("Đồng Nai", "Bình Phước")), ("Tây Ninh", ("Tây Ninh", "Long An")),
    ("Cần Thơ", ("Cần Thơ", "Sóc Trăng", "Hậu Giang")), ("Vĩnh Long", ("Vĩnh Long", "Bến Tre", "Trà Vinh")),
    ("Đồng Tháp", ("Đồng Tháp", "Tiền Giang")), ("Cà Mau", ("Cà Mau", "Bạc Liêu")),
    ("An Giang", ("An Giang", "Kiên Giang")),
)
NEW_COMMUNES, OLD_COMMUNES, OLD_DISTRICTS = 3321, 10035, 696
_SYLLABLES = ("An", "Bình", "Hòa", "Phú", "Tân", "Thạnh", "Long", "Phước", "Hưng", "Đông", "Tây", "Nam",
              "Bắc", "Trung", "Mỹ", "Thuận", "Vĩnh", "Quang", "Đức", "Hiệp", "Lộc", "Thành", "Sơn", "Hải",
              "Lâm", "Xuân", "Thịnh", "Khánh", "Minh", "Nghĩa", "Yên", "Cẩm", "Kim", "Ngọc", "Thái", "Hợp")


def _spread(total: int, buckets: int) -> list[int]:
    """Split ``total`` into ``buckets`` near-equal integers (the larger ones first)."""
    base, extra = divmod(total, buckets)
    return [base + (1 if i < extra else 0) for i in range(buckets)]


def _random_behaviour(rng: random.Random) -> Behaviour:
    return Behaviour(
        online=Schedule.constant(rng.betavariate(4, 4)),
        on_time=Schedule.constant(min(1.0, rng.betavariate(30, 1.5))),
        paid_online=Schedule.constant(rng.betavariate(2, 4)),
        digitised=Schedule.constant(rng.betavariate(6, 3)),
        e_result=Schedule.constant(rng.betavariate(8, 2)),
        vneid=Schedule.constant(rng.betavariate(3, 4)),
        satisfied=Schedule.constant(min(1.0, rng.betavariate(40, 1))),
    )


def national(volume: float = 1.0) -> World:
    """The whole country in both shapes, ~200,000 dossiers a day at volume 1.0."""
    rng = random.Random("national")
    units: list[Unit] = []
    successions: list[Succession] = []
    old_province_count = sum(len(olds) for _, olds in PROVINCES_2025)
    new_per_province = _spread(NEW_COMMUNES, len(PROVINCES_2025))
    old_per_new_commune = _spread(OLD_COMMUNES, NEW_COMMUNES)
    districts_per_old_province = _spread(OLD_DISTRICTS, old_province_count)
    # Weekday volumes: ~150k a day for communes and ~50k for departments, in both shapes.
    commune_old, commune_new = 15.0 * volume, 45.0 * volume
    agency_old, agency_new = 55.0 * volume, 100.0 * volume
    new_commune_no = old_commune_no = old_province_no = old_seen = 0
    for p_index, (new_name, old_names) in enumerate(PROVINCES_2025):
        merged = len(old_names) > 1
        new_code = f"H{p_index + 1:02d}"
        new_province = _province(new_code, new_name, statistical_code=f"{p_index + 1:02d}",
                                 valid_from=REORGANISATION_DAY if merged else date(2000, 1, 1))
        units.append(new_province)
        old_provinces = []
        for old_name in old_names:
            if not merged:
                old_provinces.append(new_province)
                continue
            old_province_no += 1
            old = _province(f"T{old_province_no:02d}", old_name, valid_to=LAST_OLD_DAY)
            units.append(old)
            old_provinces.append(old)
            successions.append(Succession(old.code, new_province.code, REORGANISATION_DAY, PROVINCE_MERGER_BASIS))
        # Departments: the old provinces' until the merger, the new province's from it.
        for a_index, agency in enumerate(AGENCY_NAMES):
            if merged:
                new_agency = Unit(f"000.{a_index + 1:02d}.00.{new_code}", f"{agency} - tỉnh {new_name}", "AGENCY",
                                  new_province.code, f"{new_code}.{a_index + 1}", valid_from=REORGANISATION_DAY,
                                  daily_dossiers=agency_new, behaviour=_random_behaviour(rng))
                units.append(new_agency)
                for old in old_provinces:
                    old_agency = Unit(f"000.{a_index + 1:02d}.00.{old.portal_code}", f"{agency} - tỉnh "
                                      f"{old.name.removeprefix('UBND tỉnh ')}", "AGENCY", old.code,
                                      f"{old.portal_code}.{a_index + 1}", valid_to=LAST_OLD_DAY,
                                      daily_dossiers=agency_old, behaviour=_random_behaviour(rng))
                    units.append(old_agency)
                    successions.append(Succession(old_agency.code, new_agency.code, REORGANISATION_DAY,
                                                  PROVINCE_MERGER_BASIS))
            else:
                units.append(Unit(f"000.{a_index + 1:02d}.00.{new_code}", f"{agency} - tỉnh {new_name}", "AGENCY",
                                  new_province.code, f"{new_code}.{a_index + 1}",
                                  daily_dossiers=(agency_old + agency_new) / 2, behaviour=_random_behaviour(rng)))
        # Communes: each new commune is the merger of 3 or 4 old ones, spread over the old provinces'
        # districts in order.
        district_parents = []
        for old in old_provinces:
            district_parents += [old] * districts_per_old_province[old_seen]
            old_seen += 1
        olds_here = sum(old_per_new_commune[new_commune_no:new_commune_no + new_per_province[p_index]])
        per_district = _spread(olds_here, len(district_parents))
        districts = []
        for d_index, (old, size) in enumerate(zip(district_parents, per_district)):
            district = Unit(f"000.{d_index + 1:02d}.{old.portal_code}.D", f"UBND huyện {rng.choice(_SYLLABLES)} "
                            f"{rng.choice(_SYLLABLES)}", "DISTRICT", old.code, f"{old.portal_code}.D{d_index + 1}",
                            valid_to=LAST_OLD_DAY, daily_dossiers=4 * volume, behaviour=_random_behaviour(rng))
            units.append(district)
            districts.extend([district] * size)
        slot = 0
        for c_index in range(new_per_province[p_index]):
            name = f"{rng.choice(('Xã', 'Xã', 'Xã', 'Phường')).lower()} {rng.choice(_SYLLABLES)} {rng.choice(_SYLLABLES)}"
            new_commune = Unit(f"000.{c_index + 1:03d}.{new_code}.X", f"UBND {name}", "COMMUNE", new_province.code,
                               f"{new_code}.{c_index + 1}", f"{new_commune_no + 1:05d}", valid_from=REORGANISATION_DAY,
                               daily_dossiers=commune_new, behaviour=_random_behaviour(rng))
            units.append(new_commune)
            for _ in range(old_per_new_commune[new_commune_no]):
                district = districts[slot]
                slot += 1
                old_commune_no += 1
                old_commune = Unit(f"000.{old_commune_no:05d}.{district.code.split('.')[2]}.C",
                                   f"UBND xã {rng.choice(_SYLLABLES)} {rng.choice(_SYLLABLES)}", "COMMUNE",
                                   district.code, f"C{old_commune_no:05d}", f"{old_commune_no:05d}",
                                   valid_to=LAST_OLD_DAY, daily_dossiers=commune_old, behaviour=_random_behaviour(rng))
                units.append(old_commune)
                successions.append(Succession(old_commune.code, new_commune.code, REORGANISATION_DAY,
                                              COMMUNE_MERGER_BASIS))
            new_commune_no += 1
    publishers = tuple(u.code for u in units if u.kind == "PROVINCE")
    return World("national", tuple(units), ALL_PROCEDURES, tuple(successions), publishers)


def within_province(world: World, province_code: str) -> World:
    """The part of ``world`` that belongs to one province (as of 1/7/2025): its units, the former
    provinces merged into it and everything under them, and their successions. Benchmarks compare a
    province's night with the nation's on the same generator."""
    merged_in = {s.old_code for s in world.successions if s.new_code == province_code}
    provinces = {province_code} | merged_in
    units = tuple(u for u in world.units if world.province_of(u) in provinces)
    codes = {u.code for u in units}
    if province_code not in codes:
        raise ValueError(f"{world.name} has no province {province_code!r}")
    successions = tuple(s for s in world.successions if s.old_code in codes and s.new_code in codes)
    publishers = tuple(code for code in world.publishers if code in codes)
    return World(f"{world.name}_{province_code}", units, world.procedures, successions, publishers)


SCENARIOS: dict[str, Callable[[float], World]] = {
    "cu_kuin_2024": cu_kuin_2024,
    "ia_tor_2024": ia_tor_2024,
    "reorg_2025": reorg_2025,
    "single_commune": single_commune,
    "dak_rve_2025": dak_rve_2025,
    "national": national,
}


def get_scenario(name: str, volume: float = 1.0) -> World:
    try:
        builder = SCENARIOS[name]
    except KeyError:
        raise ValueError(f"Unknown simulator scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
    return builder(volume)
