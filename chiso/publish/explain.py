"""The dossiers behind one indicator value: which dossiers made a unit late, or offline, on a day.

    python -m chiso.publish.explain --unit 000.37.27.H15 --indicator ON_TIME --as-of 2024-11-14 [--period month]
        [--population received_or_processed_in_period] [--outside-numerator-only] [--csv FILE]
        [--as-published PUBLICATION_ID|YYYY-MM-DD]

Runs the dbt macro explain_indicator against CHISO_WAREHOUSE_URL and prints one line per dossier of the
value's population (in the numerator or not, since when, due and end dates). With --as-published, the
dossiers as they were known at that publication (chiso.publish.as_published; docs/publication.md "As published").
"""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import date

import psycopg

from chiso.publish.as_published import explain_as_published, resolve_publication
from chiso.transform.rule_populations import RECEIVED_IN_PERIOD, RECEIVED_OR_PROCESSED
from chiso.transform.runner import compile_inline
from chiso.core.warehouse import warehouse_url

PERIODS = ("day", "month", "quarter", "year")
# ON_TIME's two readings of the guide's population (docs/engine.md "Rule populations"); the first is active.
POPULATIONS = (RECEIVED_IN_PERIOD, RECEIVED_OR_PROCESSED)
_SAFE = set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ._-")


def _literal(value: str, what: str) -> str:
    if not value or set(value) - _SAFE:
        raise ValueError(f"{what} {value!r} is not a code (letters, digits, '.', '_', '-')")
    return value


def explain(unit_code: str, indicator_code: str, as_of: date, period_type: str = "year",
            url: str | None = None, population: str = RECEIVED_IN_PERIOD,
            as_published: str | None = None) -> tuple[list[str], list[tuple]]:
    if period_type not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}, got {period_type!r}")
    if population not in POPULATIONS:
        raise ValueError(f"population must be one of {', '.join(POPULATIONS)}, got {population!r}")
    if population != RECEIVED_IN_PERIOD and indicator_code != "ON_TIME":
        raise ValueError(f"only ON_TIME has another population reading, not {indicator_code}")
    sql = compile_inline("{{ explain_indicator('%s', '%s', '%s', '%s', '%s') }}" % (
        _literal(unit_code, "unit"), _literal(indicator_code, "indicator"), as_of.isoformat(), period_type,
        population), url)
    with psycopg.connect(url or warehouse_url()) as conn:
        cursor = conn.execute(sql)
        current = [column.name for column in cursor.description], cursor.fetchall()
    if as_published is None:
        return current
    if population != RECEIVED_IN_PERIOD:
        raise ValueError("--as-published explains the published values, whose population is the active one")
    _publication_id, _day, published_at = resolve_publication(as_published, url or warehouse_url())
    return explain_as_published(unit_code, indicator_code, as_of, period_type, current, published_at,
                                url or warehouse_url())


def explain_and_write(unit: str, indicator: str, as_of: date, period: str = "year",
                      population: str = RECEIVED_IN_PERIOD, outside_numerator_only: bool = False,
                      csv_path: str | None = None, url: str | None = None, as_published: str | None = None) -> None:
    """The explanation as CSV on stdout (or in csv_path), its count line on stderr."""
    columns, rows = explain(unit, indicator, as_of, period, url, population=population, as_published=as_published)
    # A sum, not a count: a DOSSIER_RECEIVING_SATISFACTION dossier both overdue and dissatisfied adds -1.
    numerator = sum(row[columns.index("numerator_contribution")] or 0 for row in rows)
    changed = sum(1 for row in rows if as_published and row[columns.index("changed_since_publication")])
    when = f" as published ({as_published})" if as_published else ""
    print(f"{indicator} of {unit}, {period} as of {as_of}{when}: {numerator}/{len(rows)} dossiers"
          + (f" ({changed} changed since: their contribution then is not derived again, left empty)" if changed else ""),
          file=sys.stderr)
    if outside_numerator_only:
        rows = [row for row in rows if row[columns.index("in_numerator")] is False]
    out = open(csv_path, "w", newline="", encoding="utf-8") if csv_path else sys.stdout
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(rows)
    if csv_path:
        out.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--unit", required=True)
    parser.add_argument("--indicator", required=True)
    parser.add_argument("--as-of", required=True, type=date.fromisoformat)
    parser.add_argument("--period", default="year", choices=PERIODS)
    parser.add_argument("--population", default=RECEIVED_IN_PERIOD, choices=POPULATIONS,
                        help="ON_TIME only: the other reading adds dossiers received earlier and still in progress")
    parser.add_argument("--outside-numerator-only", action="store_true",
                        help="only the dossiers that keep the value below 100%% (late, offline…)")
    parser.add_argument("--csv", help="write the rows to this CSV file instead of the terminal")
    parser.add_argument("--as-published", metavar="PUBLICATION",
                        help="the dossiers as known at this publication (its id, or a business date: that day's "
                             "first publication), with when each was first loaded and whether it changed since")
    args = parser.parse_args(argv)
    try:
        explain_and_write(args.unit, args.indicator, args.as_of, args.period, args.population,
                          args.outside_numerator_only, args.csv, as_published=args.as_published)
    except ValueError as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
