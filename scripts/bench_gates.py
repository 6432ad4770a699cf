"""Benchmark: the quality gates on a national-sized day, the former way against materialised batches,
and the gates as history grows.

    .venv/bin/python scripts/bench_gates.py [--day-dossiers 350000] [--history-copies 5] [--volume 10]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres] [--keep-database] [--skip-former]

Needs PostgreSQL (default: the test server). Creates a throw-away database ``chiso_gates_bench_<random>``
next to the one named by --database-url and drops it at the end (--keep-database keeps it).

The warehouse (untimed): Cư Kuin (cu_kuin_2024) at --volume for 13-15/11/2024 through chiso.orchestration.backfill
(the real fetch → land → load path). The business date, Friday 15/11, is then grown to --day-dossiers
raw dossier rows by copying its rows within the day (SQL; each copy's MaHoSo prefixed, the day's
load_ledger counts raised to match, so every gate still passes), and dbt builds staging and the marts
(chiso.transform.runner.run_dbt: seeds, then ``run``). The day's dossiers are national-sized; its units are Cư
Kuin's 8 communes and district, so the marts' per-unit batches (fct_indicator_values, fct_unit_scores)
stay small here and the marts figures are a lower bound.

Timed, on the day:

1. each layer's gate (chiso.quality.gates.run_layer: GX checkpoint, failing-row samples, Data Docs, ops rows)
   the former way (``materialise_batches=False``: a GX query asset, so each batch's query runs again for
   every expectation) and the new way (each batch materialised once into ``gate_batches``); the new
   way runs once to warm the cache, then --runs times, and the fastest counts (others share the
   machine); the former runs once, warm, after it;
2. history ×1 against history ×(1 + --history-copies): the whole base window is copied back in time by
   whole weeks (raw dossiers with their MaHoSo prefixed and a load_ledger row per copied day;
   fct_dossiers, fct_indicator_values and fct_unit_scores with every date column shifted), analysed, and
   each layer's gate is timed again the new way. The staging batch query, former (``in (subquery)``)
   and current (the suite's: a LATERAL lookup per day's code), also runs once at each size under EXPLAIN ANALYZE: how many
   dossier versions the staging view's window function ranked, and how long it took.

Prints every figure as JSON lines, then the ratios. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from datetime import date, timedelta

import psycopg

import chiso.quality.gates as gates
from chiso.orchestration.backfill import backfill
from chiso.transform.runner import run_dbt
from chiso.core.warehouse import ensure_raw_partitions

SCENARIO = "cu_kuin_2024"
DAY = date(2024, 11, 15)  # a Friday: a working day, so the volume band applies
BASE_DAYS = [date(2024, 11, 13), date(2024, 11, 14), DAY]
LAYERS = ("raw", "staging", "marts")
HISTORY_MARTS = ("fct_dossiers", "fct_indicator_values", "fct_unit_scores")
FORMER_STAGING_QUERY = ("select s.dossier_code, s.unit_code, s.procedure_code, s.received_at, s.status_code "
                        "from staging.stg_portal__dossiers s where s.dossier_code in "
                        "(select record->>'MaHoSo' from raw.portal__dossiers where business_date = %s)")


def with_database(url: str, name: str) -> str:
    return url.rpartition("/")[0] + "/" + name


def scalar(url: str, sql: str, params=None):
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchone()[0]


def grow_day(url: str, day: date, target: int) -> int:
    """Copy the day's raw dossier rows within the day until it holds ``target`` rows; returns the count."""
    with psycopg.connect(url) as conn:
        rows, last_line = conn.execute("select count(*), max(line_number) from raw.portal__dossiers "
                                       "where business_date = %s", (day,)).fetchone()
        copies = max(0, -(-target // rows) - 1)
        conn.execute("""
            insert into raw.portal__dossiers (load_id, business_date, source_file, line_number, loaded_at, record)
            select d.load_id, d.business_date, d.source_file, d.line_number + copy * %(stride)s, d.loaded_at,
                   jsonb_set(d.record, '{MaHoSo}', to_jsonb('X' || copy || '-' || (d.record ->> 'MaHoSo')))
            from raw.portal__dossiers d cross join generate_series(1, %(copies)s) as copy
            where d.business_date = %(day)s""", {"stride": last_line + 1, "copies": copies, "day": day})
        added = rows * copies
        # The ledger accounts for every raw row: the raw gate checks it (manifest = loaded + quarantined).
        conn.execute("""update raw.load_ledger set rows_in_manifest = rows_in_manifest + %s,
                        rows_loaded = rows_loaded + %s
                        where entity = 'dossiers' and business_date = %s and status = 'loaded'""", (added, added, day))
    return rows + added


def shifted_columns(conn, table: str, days: int, code_column: str | None, prefix: str) -> str:
    """A select list of ``table``'s columns with every date and timestamp moved back ``days`` days and
    ``code_column`` prefixed (so the copy is a distinct, older row under the table's unique keys)."""
    schema, name = table.split(".")
    columns = conn.execute("""select column_name, data_type from information_schema.columns
                              where table_schema = %s and table_name = %s order by ordinal_position""",
                           (schema, name)).fetchall()
    select = []
    for column, data_type in columns:
        quoted = f'"{column}"'
        if column == code_column:
            select.append(f"'{prefix}' || {quoted}")
        elif data_type == "date":
            select.append(f"{quoted} - {days}")
        elif data_type.startswith("timestamp"):
            select.append(f"{quoted} - interval '{days} days'")
        else:
            select.append(quoted)
    return ", ".join(select)


def add_history(url: str, copy: int) -> None:
    """Copy the base window ``copy`` whole weeks back (weekdays kept): raw dossiers with a ledger row per
    copied day, and the dated marts the gates read."""
    days = 7 * copy
    prefix = f"H{copy}-"
    with psycopg.connect(url) as conn:
        load_ids = dict(conn.execute("""
            insert into raw.load_ledger (entity, business_date, checksum, source_path, rows_in_manifest,
                                         rows_loaded, rows_quarantined, status, finished_at)
            select entity, business_date - %(days)s, 'bench-copy', 'bench', rows_in_manifest, rows_loaded,
                   rows_quarantined, 'loaded', now()
            from raw.load_ledger where entity = 'dossiers' and status = 'loaded' and checksum <> 'bench-copy'
            returning business_date, load_id""", {"days": days}).fetchall())
        if load_ids:  # the raw layer has a partition per month and no default one
            ensure_raw_partitions(conn, ["portal__dossiers"], min(load_ids), max(load_ids))
        for day, load_id in load_ids.items():
            conn.execute("""
                insert into raw.portal__dossiers (load_id, business_date, source_file, line_number, loaded_at, record)
                select %s, business_date - %s, 'bench-copy', line_number, loaded_at,
                       jsonb_set(record, '{MaHoSo}', to_jsonb(%s || (record ->> 'MaHoSo')))
                from raw.portal__dossiers where business_date = %s and source_file <> 'bench-copy'""",
                         (load_id, days, prefix, day + timedelta(days=days)))
        for mart in HISTORY_MARTS:
            table = f"marts.{mart}"
            code = "dossier_code" if mart == "fct_dossiers" else None
            select = shifted_columns(conn, table, days, code, prefix)
            base = "dossier_code !~ '^H[0-9]+-'" if code else f"business_date between '{BASE_DAYS[0]}' and '{DAY}'"
            conn.execute(f"insert into {table} select {select} from {table} where {base}")


def analyse(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum analyze raw.portal__dossiers, raw.load_ledger")
        for mart in HISTORY_MARTS:
            conn.execute(f"vacuum analyze marts.{mart}")


def sizes(url: str) -> dict:
    with psycopg.connect(url) as conn:
        return {
            "day_raw_dossier_rows": conn.execute("select count(*) from raw.portal__dossiers where business_date = %s",
                                                 (DAY,)).fetchone()[0],
            "raw_dossier_rows": conn.execute("select count(*) from raw.portal__dossiers").fetchone()[0],
            "raw_business_days": conn.execute("select count(distinct business_date) from raw.portal__dossiers")
                                     .fetchone()[0],
            "fct_dossiers_rows": conn.execute("select count(*) from marts.fct_dossiers").fetchone()[0],
            "fct_indicator_values_rows": conn.execute("select count(*) from marts.fct_indicator_values").fetchone()[0],
        }


class MaterialiseTimer:
    """Wraps MaterialisedBatches.materialise to time each batch's one pass (create table as + analyse)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._original = gates.MaterialisedBatches.materialise

    def __enter__(self):
        timer, original = self, self._original

        def timed(batches, batch, query):
            started = time.perf_counter()
            try:
                return original(batches, batch, query)
            finally:
                timer.seconds[f"{batches.layer}.{batch}"] = round(time.perf_counter() - started, 2)

        gates.MaterialisedBatches.materialise = timed
        return self

    def __exit__(self, *exc):
        gates.MaterialisedBatches.materialise = self._original


def time_gate(url: str, layer: str, materialise: bool) -> tuple[float, gates.GateResult]:
    started = time.perf_counter()
    result = gates.run_layer(layer, DAY, url, materialise_batches=materialise)
    return time.perf_counter() - started, result


def staging_batch_plans(url: str) -> dict:
    """The staging batch query, former and current, run once each under EXPLAIN ANALYZE: how many
    dossier versions the staging view's window ranked (its WindowAgg's input) and how long it took."""
    current = gates.render_sql(next(b for b in gates.load_suite_definition("staging")["batches"]
                                    if b["name"] == "current_dossiers")["query"], DAY)
    former = FORMER_STAGING_QUERY.replace("%s", f"date '{DAY}'")

    def ranked_rows(node: dict) -> int:
        if node["Node Type"] == "WindowAgg":
            return sum(child["Actual Rows"] * child.get("Actual Loops", 1) for child in node.get("Plans", []))
        return sum(ranked_rows(child) for child in node.get("Plans", []))

    plans = {}
    with psycopg.connect(url) as conn:
        for name, sql in (("former", former), ("current", current)):
            (plan,) = conn.execute(f"explain (analyze, format json) {sql}").fetchone()[0]
            plans[name] = {"ranked_versions": ranked_rows(plan["Plan"]), "rows": plan["Plan"]["Actual Rows"],
                           "execution_s": round(plan["Execution Time"] / 1000, 2)}
    return plans


def time_materialised(url: str, layer: str, runs: int) -> tuple[float, list[float], dict, gates.GateResult]:
    """The fastest of ``runs`` warm runs (others share the machine), all of them, and its one-pass times."""
    time_gate(url, layer, True)  # warm-up: the day's pages into the cache
    times, best = [], None
    for _ in range(runs):
        with MaterialiseTimer() as materialised:
            seconds, result = time_gate(url, layer, True)
        times.append(round(seconds, 1))
        if best is None or seconds < best[0]:
            best = (seconds, materialised.seconds, result)
    return round(best[0], 1), times, best[1], best[2]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--day-dossiers", type=int, default=350_000, help="raw dossier rows of the business date")
    parser.add_argument("--history-copies", type=int, default=5, help="copies of the base window added as history")
    parser.add_argument("--volume", type=float, default=10.0)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--runs", type=int, default=3, help="warm runs of each materialised gate (the fastest counts)")
    parser.add_argument("--skip-former", action="store_true", help="do not time the former query-asset gates")
    args = parser.parse_args(argv)

    name = f"chiso_gates_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = with_database(args.database_url, name)
    home = tempfile.TemporaryDirectory(prefix="chiso-gates-bench-")
    os.environ.update({"CHISO_WAREHOUSE_URL": url, "CHISO_HOME": home.name})
    figures: dict = {}
    try:
        started = time.perf_counter()
        backfill(url, SCENARIO, BASE_DAYS, volume=args.volume)
        day_rows = grow_day(url, DAY, args.day_dossiers)
        print(f"loaded {SCENARIO} at volume {args.volume} and grew {DAY} to {day_rows:,} raw dossier rows "
              f"in {time.perf_counter() - started:.0f} s", flush=True)
        started = time.perf_counter()
        run_dbt(["seed", "--full-refresh"], url)
        run_dbt(["run", "--exclude", "resource_type:seed"], url)
        analyse(url)
        print(f"dbt built staging and the marts in {time.perf_counter() - started:.0f} s", flush=True)

        # 1. The former way against materialised batches, history ×1.
        figures["history_x1"] = sizes(url)
        print(json.dumps(figures["history_x1"]), flush=True)
        for layer in LAYERS:
            seconds, runs, materialise_s, result = time_materialised(url, layer, args.runs)
            row = {"layer": layer, "materialised_s": seconds, "materialised_runs_s": runs, "passed": result.passed,
                   "expectations": result.evaluated, "materialise_s": materialise_s}
            if not args.skip_former:
                former_s, former = time_gate(url, layer, False)
                row["former_s"] = round(former_s, 1)
                row["same_verdict"] = ({(f.suite, f.name) for f in former.failures}
                                       == {(f.suite, f.name) for f in result.failures})
            figures[f"gate_{layer}_x1"] = row
            print(json.dumps(row), flush=True)
        figures["staging_batch_x1"] = staging_batch_plans(url)
        print(json.dumps(figures["staging_batch_x1"]), flush=True)

        # 2. History ×(1 + copies): the gates must not grow with it.
        started = time.perf_counter()
        for copy in range(1, args.history_copies + 1):
            add_history(url, copy)
        analyse(url)
        figures["history_xn"] = sizes(url)
        print(f"added {args.history_copies} copies of history in {time.perf_counter() - started:.0f} s: "
              f"{json.dumps(figures['history_xn'])}", flush=True)
        for layer in LAYERS:
            seconds, runs, materialise_s, result = time_materialised(url, layer, args.runs)
            row = {"layer": layer, "materialised_s": seconds, "materialised_runs_s": runs, "passed": result.passed,
                   "materialise_s": materialise_s}
            figures[f"gate_{layer}_xn"] = row
            print(json.dumps(row), flush=True)
        figures["staging_batch_xn"] = staging_batch_plans(url)
        print(json.dumps(figures["staging_batch_xn"]), flush=True)
    finally:
        home.cleanup()
        if not args.keep_database:
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f'drop database if exists "{name}" with (force)')

    x1, xn = figures["history_x1"], figures["history_xn"]
    growth = xn["raw_dossier_rows"] / x1["raw_dossier_rows"]
    print(f"\nthe day: {x1['day_raw_dossier_rows']:,} raw dossier rows; history ×1: {x1['raw_dossier_rows']:,} raw rows "
          f"over {x1['raw_business_days']} days, {x1['fct_dossiers_rows']:,} fct_dossiers; "
          f"history ×{growth:.1f}: {xn['raw_dossier_rows']:,} raw rows over {xn['raw_business_days']} days, "
          f"{xn['fct_dossiers_rows']:,} fct_dossiers")
    print("layer   | former s | materialised s | former/materialised | history ×1 s | "
          f"history ×{growth:.1f} s | ×{growth:.1f}/×1")
    for layer in LAYERS:
        one, many = figures[f"gate_{layer}_x1"], figures[f"gate_{layer}_xn"]
        former = one.get("former_s")
        ratio = f"{former / one['materialised_s']:.1f}" if former else "-"
        print(f"{layer:<7} | {former if former else '-':>8} | {one['materialised_s']:>14} | {ratio:>19} | "
              f"{one['materialised_s']:>12} | {many['materialised_s']:>12} | {many['materialised_s'] / one['materialised_s']:.2f}")
    for way in ("former", "current"):
        one, many = figures["staging_batch_x1"][way], figures["staging_batch_xn"][way]
        print(f"staging batch query, {way}: ranks {one['ranked_versions']:,} dossier versions in "
              f"{one['execution_s']} s at history ×1, {many['ranked_versions']:,} in {many['execution_s']} s at "
              f"×{growth:.1f} ({many['rows']:,} current rows)")


if __name__ == "__main__":
    main()
