"""Reconcile captures of the portal's published 766 evaluation, in any form, against our rules and data.

    python -m chiso.transform.reconcile FILE [FILE …] [--evaluated-on YYYY-MM-DD]

Loads each capture into CHISO_WAREHOUSE_URL (once: a capture loaded before is re-used), builds the
reconciliation models and prints, per capture, how many comparisons of each kind were made, matched and
differed, how many its form does not publish, and the first differences. The figures are those of
marts.mart_reconciliation_summary (one row per capture and kind), which Metabase reads.
--evaluated-on dates a capture that carries no date (the national overview; otherwise its file name's
ISO date is used).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

import psycopg

from chiso.ingest.evaluations import EvaluationError, load_evaluation
from chiso.transform.runner import run_dbt
from chiso.core.warehouse import ensure_schema, warehouse_url

# The models reconciliation builds once the engine's marts exist (the nightly build made them).
RECONCILIATION_MODELS = (
    "stg_portal__evaluation_captures", "stg_portal__evaluation_units", "stg_portal__evaluation_groups",
    "stg_portal__evaluation_metrics", "mart_score_reconciliation", "mart_rank_reconciliation",
    "mart_reconciliation_checks", "mart_reconciliation_summary",
)
KIND_LABELS = {"rule": "rule difference", "data": "data difference", "publication": "publication inconsistency"}
COLUMNS = ("compared", "matched", "differed", "not published", "not compared")


def build_reconciliation(url: str) -> None:
    """Build the reconciliation models; on a warehouse without the engine's marts, those too (from what raw
    holds, possibly nothing: then every data comparison is 'not compared')."""
    with psycopg.connect(url) as conn:
        (engine_built,) = conn.execute("select to_regclass('marts.fct_indicator_values') is not null").fetchone()
    selection = list(RECONCILIATION_MODELS) if engine_built else ["+mart_reconciliation_summary"]
    run_dbt(["build", "--quiet", "--select", *selection, "--indirect-selection", "cautious"], url)


def reconcile(paths: list[Path], url: str, evaluated_on: date | None = None) -> list[dict]:
    ensure_schema(url)
    with psycopg.connect(url) as conn:
        loads = [load_evaluation(conn, path, evaluated_on) for path in paths]
    build_reconciliation(url)
    return summaries(url, [answer["load_id"] for answer in loads])


def summaries(url: str, load_ids: list[int]) -> list[dict]:
    """The reconciliation figures of these loaded captures, in their order, from mart_reconciliation_summary."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("""
            select load_id, source_file, form, province_code, period_type, period_year, period_number, evaluated_on,
                   kind, compared, matched, differed, not_published, not_compared, first_differences
            from marts.mart_reconciliation_summary where load_id = any(%s) order by load_id, kind_order""",
                            (load_ids,)).fetchall()
    captures: dict[int, dict] = {}
    for (load_id, source_file, form, province, period_type, year, number, day, kind, *figures, examples) in rows:
        capture = captures.setdefault(load_id, {
            "load_id": load_id, "source_file": source_file, "form": form, "province_code": province,
            "period": f"{period_type} {year}" + (f"-{number:02d}" if number else ""), "evaluated_on": day,
            "kinds": {}})
        capture["kinds"][kind] = {"figures": dict(zip(COLUMNS, figures)), "first_differences": examples}
    return [captures[load_id] for load_id in dict.fromkeys(load_ids)]


def format_capture(capture: dict) -> str:
    lines = [f"{capture['source_file']}: {capture['province_code']}, {capture['period']}, "
             f"as of {capture['evaluated_on']:%d/%m/%Y}; form: {capture['form']}"]
    width = max(map(len, KIND_LABELS.values()))
    lines.append("  " + "".ljust(width) + "".join(f"{column:>15}" for column in COLUMNS))
    for kind, label in KIND_LABELS.items():
        figures = capture["kinds"][kind]["figures"]
        lines.append("  " + label.ljust(width) + "".join(f"{figures[column]:>15,}" for column in COLUMNS))
    examples = [(KIND_LABELS[kind], entry["first_differences"]) for kind, entry in capture["kinds"].items()
                if entry["first_differences"]]
    for label, text in examples:
        plural = label[:-1] + "ies" if label.endswith("y") else label + "s"
        lines.append(f"  first {plural}: {text}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="a captured evaluation (JSON)")
    parser.add_argument("--evaluated-on", type=date.fromisoformat,
                        help="extraction date of a capture that carries none (YYYY-MM-DD)")
    args = parser.parse_args(argv)
    try:
        captures = reconcile(args.files, warehouse_url(), args.evaluated_on)
    except (EvaluationError, OSError) as exc:
        print(exc, file=sys.stderr)
        return 2
    print("\n\n".join(format_capture(capture) for capture in captures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
