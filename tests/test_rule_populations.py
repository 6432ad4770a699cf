"""Who counts in ON_TIME and DOSSIER_RECEIVING_SATISFACTION (issue 21; docs/engine.md "Rule populations").

1. The choice between the two readings of ON_TIME's population is made on the portal's real published counts
   (../shared/reference/gialai-2026-10-10.json), and the active rule version follows it.
2. Hand-made dossiers (an October dossier finished in November; an overdue-and-dissatisfied dossier) go into a
   real warehouse; the engine's own population logic (fct_dossier_indicator_contributions through the
   explain_indicator macro) must give the values that an independent calculation gives here, for the active
   reading and, for ON_TIME, for the other reading (explain_indicator's population argument).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest

from chiso.publish.explain import explain
from chiso.transform.rule_populations import RECEIVED_IN_PERIOD, compare_on_time_readings, compare_satisfaction, load
from chiso.transform.runner import run_dbt
from chiso.core.warehouse import ensure_schema

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference" / "gialai-2026-10-10.json"
REGISTRY = ROOT / "dbt_project" / "seeds" / "rule_registry.csv"
ACTIVE_VERSION = "portal-2026"   # macros/active_rules.sql's default


def registry_row(indicator_code: str, rule_version: str) -> dict:
    with REGISTRY.open(encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle)
                if row["indicator_code"] == indicator_code and row["rule_version"] == rule_version]
    assert len(rows) == 1
    return rows[0]


# ---------------------------------------------------------------- question 1 on real published counts

@pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference is not beside the checkout")
def test_the_published_counts_choose_received_in_the_period_and_the_active_version_follows():
    comparison = compare_on_time_readings(load(REFERENCE))
    # "received in the period": ON_TIME's population equals the guide's received-in-period count everywhere.
    assert comparison.units == 149 and comparison.exact_received_in_period == 149
    assert comparison.carried_over_observed == 0
    # "received or processed": dossiers open on 1 January would have been added — thousands, in most units.
    assert comparison.units_expected_carry_over >= 100 and comparison.expected_carry_over_total > 1_000
    assert comparison.best_reading == RECEIVED_IN_PERIOD
    for version in ("portal-2026", "tech-note-2022"):
        assert registry_row("ON_TIME", version)["denominator_definition"].startswith("dossiers received in the period")


@pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference is not beside the checkout")
def test_the_published_satisfaction_counts_cannot_separate_its_readings_so_the_wording_decides():
    comparison = compare_satisfaction(load(REFERENCE))
    assert comparison.same_population_as_on_time == comparison.units == 149
    # Some units have dissatisfied dossiers, but their count (and its overlap with overdue) is unpublished.
    assert comparison.units_below_on_time > 0 and comparison.negative_numerators == 0
    row = registry_row("DOSSIER_RECEIVING_SATISFACTION", ACTIVE_VERSION)
    assert "Tỷ lệ hồ sơ giải quyết quá hạn + Tỷ lệ hồ sơ TTHC có phản ánh" in row["source"]


# ---------------------------------------------------------------- hand-made dossiers, both readings

@dataclass(frozen=True)
class Dossier:
    code: str
    received: date
    due: date
    ended: date | None = None
    dissatisfied_on: date | None = None

    @property
    def overdue_from(self) -> date | None:
        """The first day the dossier counts as overdue: the day after its due date, if it ended after it
        or is still open then."""
        if self.ended is not None and self.ended <= self.due:
            return None
        return self.due + timedelta(days=1)


UNIT = "U.HANDMADE"
OCTOBER_TO_NOVEMBER = Dossier("HM-OCT-NOV", received=date(2024, 10, 28), due=date(2024, 11, 6), ended=date(2024, 11, 4))
LATE_ACROSS_MONTHS = Dossier("HM-OCT-LATE", received=date(2024, 10, 29), due=date(2024, 10, 31), ended=date(2024, 11, 5))
OVERDUE_AND_DISSATISFIED = Dossier("HM-NOV-BAD", received=date(2024, 11, 4), due=date(2024, 11, 8),
                                   ended=date(2024, 11, 12), dissatisfied_on=date(2024, 11, 13))
ON_TIME_AND_SATISFIED = Dossier("HM-NOV-GOOD", received=date(2024, 11, 5), due=date(2024, 11, 11), ended=date(2024, 11, 7))
DOSSIERS = (OCTOBER_TO_NOVEMBER, LATE_ACROSS_MONTHS, OVERDUE_AND_DISSATISFIED, ON_TIME_AND_SATISFIED)
AS_OF = date(2024, 11, 30)


def period_start(period: str, day: date) -> date:
    if period == "month":
        return day.replace(day=1)
    if period == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)


def overdue_by(dossier: Dossier, as_of: date) -> bool:
    return dossier.overdue_from is not None and dossier.overdue_from <= as_of


def on_time_value(reading: str, period: str, as_of: date) -> tuple[int, int]:
    """ON_TIME (numerator, denominator) under one reading, from the dossiers' dates alone."""
    start = period_start(period, as_of)
    if reading == "received_in_period":
        population = [d for d in DOSSIERS if start <= d.received <= as_of]
    else:   # received or processed in the period: also those received before it and not ended before it
        population = [d for d in DOSSIERS if d.received <= as_of
                      and (d.received >= start or d.ended is None or d.ended >= start)]
    return sum(not overdue_by(d, as_of) for d in population), len(population)


def satisfaction_value(reading: str, period: str, as_of: date) -> tuple[int, int]:
    """DOSSIER_RECEIVING_SATISFACTION (numerator, denominator) over the dossiers received in the period."""
    start = period_start(period, as_of)
    population = [d for d in DOSSIERS if start <= d.received <= as_of]
    overdue = {d.code for d in population if overdue_by(d, as_of)}
    dissatisfied = {d.code for d in population if d.dissatisfied_on and d.dissatisfied_on <= as_of}
    if reading == "subtract_both":   # 100% − (% overdue + % dissatisfied)
        return len(population) - len(overdue) - len(dissatisfied), len(population)
    return len(population) - len(overdue | dissatisfied), len(population)   # each dossier once


@pytest.fixture(scope="module")
def warehouse(make_database):
    """An empty warehouse with the engine's dossier models built, then the hand-made dossiers in fct_dossiers."""
    url = make_database("chiso_populations")
    ensure_schema(url)
    run_dbt(["seed"], url)
    run_dbt(["run", "--select", "+fct_dossier_indicator_contributions", "+int_unit_lineage"], url)
    with psycopg.connect(url) as conn:
        for d in DOSSIERS:
            conn.execute("""
                insert into marts.fct_dossiers (dossier_code, unit_code, status_code, is_received, received_at,
                    received_date, effective_due_at, supplement_request_count, is_ended, ended_at, ended_date,
                    overdue_from_date, is_rated_dissatisfied, rated_date)
                values (%s, %s, 10, true, %s, %s, %s, 0, %s, %s, %s, %s, %s, %s)""",
                (d.code, UNIT, d.received, d.received, d.due, d.ended is not None, d.ended, d.ended,
                 d.overdue_from, d.dissatisfied_on is not None, d.dissatisfied_on))
        conn.execute("""insert into intermediate.int_unit_lineage (member_unit_code, reporting_unit_code, window_from)
                        values (%s, %s, date '2024-01-01')""", (UNIT, UNIT))
    return url


def engine_value(url: str, indicator: str, period: str, as_of: date,
                 population: str = "received_in_period") -> tuple[int, int]:
    columns, rows = explain(UNIT, indicator, as_of, period, url, population=population)
    return sum(row[columns.index("numerator_contribution")] for row in rows), len(rows)


@pytest.mark.parametrize("period, received_in_period, received_or_processed", [
    # November: the two October dossiers were processed in November but received in October.
    ("month", (1, 2), (2, 4)),
    ("quarter", (2, 4), (2, 4)),
    ("year", (2, 4), (2, 4)),
])
def test_an_october_dossier_finished_in_november_counts_by_reception_day(warehouse, period, received_in_period,
                                                                         received_or_processed):
    assert on_time_value("received_in_period", period, AS_OF) == received_in_period
    assert on_time_value("received_or_processed_in_period", period, AS_OF) == received_or_processed
    # The active version follows the published counts: received in the period.
    assert engine_value(warehouse, "ON_TIME", period, AS_OF) == on_time_value("received_in_period", period, AS_OF)
    # The other reading, had on demand from the same contributions (explain_indicator's population).
    assert engine_value(warehouse, "ON_TIME", period, AS_OF, "received_or_processed_in_period") \
        == on_time_value("received_or_processed_in_period", period, AS_OF)
    # And October, as of its last day, holds both October dossiers under either reading.
    assert engine_value(warehouse, "ON_TIME", "month", date(2024, 10, 31)) == (2, 2) \
        == on_time_value("received_or_processed_in_period", "month", date(2024, 10, 31))


@pytest.mark.parametrize("as_of, subtract_both, count_once", [
    (date(2024, 11, 8), (2, 2), (2, 2)),      # before anything went wrong
    (date(2024, 11, 9), (1, 2), (1, 2)),      # overdue
    (date(2024, 11, 13), (0, 2), (1, 2)),     # and rated dissatisfied: subtracted again (guide §5.4)
])
def test_an_overdue_and_dissatisfied_dossier_is_subtracted_twice(warehouse, as_of, subtract_both, count_once):
    assert satisfaction_value("subtract_both", "month", as_of) == subtract_both
    assert satisfaction_value("count_once", "month", as_of) == count_once
    assert engine_value(warehouse, "DOSSIER_RECEIVING_SATISFACTION", "month", as_of) == subtract_both


def test_only_on_time_has_another_population_reading(warehouse):
    with pytest.raises(ValueError, match="only ON_TIME has another population reading"):
        explain(UNIT, "DOSSIER_RECEIVING_SATISFACTION", AS_OF, "month", warehouse,
                population="received_or_processed_in_period")
    # The macro refuses it too, for `dbt show` users (dbt reports it as a failed inline compilation).
    from chiso.transform.runner import compile_inline
    with pytest.raises(Exception, match="could not run"):
        compile_inline("{{ explain_indicator('U.HANDMADE', 'ONLINE', '2024-11-30', 'month', "
                       "'received_or_processed_in_period') }}", warehouse)
