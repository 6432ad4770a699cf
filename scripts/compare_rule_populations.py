"""Print which reading of ON_TIME's population (and what of DOSSIER_RECEIVING_SATISFACTION's double
subtraction) the portal's published counts reproduce (issue 21; docs/engine.md "Rule populations").

    .venv/bin/python scripts/compare_rule_populations.py [../shared/reference/gialai-2026-10-10.json]
"""

from __future__ import annotations

import sys
from pathlib import Path

from chiso.transform.rule_populations import (compare_on_time_readings, compare_satisfaction, days_in_period,
                                    expected_carry_over, load)

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "reference" / "gialai-2026-10-10.json"


def main(path: Path) -> None:
    document = load(path)
    on_time = compare_on_time_readings(document)
    largest = on_time.largest_unit
    print(f"{path.name}: {on_time.units} units ({on_time.units_with_dossiers} with dossiers), "
          f"{days_in_period(document)} days of the year to date")
    print("ON_TIME population (TDGQ totalReceived) against the dossiers received in the period "
          "(REUSED_DIGITIZED_DATA / SYNCED_WITH_DVCQG_PERSONAL_STORAGE denominators):")
    print(f"  received_in_period:              predicts equal counts;   equal in {on_time.exact_received_in_period}"
          f"/{on_time.units} units")
    print(f"  received_or_processed_in_period: predicts more by the carry-over; observed carry-over "
          f"{on_time.carried_over_observed} dossiers, expected (Little's law) "
          f"{on_time.expected_carry_over_total:.0f} in {on_time.units_expected_carry_over} units")
    print(f"  largest unit {largest.unit_code}: {largest.on_time_population} published, "
          f"{largest.received_in_period} received in the period, expected carry-over "
          f"{expected_carry_over(largest, days_in_period(document)):.1f}")
    print(f"  best reading: {on_time.best_reading}")
    satisfaction = compare_satisfaction(document)
    print("DOSSIER_RECEIVING_SATISFACTION:")
    print(f"  denominator = ON_TIME's population in {satisfaction.same_population_as_on_time}/{satisfaction.units}"
          f" units; numerator below totalOnTime in {satisfaction.units_below_on_time} units "
          f"(gap {satisfaction.dissatisfied_gap_total} dossiers in all, at most {satisfaction.largest_gap});"
          f" negative numerators: {satisfaction.negative_numerators}")
    print("  the gap is the dissatisfied count under the literal reading and the on-time dissatisfied count "
          "under count-once: unpublished, so the counts cannot separate the readings")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)
