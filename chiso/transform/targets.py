"""The target registry: validation of the seeds users edit, and the rules that explain targets.

    python -m chiso.transform.targets check [--seeds DIR]

checks dbt_project/seeds/targets/*.csv and plan_metric_registry.csv against the rule registry and prints
one line per problem, naming the file, the row (the CSV line number) and the field; it exits 1 if any row
is rejected. Warnings (a plan number the rule does not reproduce, a metric without data) do not fail.
docs/targets.md describes every column.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

SEEDS = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds"

COMPARATORS = (">=", ">", "<=", "<")
KINDS = ("absolute", "baseline_plus_points", "relative_change_points", "relative_change_percent", "milestone")
BASELINE_KINDS = ("baseline_plus_points", "relative_change_points", "relative_change_percent")
CALENDAR_MEASURES = ("day", "month", "quarter", "year")
GROUPS = ("CKMB", "TDGQ", "ONLINE", "TTTT", "MDSH", "MDHL")
SCORE_CODES = ("TOTAL", "RANK")
SCOPE = re.compile(r"^(unit|communes_of|units_of):([A-Za-z0-9_.]+)$")
TRAILING = re.compile(r"^trailing_([0-9]+)d$")
TARGET_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
PEER_SETS = ("district", "province_communes", "province_units")
# 766 sub-indicators whose populations are distinct procedures (or the province's publications, or a
# snapshot): a value over a campaign window or trailing days is not a sum of daily values.
PROCEDURE_LEVEL = frozenset({
    "PUBLISH_ON_TIME", "PUBLIC_UPDATE_ON_TIME", "PUBLIC_CONTENT_FULL", "ONLINE_FORMALITY_PAYMENT",
    "FEE_FORMALITY_INTEGRATED", "CITIZEN_DATA_CONNECTED_FORMALITY", "ELECTRONIC_CERTIFIED_COPY",
    "PROCEDURES_ONLINE", "ONLINE_SERVICES_WITH_DOSSIER",
})


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    field: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}" + (" (warning)" if self.severity == "warning" else "")


@dataclass
class Registry:
    """What targets may name: the 766 sub-indicators and the plan metrics."""
    indicators: set[str] = field(default_factory=set)
    metrics: dict[str, dict] = field(default_factory=dict)
    plans: set[str] = field(default_factory=set)

    def kind_of(self, code: str) -> str | None:
        if code in self.indicators:
            return "sub_indicator"
        if code in GROUPS:
            return "group"
        if code in SCORE_CODES:
            return code.lower()
        if code in self.metrics:
            return "plan_metric"
        return None

    def is_additive(self, code: str) -> bool:
        kind = self.kind_of(code)
        if kind == "sub_indicator":
            return code not in PROCEDURE_LEVEL
        if kind == "plan_metric":
            return self.metrics[code].get("is_additive", "").lower() == "true"
        return False


def read_csv(path: Path) -> list[tuple[int, dict]]:
    """(line number, row) for every data row; line 1 is the header."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [(number, row) for number, row in enumerate(csv.DictReader(handle), start=2)]


def parse_date(text: str) -> date:
    return date.fromisoformat(text)


def parse_measure(text: str) -> tuple[str, int | None]:
    """('month', None), ('window', None) or ('trailing', N); ValueError otherwise."""
    if text in CALENDAR_MEASURES or text == "window":
        return text, None
    match = TRAILING.match(text)
    if match and 1 <= int(match.group(1)) <= 366:
        return "trailing", int(match.group(1))
    raise ValueError(f"{text!r} is not a measure: use day, month, quarter, year, window or trailing_<N>d (N 1-366)")


def parse_scope(text: str) -> tuple[str, str]:
    match = SCOPE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a unit scope: use unit:<code>, communes_of:<code> or units_of:<code>")
    return match.group(1), match.group(2)


def round_to_step(value: Decimal, step: Decimal | None) -> Decimal:
    """Half-up to a multiple of ``step`` (the plan's rounding), else to 2 decimals."""
    if step:
        return (value / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def rule_target(kind: str, baseline: Decimal, change: Decimal, step: Decimal | None = None) -> Decimal:
    """The value the rule gives: baseline + points, or baseline × (1 + percent / 100), rounded as the plan did."""
    if kind == "relative_change_percent":
        raw = baseline * (1 + change / 100)
    elif kind in ("baseline_plus_points", "relative_change_points"):
        raw = baseline + change
    else:
        raise ValueError(f"{kind} targets have no rule value")
    return round_to_step(raw, step)


def _decimal(text: str) -> Decimal:
    value = Decimal(text)
    if not value.is_finite():
        raise InvalidOperation
    return value


def load_registry(seeds: Path = SEEDS) -> tuple[Registry, list[Problem]]:
    registry, problems = Registry(), []
    for _, row in read_csv(seeds / "rule_registry.csv"):
        registry.indicators.add(row["indicator_code"])
    metrics_file = seeds / "plan_metric_registry.csv"
    seen = set()
    for line, row in read_csv(metrics_file):
        code = row.get("metric_code", "")
        name = metrics_file.name
        if not code:
            problems.append(Problem(name, line, "metric_code", "is empty"))
            continue
        if code in seen:
            problems.append(Problem(name, line, "metric_code", f"{code!r} is defined twice"))
        if code in registry.indicators or code in GROUPS or code in SCORE_CODES:
            problems.append(Problem(name, line, "metric_code", f"{code!r} is already a 766 code (rule_registry, group or TOTAL/RANK)"))
        seen.add(code)
        if row.get("data_status") not in ("available", "no_data"):
            problems.append(Problem(name, line, "data_status", "must be available or no_data"))
        if row.get("is_additive") not in ("true", "false"):
            problems.append(Problem(name, line, "is_additive", "must be true or false"))
        if row.get("unit_of_measure") not in ("percent", "minutes", "days"):
            problems.append(Problem(name, line, "unit_of_measure", "must be percent, minutes or days"))
        registry.metrics[code] = row
    for line, row in read_csv(metrics_file):
        formula = row.get("formula", "")
        if formula in ("average", "ratio_percent", "external_index"):
            continue
        unknown = [t for t in re.findall(r"[A-Z][A-Z0-9_]+", formula) if t not in registry.metrics]
        if unknown or not formula:
            problems.append(Problem(metrics_file.name, line, "formula",
                                    f"{formula!r} is neither average, ratio_percent, external_index nor an expression of "
                                    f"registered metrics (unknown: {', '.join(unknown) or 'empty'})"))
    for line, row in read_csv(seeds / "targets" / "target_plans.csv"):
        if row.get("plan_id"):
            if row["plan_id"] in registry.plans:
                problems.append(Problem("target_plans.csv", line, "plan_id", f"{row['plan_id']!r} is defined twice"))
            registry.plans.add(row["plan_id"])
        else:
            problems.append(Problem("target_plans.csv", line, "plan_id", "is empty"))
        if not row.get("source_document_vi"):
            problems.append(Problem("target_plans.csv", line, "source_document_vi", "is empty: name the plan's document"))
        if row.get("issued_on"):
            try:
                parse_date(row["issued_on"])
            except ValueError:
                problems.append(Problem("target_plans.csv", line, "issued_on", f"{row['issued_on']!r} is not a date (YYYY-MM-DD)"))
        problems += _rhythm_problems(line, row)
    return registry, problems


RHYTHM_COLUMNS = ("report_every_days", "interim_report_day", "final_report_day")


def _rhythm_problems(line: int, row: dict) -> list[Problem]:
    """A campaign plan's reporting rhythm: all three days or none, whole numbers, interim before final."""
    given = {column: (row.get(column) or "").strip() for column in RHYTHM_COLUMNS}
    if not any(given.values()) and not (row.get("reporting_rhythm_vi") or "").strip():
        return []  # not a campaign plan
    problems = []
    days = {}
    for column, value in given.items():
        if not value.isdigit() or int(value) < 1:
            problems.append(Problem("target_plans.csv", line, column,
                                    f"{value!r} is not a whole number of days (a campaign plan needs all of "
                                    f"{', '.join(RHYTHM_COLUMNS)})"))
        else:
            days[column] = int(value)
    if len(days) == 3 and not days["report_every_days"] <= days["interim_report_day"] < days["final_report_day"]:
        problems.append(Problem("target_plans.csv", line, "interim_report_day",
                                f"the interim report (day {days['interim_report_day']}) must come after the first "
                                f"periodic one (day {days['report_every_days']}) and before the final one "
                                f"(day {days['final_report_day']})"))
    if not (row.get("reporting_rhythm_vi") or "").strip():
        problems.append(Problem("target_plans.csv", line, "reporting_rhythm_vi",
                                "is empty: quote the plan's own words for its reporting rhythm"))
    return problems


def check_targets(rows: Iterable[tuple[int, dict]], registry: Registry, file: str = "target_registry.csv") -> list[Problem]:
    """Every problem of the target rows: unknown codes, bad comparators, dates out of order…"""
    problems: list[Problem] = []
    seen: set[str] = set()

    def bad(line, column, message, severity="error"):
        problems.append(Problem(file, line, column, message, severity))

    for line, row in rows:
        row = {k: (v or "").strip() for k, v in row.items() if k is not None}
        for column, value in row.items():
            if value != unicodedata.normalize("NFC", value):
                bad(line, column, "is not in Unicode NFC (Vietnamese text must be NFC)")
        target_id = row.get("target_id", "")
        if not TARGET_ID.match(target_id):
            bad(line, "target_id", f"{target_id!r} is empty or has characters other than letters, digits, '-', '_', '.'")
        elif target_id in seen:
            bad(line, "target_id", f"{target_id!r} is used twice")
        seen.add(target_id)
        if row.get("plan_id") not in registry.plans:
            bad(line, "plan_id", f"{row.get('plan_id')!r} is not a plan of target_plans.csv")
        try:
            parse_scope(row.get("unit_scope", ""))
        except ValueError as exc:
            bad(line, "unit_scope", str(exc))
        code = row.get("indicator_code", "")
        kind_of_code = registry.kind_of(code)
        if kind_of_code is None:
            bad(line, "indicator_code", f"unknown indicator code {code!r}: not a 766 sub-indicator (rule_registry.csv), "
                                        f"a group ({', '.join(GROUPS)}), TOTAL, RANK or a plan metric (plan_metric_registry.csv)")
        elif kind_of_code == "plan_metric" and registry.metrics[code].get("data_status") == "no_data":
            bad(line, "indicator_code", f"{code} has no data yet: the target will show no status", "warning")
        comparator = row.get("comparator", "")
        if comparator not in COMPARATORS:
            bad(line, "comparator", f"{comparator!r} is not a comparator: use >=, >, <= or <")
        elif code == "RANK" and comparator not in ("<=", "<"):
            bad(line, "comparator", "a RANK target is reached by a rank at most the target (<= or <)")
        kind = row.get("target_kind", "")
        if kind not in KINDS:
            bad(line, "target_kind", f"{kind!r} is not a kind: use {', '.join(KINDS)}")
        target_value = None
        try:
            target_value = _decimal(row.get("target_value", ""))
        except InvalidOperation:
            bad(line, "target_value", f"{row.get('target_value')!r} is not a number (the plan's assigned value is required)")
        if target_value is not None:
            unit = "percent" if kind_of_code in ("sub_indicator", "group") else (
                registry.metrics[code].get("unit_of_measure") if kind_of_code == "plan_metric" else kind_of_code)
            if unit == "percent" and not 0 <= target_value <= 100:
                bad(line, "target_value", f"{target_value} is not a percentage (0-100)")
            if unit == "rank" and (target_value < 1 or target_value != target_value.to_integral_value()):
                bad(line, "target_value", f"{target_value} is not a rank (1, 2, …)")
        if not row.get("target_rule_vi"):
            bad(line, "target_rule_vi", "is empty: quote the plan's words and the rule behind the value")

        dates: dict[str, date] = {}
        for column in ("baseline_date", "window_start", "window_end", "deadline"):
            if row.get(column):
                try:
                    dates[column] = parse_date(row[column])
                except ValueError:
                    bad(line, column, f"{row[column]!r} is not a date (YYYY-MM-DD)")
        if not row.get("window_start"):
            bad(line, "window_start", "is required (the first day the target is in force)")
        start, end, deadline = dates.get("window_start"), dates.get("window_end"), dates.get("deadline")
        if start and end and end < start:
            bad(line, "window_end", f"{end} is before window_start {start}")
        if start and deadline and deadline < start:
            bad(line, "deadline", f"{deadline} is before window_start {start}")
        if end and deadline and deadline > end:
            bad(line, "deadline", f"{deadline} is after window_end {end}")
        if kind == "milestone":
            if not deadline:
                bad(line, "deadline", "a milestone needs the day it is judged on")
            if not end:
                bad(line, "window_end", "a milestone lies inside a campaign window: give its end")

        for column in ("measure_period", "baseline_measure"):
            if not row.get(column):
                if column == "measure_period":
                    bad(line, column, "is required")
                continue
            try:
                measure, _ = parse_measure(row[column])
            except ValueError as exc:
                bad(line, column, str(exc))
                continue
            if measure in ("window", "trailing") and kind_of_code and not registry.is_additive(code):
                bad(line, column, f"{code} counts distinct procedures or is a score: use a calendar measure "
                                  f"(day, month, quarter, year), not {row[column]!r}")

        change = step = baseline_value = None
        for column in ("change_value", "rounding_step", "baseline_value"):
            if row.get(column):
                try:
                    value = _decimal(row[column])
                except InvalidOperation:
                    bad(line, column, f"{row[column]!r} is not a number")
                    continue
                if column == "change_value":
                    change = value
                elif column == "rounding_step":
                    step = value
                    if value <= 0:
                        bad(line, column, "must be positive")
                else:
                    baseline_value = value
        if kind in BASELINE_KINDS:
            if "baseline_date" not in dates:
                bad(line, "baseline_date", f"{kind} needs the baseline date")
            if not row.get("baseline_measure"):
                bad(line, "baseline_measure", f"{kind} needs the measure of the baseline (e.g. year)")
            if change is None:
                bad(line, "change_value", f"{kind} needs the change (points or percent)")
            if start and "baseline_date" in dates and dates["baseline_date"] > start:
                bad(line, "baseline_date", f"{dates['baseline_date']} is after window_start {start}")
            if (target_value is not None and change is not None and baseline_value is not None
                    and (step is None or step > 0)):
                by_rule = rule_target(kind, baseline_value, change, step)
                if abs(by_rule - target_value) > Decimal("0.005"):
                    bad(line, "target_value", f"the plan's {target_value} is not what the rule gives from its baseline "
                                              f"{baseline_value} ({by_rule}); the plan's value is kept", "warning")
        elif kind in KINDS:
            for column in ("change_value", "rounding_step", "baseline_date", "baseline_measure"):
                if row.get(column):
                    bad(line, column, f"is only for baseline and relative-change targets, not {kind}")
    return problems


def check_peer_lists(rows: Iterable[tuple[int, dict]], registry: Registry, file: str = "peer_lists.csv") -> list[Problem]:
    problems, seen = [], set()
    for line, row in rows:
        if not row.get("list_code") or row["list_code"] in seen:
            problems.append(Problem(file, line, "list_code", f"{row.get('list_code')!r} is empty or used twice"))
        seen.add(row.get("list_code"))
        if row.get("peer_set") not in PEER_SETS:
            problems.append(Problem(file, line, "peer_set", f"{row.get('peer_set')!r}: use {', '.join(PEER_SETS)}"))
        if row.get("indicator_code") not in registry.indicators:
            problems.append(Problem(file, line, "indicator_code", f"unknown 766 sub-indicator {row.get('indicator_code')!r}"))
        if row.get("period_type") not in CALENDAR_MEASURES:
            problems.append(Problem(file, line, "period_type", f"{row.get('period_type')!r}: use day, month, quarter or year"))
        if row.get("comparator") not in COMPARATORS:
            problems.append(Problem(file, line, "comparator", f"{row.get('comparator')!r} is not a comparator"))
        try:
            _decimal(row.get("threshold", ""))
        except InvalidOperation:
            problems.append(Problem(file, line, "threshold", f"{row.get('threshold')!r} is not a number"))
        label = row.get("label_vi", "")
        if not label or label != unicodedata.normalize("NFC", label):
            problems.append(Problem(file, line, "label_vi", "is empty or not NFC"))
    return problems


REPORT_KINDS_WITH_DEADLINES = {"interim": "interim_report_day", "final": "final_report_day"}


def campaign_starts(targets: Iterable[tuple[int, dict]]) -> dict[str, date]:
    """Day 1 of each plan's campaign: the earliest window_start of its targets."""
    starts: dict[str, date] = {}
    for _, row in targets:
        try:
            start = parse_date(row.get("window_start") or "")
        except ValueError:
            continue
        plan = row.get("plan_id", "")
        starts[plan] = min(start, starts.get(plan, start))
    return starts


def expected_cutoff(campaign_day: date, due_before: date) -> date:
    """The data cut-off of a report due before a day: the report is sent the morning after its cut-off
    (chiso_periodic_reports, 07:00, about the day before), so the last complete day before a delivery on
    ``due_before - 1`` is ``due_before - 2``; a report the rhythm puts earlier keeps its own day."""
    return min(campaign_day, due_before - timedelta(days=2))


def check_report_deadlines(rows: Iterable[tuple[int, dict]], plans: dict[str, dict], starts: dict[str, date],
                           file: str = "report_deadlines.csv") -> list[Problem]:
    """Each deadline names a campaign plan's interim or final report once, quotes the plan, and has the
    data cut-off that delivers it before its due date with the figures to the last complete day."""
    problems, seen = [], set()
    for line, row in rows:
        plan_id, kind = row.get("plan_id", ""), row.get("report_kind", "")
        plan = plans.get(plan_id)
        if plan is None:
            problems.append(Problem(file, line, "plan_id", f"unknown plan {plan_id!r} (target_plans.csv)"))
            continue
        if not (plan.get("report_every_days") or "").strip():
            problems.append(Problem(file, line, "plan_id", f"{plan_id} has no reporting rhythm (target_plans.csv): "
                                                           f"only a campaign's reports are scheduled"))
            continue
        if kind not in REPORT_KINDS_WITH_DEADLINES:
            problems.append(Problem(file, line, "report_kind", f"{kind!r}: use interim or final"))
            continue
        if (plan_id, kind) in seen:
            problems.append(Problem(file, line, "report_kind", f"{plan_id} {kind} has two deadlines"))
        seen.add((plan_id, kind))
        if not (row.get("source_vi") or "").strip():
            problems.append(Problem(file, line, "source_vi", "is empty: quote the plan's sentence with the due date"))
        dates = {}
        for column in ("due_before", "data_cutoff"):
            try:
                dates[column] = parse_date(row.get(column) or "")
            except ValueError:
                problems.append(Problem(file, line, column, f"{row.get(column)!r} is not a date (YYYY-MM-DD)"))
        if len(dates) < 2 or plan_id not in starts:
            continue
        try:
            day_number = int(plan[REPORT_KINDS_WITH_DEADLINES[kind]])
        except (TypeError, ValueError):
            continue  # the rhythm's own problem, reported on target_plans.csv
        campaign_day = starts[plan_id] + timedelta(days=day_number - 1)
        expected = expected_cutoff(campaign_day, dates["due_before"])
        if dates["data_cutoff"] != expected:
            problems.append(Problem(
                file, line, "data_cutoff",
                f"{dates['data_cutoff']} should be {expected}: a report is sent the morning after its cut-off, so "
                f"one due before {dates['due_before']} covers the days to {dates['due_before'] - timedelta(days=2)} "
                f"at most, and no later than its campaign day {day_number} ({campaign_day})"))
    return problems


def check(seeds: Path = SEEDS) -> list[Problem]:
    registry, problems = load_registry(seeds)
    targets = read_csv(seeds / "targets" / "target_registry.csv")
    problems += check_targets(targets, registry)
    problems += check_peer_lists(read_csv(seeds / "targets" / "peer_lists.csv"), registry)
    plans = {row["plan_id"]: row for _, row in read_csv(seeds / "targets" / "target_plans.csv") if row.get("plan_id")}
    problems += check_report_deadlines(read_csv(seeds / "targets" / "report_deadlines.csv"), plans,
                                       campaign_starts(targets))
    return problems


def derive_annex(targets: Iterable[dict], baselines: dict[tuple[str, str], float]) -> list[dict]:
    """Each baseline target beside the same rule applied to a baseline measured from data.

    ``baselines`` maps (unit code, indicator code) to the measured baseline (percent). The result says,
    per target, the plan's baseline and value, the rule's value from the measured baseline with and
    without the plan's rounding, whether the plan rounded (its value differs from its own baseline + change)
    and whether the rounding changes the value computed from data.
    """
    report = []
    for row in targets:
        if row["target_kind"] not in BASELINE_KINDS:
            continue
        _, unit_code = parse_scope(row["unit_scope"])
        measured = baselines.get((unit_code, row["indicator_code"]))
        step = Decimal(row["rounding_step"]) if row.get("rounding_step") else None
        change = Decimal(row["change_value"])
        plan_baseline = Decimal(row["baseline_value"]) if row.get("baseline_value") else None
        authoritative = Decimal(row["target_value"])
        unrounded_plan = rule_target(row["target_kind"], plan_baseline, change) if plan_baseline is not None else None
        report.append({
            "target_id": row["target_id"], "unit_code": unit_code, "indicator_code": row["indicator_code"],
            "plan_baseline": plan_baseline, "authoritative": authoritative,
            "measured_baseline": None if measured is None else round(measured, 2),
            "from_data_unrounded": None if measured is None else rule_target(row["target_kind"], Decimal(str(measured)), change),
            "from_data_by_rule": None if measured is None else rule_target(row["target_kind"], Decimal(str(measured)), change, step),
            "plan_rounded": unrounded_plan is not None and unrounded_plan != authoritative,
            "rounded_from_data": measured is not None and step is not None and rule_target(
                row["target_kind"], Decimal(str(measured)), change) != rule_target(
                row["target_kind"], Decimal(str(measured)), change, step),
            "rounding_step": step,
        })
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chiso.transform.targets", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    checker = sub.add_parser("check", help="validate the target registry seeds")
    checker.add_argument("--seeds", type=Path, default=SEEDS, help="dbt seeds directory (default: the project's)")
    args = parser.parse_args(argv)
    problems = check(args.seeds)
    errors = [p for p in problems if p.severity == "error"]
    for problem in problems:
        print(problem, file=sys.stderr if problem.severity == "error" else sys.stdout)
    rows = len(read_csv(args.seeds / "targets" / "target_registry.csv"))
    print(f"{rows} targets checked: {len(errors)} error(s), {len(problems) - len(errors)} warning(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
