"""Which population the portal's published counts follow, for ON_TIME and DOSSIER_RECEIVING_SATISFACTION.

    python scripts/compare_rule_populations.py [../shared/reference/gialai-2026-10-10.json]

The official formula guide ("Mô tả công thức tính chỉ số 766", quoted in docs/engine.md) leaves two
questions open or disputed (issue 21):

1. ON_TIME: "Tổng số hồ sơ được tiếp nhận, xử lý trong kỳ" reads either as the dossiers *received* in
   the period (the engine, rule version portal-2026) or as those *received or processed* in it, which adds
   the dossiers received earlier and still being processed when the period starts (the domain brief).
2. DOSSIER_RECEIVING_SATISFACTION: "100% − (tỷ lệ quá hạn + tỷ lệ có PAKN hoặc dislike)" subtracts a
   dossier both overdue and rated dissatisfied twice; counting each dossier once is the other reading.

The published evaluation gives, per unit, the ON_TIME population (TDGQ totalReceived) and, beside it,
sub-indicators whose population the guide defines as the dossiers received in the period (REUSED_DIGITIZED_DATA
and SYNCED_WITH_DVCQG_PERSONAL_STORAGE: "Tổng số hồ sơ có Ngày tiếp nhận trong kỳ"). Under the first reading
the two are equal; under the second, ON_TIME's exceeds it by the dossiers carried over from before the
period, which Little's law estimates from published figures as (dossiers received per day) × (average
processing days). This module computes both from a published document, independently of the engine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

# The sub-indicators whose denominator the guide defines as the dossiers with a reception day in the
# period (§4.3 and §4.4: "Tổng số hồ sơ có Ngày tiếp nhận trong kỳ"). CITIZEN_DATA_CONNECTED_DOSSIER's
# "Tổng số hồ sơ TTHC" is not as explicit, so it is left out of the yardstick.
RECEIVED_IN_PERIOD_YARDSTICKS = ("REUSED_DIGITIZED_DATA", "SYNCED_WITH_DVCQG_PERSONAL_STORAGE")

RECEIVED_IN_PERIOD = "received_in_period"
RECEIVED_OR_PROCESSED = "received_or_processed_in_period"


@dataclass(frozen=True)
class UnitPopulations:
    unit_code: str
    on_time_population: int          # TDGQ totalReceived = totalOnTime + totalOverdue
    received_in_period: int          # the yardsticks' common denominator
    on_time: int
    overdue: int
    average_processing_days: float | None
    satisfaction_numerator: int | None
    satisfaction_denominator: int | None

    @property
    def carried_over(self) -> int:
        """Dossiers in ON_TIME's published population beyond those received in the period."""
        return self.on_time_population - self.received_in_period


def _metrics(unit: dict) -> dict[str, dict]:
    return {metric["code"]: metric
            for block in unit["componentIndicators"].values()
            for metric in block.get("metrics") or []}


def unit_populations(document: dict) -> list[UnitPopulations]:
    """Per published unit, ON_TIME's population beside the received-in-period yardstick."""
    units = []
    for unit in document["unitsDetail"]:
        progress = unit["componentIndicators"]["TDGQ_TienDoGiaiQuyet"]
        metrics = _metrics(unit)
        yardsticks = {metrics[code]["denominator"] for code in RECEIVED_IN_PERIOD_YARDSTICKS}
        if len(yardsticks) != 1:
            raise ValueError(f"{unit['departmentCode']}: the received-in-period denominators disagree: {yardsticks}")
        satisfaction = metrics["DOSSIER_RECEIVING_SATISFACTION"]
        units.append(UnitPopulations(
            unit_code=unit["departmentCode"],
            on_time_population=progress["totalReceived"],
            received_in_period=yardsticks.pop() or 0,
            on_time=progress["totalOnTime"],
            overdue=progress["totalOverdue"],
            average_processing_days=progress.get("avgProcessingDays"),
            satisfaction_numerator=satisfaction.get("numerator"),
            satisfaction_denominator=satisfaction.get("denominator"),
        ))
    return units


def days_in_period(document: dict) -> int:
    """Calendar days from 1 January of the evaluated year to the extraction day (the year-to-date view)."""
    metadata = document["metadata"]
    if metadata.get("timeType") != "year":
        raise ValueError("only a year-to-date evaluation is compared")
    extracted = datetime.fromisoformat(metadata["extractedAt"].replace("Z", "+00:00")).date()
    return (extracted - date(metadata["year"], 1, 1)).days + 1


def expected_carry_over(unit: UnitPopulations, days: int) -> float:
    """Little's law: dossiers open on the period's first day ≈ arrivals per day × average days open.

    Published average processing days are working days, so the calendar-day rate makes this a low estimate."""
    if not unit.average_processing_days or not unit.received_in_period:
        return 0.0
    return unit.received_in_period / days * unit.average_processing_days


@dataclass(frozen=True)
class OnTimeComparison:
    units: int
    units_with_dossiers: int
    # Units whose published population is what each reading predicts.
    exact_received_in_period: int
    carried_over_observed: int                 # sum of carried_over over all units
    units_expected_carry_over: int             # units where the other reading expects >= 1 carried-over dossier
    expected_carry_over_total: float           # and how many in all
    largest_unit: UnitPopulations

    @property
    def best_reading(self) -> str:
        """The reading that reproduces the published populations: each unit's count equal to the prediction."""
        if self.exact_received_in_period == self.units and self.units_expected_carry_over > 0:
            return RECEIVED_IN_PERIOD
        if self.carried_over_observed > 0:
            return RECEIVED_OR_PROCESSED
        raise ValueError("the published counts do not separate the readings")


def compare_on_time_readings(document: dict) -> OnTimeComparison:
    units = unit_populations(document)
    days = days_in_period(document)
    expected = [expected_carry_over(unit, days) for unit in units]
    return OnTimeComparison(
        units=len(units),
        units_with_dossiers=sum(1 for unit in units if unit.on_time_population),
        exact_received_in_period=sum(1 for unit in units if unit.carried_over == 0),
        carried_over_observed=sum(unit.carried_over for unit in units),
        units_expected_carry_over=sum(1 for value in expected if value >= 1),
        expected_carry_over_total=sum(expected),
        largest_unit=max(units, key=lambda unit: unit.on_time_population),
    )


@dataclass(frozen=True)
class SatisfactionComparison:
    units: int
    same_population_as_on_time: int           # DOSSIER_RECEIVING_SATISFACTION's denominator = totalReceived
    units_below_on_time: int                   # numerator < totalOnTime: some dossier rated dissatisfied
    dissatisfied_gap_total: int                # sum of totalOnTime − numerator
    largest_gap: int
    negative_numerators: int


def compare_satisfaction(document: dict) -> SatisfactionComparison:
    """What the published figures say about DOSSIER_RECEIVING_SATISFACTION's double subtraction.

    With n received, o overdue and d dissatisfied of which b are also overdue, the literal reading publishes
    n − o − d and the count-once reading n − o − (d − b). The gap to totalOnTime (n − o) is d or d − b: the
    portal never publishes d or b, so the gap cannot tell the readings apart."""
    units = unit_populations(document)
    gaps = [unit.on_time - (unit.satisfaction_numerator or 0) for unit in units]
    return SatisfactionComparison(
        units=len(units),
        same_population_as_on_time=sum(1 for unit in units
                                       if (unit.satisfaction_denominator or 0) == unit.on_time_population),
        units_below_on_time=sum(1 for gap in gaps if gap > 0),
        dissatisfied_gap_total=sum(gaps),
        largest_gap=max(gaps),
        negative_numerators=sum(1 for unit in units if (unit.satisfaction_numerator or 0) < 0),
    )


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
