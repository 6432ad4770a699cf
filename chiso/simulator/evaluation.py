"""The portal's published 766 evaluation of a province's units, computed from the simulated world.

The simulator plays the portal, so it publishes what the portal would: for each unit of a province,
year to date as of a day, every sub-indicator's numerator, denominator, rate and score, the group
scores, the total and the ranks, in the shape of ../shared/reference/gialai-2026-10-10.json. It counts
straight from its own generation arrays (not from the extracts, and not with chiso's dbt models), so
it is an independent implementation for chiso's reconciliation to be checked against. Weights, caps
and zero-denominator policies are read from the rule registry seed: they exist in one place only.

Simulator definitions (year to date, received from 1 January to the day), those of the rule registry:
ON_TIME judges dossiers at the day's end against their (supplement-extended) due date; ONLINE is online
dossiers of full-online-eligible procedures over those procedures' dossiers; ORIGINAL_RESULT_AVAILABLE
counts ended dossiers of written-result procedures; procedure-level indicators count procedures with at
least one dossier in the period; publication deadlines count working days on the state agencies'
calendar (chiso.core.calendar, holidays and swaps included); the CKMB publication indicators are the province's,
inherited by every unit; the province's own figures (the overview) are computed on its units' pooled
populations, never as an average of their scores; ranks order totals descending, ties by unit code.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

import numpy as np

from chiso.core.calendar import WorkingCalendar
from chiso.contract.model import PORTAL_DATETIME_FORMAT
from chiso.core.settings import REPO_ROOT
from chiso.simulator import catalogue, dossiers, feedback
from chiso.simulator.world import Unit, World

REGISTRY = REPO_ROOT / "dbt_project" / "seeds" / "rule_registry.csv"
RULE_VERSION = "portal-2026"
GROUP_BLOCKS = {"CKMB": "CKMB_CongKhaiMinhBach", "TDGQ": "TDGQ_TienDoGiaiQuyet", "ONLINE": "ONLINE_DichVuTrucTuyen",
                "TTTT": "TTTT_ThanhToanTrucTuyen", "MDSH": "MDSH_SoHoaHoSo", "MDHL": "MDHL_MucDoHaiLong"}
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Rule:
    code: str
    group: str
    name_vi: str
    max_points: Decimal
    rule: str
    cap: Decimal | None
    zero_rate: Decimal | None
    zero_score: str
    is_scored: bool


@lru_cache(maxsize=1)
def rules() -> dict[str, Rule]:
    with REGISTRY.open(encoding="utf-8") as handle:
        return {row["indicator_code"]: Rule(
            row["indicator_code"], row["indicator_group"], row["name_vi"], Decimal(row["max_points"]), row["rule"],
            Decimal(row["cap_threshold"]) if row["cap_threshold"] else None,
            Decimal(row["zero_denominator_rate"]) if row["zero_denominator_rate"] else None,
            row["zero_denominator_score"], row["is_scored"] == "true",
        ) for row in csv.DictReader(handle) if row["rule_version"] == RULE_VERSION}


def _round(value: Decimal | None) -> float | None:
    return None if value is None else float(value.quantize(CENT, rounding=ROUND_HALF_UP))


def metric(code: str, numerator: int | None, denominator: int | None) -> dict:
    """One published metric: the portal scores from the exact ratio and rounds only the results."""
    rule = rules()[code]
    ratio = Decimal(numerator) * 100 / Decimal(denominator) if denominator else None
    if not rule.is_scored:
        score = None
    elif ratio is None:
        score = {"zero": Decimal(0), "full": rule.max_points}.get(rule.zero_score)
    elif rule.rule == "capped":
        score = rule.max_points if ratio >= rule.cap else rule.max_points * ratio / rule.cap
    else:
        score = rule.max_points * ratio / 100
    return {"code": code, "name": rule.name_vi, "numerator": numerator, "denominator": denominator,
            "ratio": _round(ratio if ratio is not None else rule.zero_rate), "score": _round(score),
            "maxScore": float(rule.max_points)}


# ----------------------------------------------------------------------------- counting

def _dossier_counts(seed: int, world: World, group: str, day: date):
    """Per unit code: year-to-date counts from the province's generation blocks, and the sets of
    procedures behind the procedure-level counts (so that a parent's can be their union)."""
    end = np.datetime64(day + timedelta(days=1), "m")
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    procedure_sets: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for month in range(1, day.month + 1):
        b = dossiers.block(seed, world, group, day.year, month)
        received = b.received_at < end
        ended = received & ~np.isnat(b.ended_at) & (b.ended_at < end)
        effective_due = np.where(np.isnat(b.new_due_at), b.due_at, b.new_due_at)
        on_time = received & np.where(ended, b.ended_at <= effective_due, effective_due >= end)
        rated = received & b.rated & ended
        eligible, written, individuals = _procedure_flags(b)
        flags = {
            "received": received, "on_time": on_time, "online": received & b.online, "ended": ended,
            "eligible": received & eligible, "online_eligible": received & eligible & b.online,
            "ended_written": ended & written, "e_result_written": ended & written & b.e_result,
            "fee": received & (b.fee > 0), "paid": received & (b.paid > 0), "synced": received & b.synced,
            "e_result": ended & b.e_result, "digitised": received & b.digitised, "reused": received & b.reused,
            "personal_store": received & b.personal_store, "vneid": received & b.vneid & b.online,
            "rated": rated, "dissatisfied": rated & ~b.satisfied,
        }
        for name, mask in flags.items():
            per_unit = np.bincount(b.unit_of[mask], minlength=len(b.units))
            for u, value in enumerate(per_unit.tolist()):
                counts[b.units[u].code][name] += value
        for u, unit in enumerate(b.units):
            mine = b.unit_of == u
            procedures = b.mixes[u].procedures
            for name, mask in (("with_fee", flags["fee"]), ("paid", flags["paid"]),
                               ("vneid", flags["vneid"] & individuals), ("individual", received & individuals)):
                procedure_sets[unit.code][name].update(procedures[k].code for k in np.unique(b.procedure[mine & mask]))
    for code, sets in procedure_sets.items():
        for name, values in sets.items():
            counts[code][f"procedures_{name}"] = len(values)
    return counts, procedure_sets


def _procedure_flags(b) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per dossier of a block: its procedure is full-online eligible, returns a written result, serves
    individuals."""
    flags = np.zeros((3, len(b.unit_of)), dtype=bool)
    for u, mix in enumerate(b.mixes):
        mine = b.unit_of == u
        table = np.array([(p.full_online_eligible, p.written_result, p.individuals) for p in mix.procedures],
                         dtype=bool).reshape(-1, 3)
        flags[:, mine] = table[b.procedure[mine]].T
    return flags[0], flags[1], flags[2]


def _pooled(counts: list[dict[str, int]], procedure_sets: list[dict[str, set]] | None = None) -> dict[str, int]:
    """A parent's counts: its children's populations pooled (never an average of their rates)."""
    pooled: dict[str, int] = defaultdict(int)
    for child in counts:
        for name, value in child.items():
            pooled[name] += value
    for name in {n for sets in procedure_sets or [] for n in sets}:
        pooled[f"procedures_{name}"] = len(set().union(*(sets.get(name, set()) for sets in procedure_sets)))
    return pooled


def _feedback_counts(seed: int, unit: Unit, day: date) -> dict[str, int]:
    end = datetime.combine(day + timedelta(days=1), datetime.min.time())
    counts = defaultdict(int)
    cursor = max(date(day.year, 1, 1), unit.valid_from)
    while cursor <= day:
        for item in feedback._items_sent(seed, unit, cursor):
            events = item["_events"]
            deadline = datetime.strptime(item["HanXuLy"], PORTAL_DATETIME_FORMAT)
            answered = events["answered"] if events["answered"] < end else None
            on_time = (answered is not None and answered <= deadline) or (answered is None and deadline >= end)
            published = events["published"] < end
            disliked = published and item["SoLuotKhongThich"] > item["SoLuotThich"]
            complained = published and item["CoKhieuNaiTiep"] == 1
            counts["petitions"] += 1
            counts["on_time"] += on_time
            counts["satisfied"] += on_time and not disliked and not complained
            counts["about_procedures"] += item["PhanLoai"] == 2
            counts["about_staff"] += item["PhanLoai"] == 3
        cursor += timedelta(days=1)
    return counts


@lru_cache(maxsize=1)
def _calendar() -> WorkingCalendar:
    return WorkingCalendar.from_seeds()


def _publication_counts(seed: int, world: World, publisher: str, day: date) -> dict[str, int]:
    calendar = _calendar()
    counts = defaultdict(int)
    for month in range(1, day.month + 1):
        for event in catalogue._decisions_of_month(seed, world, publisher, day.year, month):
            decided = datetime.strptime(event["NgayQuyetDinh"], PORTAL_DATETIME_FORMAT).date()
            if decided > day:
                continue
            effective = datetime.strptime(event["NgayHieuLucVanBan"], PORTAL_DATETIME_FORMAT).date()
            made_public = event["_made_public"]
            working_days = calendar.working_days_between(decided, effective)
            counts["published"] += 1
            counts["published_on_time"] += working_days >= 5
            counts["due_public"] += 1
            public_working_days = calendar.working_days_between(decided, made_public)
            counts["public_on_time"] += made_public <= day and public_working_days <= 5
            counts["public"] += made_public <= day
            counts["public_full"] += made_public <= day and event["DayDuBayBoPhan"] == 1
    return counts


# ----------------------------------------------------------------------------- the document

def _unit_detail(unit: Unit, c: dict[str, int], pakn: dict[str, int], publications: dict[str, int]) -> dict:
    received = c["received"]
    overdue = received - c["on_time"]
    groups = {
        "CKMB": [metric("PUBLISH_ON_TIME", publications["published_on_time"], publications["published"]),
                 metric("PUBLIC_UPDATE_ON_TIME", publications["public_on_time"], publications["due_public"]),
                 metric("PUBLIC_CONTENT_FULL", publications["public_full"], publications["public"]),
                 metric("DOSSIER_SYNC", c["synced"], received)],
        "MDSH": [metric("ORIGINAL_RESULT_AVAILABLE", c["e_result_written"], c["ended_written"]),
                 metric("SO_HOA_GIAY_TO_GIAI_QUYET", c["digitised"], received),
                 metric("REUSED_DIGITIZED_DATA", c["reused"], received),
                 metric("SYNCED_WITH_DVCQG_PERSONAL_STORAGE", c["personal_store"], received),
                 metric("CITIZEN_DATA_CONNECTED_DOSSIER", c["vneid"], received),
                 metric("CITIZEN_DATA_CONNECTED_FORMALITY", c["procedures_vneid"], c["procedures_individual"]),
                 metric("ELECTRONIC_CERTIFIED_COPY", None, None)],
        "MDHL": [metric("PETITION_CLASSIFICATION_TTHC", pakn["about_procedures"], pakn["petitions"]),
                 metric("DOSSIER_RECEIVING_SATISFACTION", received - overdue - c["dissatisfied"], received),
                 metric("PETITION_PROCESSING_ON_TIME", pakn["on_time"], pakn["petitions"]),
                 metric("PETITION_HANDLING_SATISFACTION", pakn["satisfied"], pakn["petitions"]),
                 metric("PETITION_CLASSIFICATION_STAFF", pakn["about_staff"], pakn["petitions"])],
    }
    on_time = metric("ON_TIME", c["on_time"], received)
    online = metric("ONLINE", c["online_eligible"], c["eligible"])
    payment = [metric("DOSSIER_ONLINE_PAYMENT", c["paid"], c["fee"]),
               metric("ONLINE_FORMALITY_PAYMENT", c["procedures_paid"], c["procedures_with_fee"]),
               metric("FEE_FORMALITY_INTEGRATED", c["procedures_with_fee"], c["procedures_with_fee"])]

    def total(scores) -> float:
        return _round(sum((Decimal(str(s)) for s in scores if s is not None), Decimal(0)))

    group_scores = {"CKMB": total(m["score"] for m in groups["CKMB"]), "TDGQ": on_time["score"],
                    "ONLINE": online["score"], "TTTT": total(m["score"] for m in payment),
                    "MDSH": total(m["score"] for m in groups["MDSH"]), "MDHL": total(m["score"] for m in groups["MDHL"])}
    max_of = {g: float(sum((r.max_points for r in rules().values() if r.group == g and r.is_scored), Decimal(0)))
              for g in GROUP_BLOCKS}

    def block(group: str, extra: dict | None = None, metrics: list | None = None) -> dict:
        score = group_scores[group] or 0
        body = {"score": score, "maxScore": max_of[group], "ratio": _round(Decimal(str(score)) * 100 /
                                                                           Decimal(str(max_of[group])))}
        if metrics is not None:
            body["metrics"] = metrics
        return {**body, **(extra or {})}

    components = {
        GROUP_BLOCKS["TDGQ"]: {"totalReceived": received, "totalOnTime": c["on_time"], "totalOverdue": overdue,
                               "avgProcessingDays": None, "ratio": on_time["ratio"], "score": on_time["score"],
                               "maxScore": on_time["maxScore"]},
        GROUP_BLOCKS["CKMB"]: block("CKMB", metrics=groups["CKMB"]),
        GROUP_BLOCKS["MDSH"]: block("MDSH", metrics=groups["MDSH"]),
        GROUP_BLOCKS["ONLINE"]: {"score": online["score"], "maxScore": online["maxScore"], "ratio": online["ratio"]},
        GROUP_BLOCKS["TTTT"]: block("TTTT", {"totalDossierOnlinePaymentSuccess": c["paid"],
                                             "totalDossierFinancialObligation": c["fee"],
                                             "totalDossierOnlineFormalityPaymentSuccess": c["procedures_paid"],
                                             "totalFeeFormality": c["procedures_with_fee"]}),
        GROUP_BLOCKS["MDHL"]: block("MDHL", {"totalPetitions": pakn["petitions"],
                                             "classifiedPetitions": pakn["about_procedures"] + pakn["about_staff"],
                                             "totalDossiers": received, "averageScore": None}, groups["MDHL"]),
    }
    total_score = total(group_scores.values())
    return {"departmentId": unit.code, "departmentName": unit.name, "departmentCode": unit.portal_code or unit.code,
            "childGroup": unit.kind, "totalScore": total_score,
            "ratio": total_score, "scoreDelta": None, "groupScores": group_scores, "componentIndicators": components}


def published_evaluation(seed: int, world: World, province_code: str, day: date) -> dict:
    """The province's year-to-date evaluation as of ``day``, in the portal's shape."""
    province = next((u for u in world.units if u.kind == "PROVINCE" and u.portal_code == province_code), None)
    if province is None or province.code not in world.groups:
        raise ValueError(f"no province with code {province_code!r} receives dossiers in world {world.name}")
    evaluated = [u for u in world.groups[province.code] if u.active_on(day) and u.kind != "PROVINCE"]
    counts, procedure_sets = _dossier_counts(seed, world, province.code, day)
    publications = _publication_counts(seed, world, province.code, day)
    feedback_counts = {u.code: _feedback_counts(seed, u, day) for u in evaluated}
    units = [_unit_detail(u, counts[u.code], feedback_counts[u.code], publications) for u in evaluated]
    order = sorted(units, key=lambda u: (-(u["totalScore"] or 0), u["departmentCode"]))
    group_position: dict[str, int] = defaultdict(int)
    for rank, unit in enumerate(order, start=1):
        group_position[unit["childGroup"]] += 1
        unit["rank"], unit["groupRank"] = rank, group_position[unit["childGroup"]]
    province_detail = _unit_detail(
        province, _pooled([counts[u.code] for u in evaluated], [procedure_sets[u.code] for u in evaluated]),
        _pooled([feedback_counts[u.code] for u in evaluated]), publications)
    return {
        "metadata": {"province": province.name, "provinceCode": province_code, "rootDepartmentId": province.code,
                     "runDateStr": day.strftime("%d%m%Y"), "timeType": "year", "year": day.year, "period": None,
                     "periodLabel": f"Năm {day.year}", "extractedAt": f"{day.isoformat()}T07:00:00Z"},
        "overview": {"departmentName": province.name, "departmentCode": province_code,
                     "totalScore": province_detail["totalScore"], "totalMaxScore": 100,
                     "ratio": province_detail["totalScore"]},
        "totalUnitsCount": len(units),
        "agencyCount": sum(u["childGroup"] == "AGENCY" for u in units),
        "communeCount": sum(u["childGroup"] == "COMMUNE" for u in units),
        "unitsDetail": order,
    }
