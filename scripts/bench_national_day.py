"""Benchmark: one national day through the real daily path, on top of a national history.

    .venv/bin/python scripts/bench_national_day.py [--day 2025-11-12] [--history-days 30]
        [--province H26] [--volume 1.0] [--workdir /tmp/chiso-national-bench]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres] [--keep-database] [--reuse]

For each world — the simulator's national world, then one province of it (``--province``; ``none``
skips it) — in the same run:

1. Untimed set-up. The day's whole-day files are exported once by the simulator into ``--workdir``
   (a national day takes the generator about a minute; the cache keeps it across runs). A history
   warehouse ``chiso_national_bench_<world>_h<days>`` is made next to ``--database-url`` the way
   scripts/bench_transform.py makes history: the day is loaded through the real loader, then its raw
   rows are copied back in time, one copy per history day (dates inside the records shifted, dossier
   codes made unique; the unit catalogue, which the portal sends whole every day, copied as it is),
   the day itself removed again, and the history built completely by dbt and published, as the
   nights before would have left it. ``--reuse`` keeps a history an earlier ``--keep-database`` run
   left. The night runs in a copy of it (``create database … template``), with a landing zone of
   its own, so that a history serves any number of nights.
2. Timed, each stage in a fresh process (an Airflow task is one; its peak memory is that
   process's): fetch + land and load of the contract's 8 entities (two processes at a time, as the
   LocalExecutor runs them on 2 cores), the raw gate, dbt's nightly build (``chiso.orchestration.pipeline.transform``:
   seeds, source freshness, ``dbt build``), the quality gate, publication to ``reporting``, and the
   nightly e-mail rendered and sent to every recipient of the world's national recipients list (a
   local SMTP catcher receives them). The functions are the ones the DAG's tasks call
   (``chiso.orchestration.pipeline`` and the ingest functions beneath ``pipeline.fetch/land/load``, whose Airflow
   connections are replaced by their values).

Prints each stage's wall time and peak memory (resident set of its process), the total from extract
to the last e-mail, and the dbt models that took longest. Not a test: figures go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import resource
import secrets
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg

SEED = 766
CATALOGUES = ("units", "unit_crosswalk", "procedures", "procedure_publications")
SHIFTED = ("dossiers", "ratings", "feedback")  # dated change feeds: copied back with their dates moved
DATE_VALUE = re.compile(rb'"(20\d{6})(\d{6})"')


# ----------------------------------------------------------------------------- worlds and warehouses


def world_for(name: str, volume: float, province: str | None):
    from chiso.simulator.scenarios import get_scenario, within_province

    world = get_scenario("national", volume)
    if province is None:
        return world
    # The portal's province codes end in Hnn (000.00.00.H26): the short form names the same province.
    full = province if province in world.by_code else f"000.00.00.{province}"
    return within_province(world, full)


def with_database(url: str, name: str) -> str:
    return url.rpartition("/")[0] + "/" + name


def stage_environment(workdir: Path, url: str) -> dict[str, str]:
    # dbt's target folder per world: other dbt runs on the machine must not share its files.
    return {"CHISO_WAREHOUSE_URL": url, "CHISO_HOME": str(workdir / "home"),
            "DBT_TARGET_PATH": str(workdir / "dbt_target"), "DBT_LOG_PATH": str(workdir / "dbt_logs"),
            "CHISO_LANDING_DIR": str(workdir / "landing"),
            "CHISO_DATA_DOCS_DIR": str(workdir / "home" / "data_docs")}


# ----------------------------------------------------------------------------- stages (child processes)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _in_child(environment: dict[str, str], stage, *args):
    """Run ``stage(*args)`` in this (fresh) process; return (seconds, peak MB, result)."""
    os.environ.update(environment)
    started = time.perf_counter()
    result = stage(*args)
    return time.perf_counter() - started, _peak_mb(), result


def ingest_entity(portal_url: str, token: str, entity: str, day: date, key: str) -> dict:
    """What fetch_<entity>, land_<entity> and load_<entity> do for one entity (pipeline.fetch/land/load)."""
    from chiso.core import settings
    from chiso.ingest.fetch import Portal, fetch_day
    from chiso.ingest.landing import land
    from chiso.ingest.load import load_extract
    from chiso.ingest.pseudonymise import Pseudonymiser
    from chiso.core.warehouse import analyze_loaded_day, connect, ensure_schema

    portal = Portal(base_url=portal_url, token=token, page_size=5000, transfer="files")
    started = time.perf_counter()
    fetched = fetch_day(portal, entity, day, settings.landing_dir())
    landed = land(fetched, settings.landing_dir(), entity, day)
    fetched_s = time.perf_counter() - started
    ensure_schema()
    with connect() as conn:
        result = load_extract(conn, entity, day, landed, Pseudonymiser(key)).as_dict()
        if not result["skipped"]:
            analyze_loaded_day(conn, entity, day)
    return {"entity": entity, "fetch_land_s": round(fetched_s, 2),
            "load_s": round(time.perf_counter() - started - fetched_s, 2),
            "rows": result.get("rows_loaded"), "peak_mb": round(_peak_mb())}


def raw_gate_stage(day: date) -> str:
    from chiso.orchestration import pipeline

    return pipeline.raw_gate(day)


def dbt_stage(day: date) -> dict:
    from chiso.orchestration import pipeline

    pipeline.transform(day)
    return _slowest_models()


def _slowest_models(count: int = 12) -> dict:
    path = Path(os.environ["DBT_TARGET_PATH"]) / "run_results.json"
    results = json.loads(path.read_text())["results"]
    ranked = sorted(results, key=lambda r: -r["execution_time"])[:count]
    return {r["unique_id"].split(".", 2)[-1]: round(r["execution_time"], 1) for r in ranked}


def quality_gate_stage(day: date) -> str:
    from chiso.orchestration import pipeline

    return pipeline.gate(day)


def publish_stage(day: date) -> dict:
    from chiso.orchestration import pipeline

    return pipeline.publish_reporting(day)


def reports_stage(day: date, smtp_port: int, recipients_file: str) -> dict:
    from chiso.reports.mail import SmtplibMailer
    from chiso.reports.recipients import load_recipients
    from chiso.reports.send import send_daily

    recipients = load_recipients(Path(recipients_file))
    summary = send_daily(day, mailer=SmtplibMailer("127.0.0.1", smtp_port), recipients=recipients)
    return {"recipients": len(recipients), "sent": len(summary["sent"]),
            "already_sent": len(summary["already_sent"])}


# ----------------------------------------------------------------------------- history (untimed)


def _shift_text(text: bytes, days: int, cache: dict) -> bytes:
    def move(match: re.Match) -> bytes:
        day = match.group(1)
        moved = cache.get(day)
        if moved is None:
            moved = cache[day] = (datetime.strptime(day.decode(), "%Y%m%d")
                                  + timedelta(days=days)).strftime("%Y%m%d").encode()
        return b'"' + moved + match.group(2) + b'"'
    return DATE_VALUE.sub(move, text)


def make_history(url: str, day: date, history_days: int) -> None:
    """Copy the loaded day's rows back in time: one copy per history day, then remove the day itself."""
    from chiso.core.warehouse import ensure_raw_partitions

    with psycopg.connect(url) as conn:
        # The raw layer has a partition per month and no default one: create the history's months first.
        ensure_raw_partitions(conn, [f"portal__{entity}" for entity in (*CATALOGUES, *SHIFTED)],
                              day - timedelta(days=history_days), day)
        conn.commit()
        for back in range(1, history_days + 1):
            target = day - timedelta(days=back)
            for entity in (*CATALOGUES, *SHIFTED):
                table = f"raw.portal__{entity}"
                (load_id,) = conn.execute("""
                    insert into raw.load_ledger (entity, business_date, checksum, source_path, rows_in_manifest,
                                                 rows_loaded, rows_quarantined, status, finished_at)
                    select entity, %s, 'bench-history', 'bench-history', rows_in_manifest, rows_loaded, 0,
                           'loaded', now()
                    from raw.load_ledger where entity = %s and business_date = %s and status = 'loaded'
                    returning load_id""", (target, entity, day)).fetchone()
                if entity in CATALOGUES:
                    conn.execute(f"""insert into {table} (load_id, business_date, source_file, line_number, record)
                                     select %s, %s, 'bench-history', line_number, record from {table}
                                     where business_date = %s""", (load_id, target, day))
                    continue
                cache: dict = {}
                with conn.cursor() as read, conn.cursor() as write:
                    read.execute(f"select line_number, record::text from {table} where business_date = %s", (day,))
                    prefix = f"H{back}-".encode()
                    with write.copy(f"copy {table} (load_id, business_date, source_file, line_number, record) "
                                    "from stdin") as out:
                        for line_number, text in read:
                            record = _shift_text(text.encode(), -back, cache)
                            record = record.replace(b'"MaHoSo": "', b'"MaHoSo": "' + prefix)
                            out.write_row((load_id, target, "bench-history", line_number, record.decode()))
            conn.commit()
            print(f"  history day {target} copied", flush=True)
        remove_day(conn, day)
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum analyze")


def remove_day(conn, day: date) -> None:
    """Take the benchmark day back out of the warehouse (raw rows, quarantine, ledger, gate records),
    so that the timed night loads it as new."""
    from chiso.contract import ENTITIES

    for entity in ENTITIES.values():
        conn.execute(f"delete from raw.{entity.raw_table} where business_date >= %s", (day,))
    conn.execute("delete from raw.quarantine where business_date >= %s", (day,))
    conn.execute("delete from raw.load_ledger where business_date >= %s", (day,))
    for table in ("validation_results", "gate_runs"):
        conn.execute(f"delete from ops.{table} where business_date >= %s", (day,))
    for table in ("published_indicator_values", "published_unit_scores"):   # they reference their publication
        conn.execute(f"delete from ops.{table} where published_business_date >= %s", (day,))
    for table in ("report_deliveries", "publications", "reporting_publications"):
        conn.execute(f"delete from ops.{table} where business_date >= %s", (day,))


# ----------------------------------------------------------------------------- one world


def run_world(label: str, world, args, admin_url: str) -> dict:
    from chiso.contract import ENTITIES
    from chiso.dev.mailcatcher import MailCatcher
    from chiso.simulator.replay import ExportCachingSimulator
    from chiso.simulator.server import RunningSimulator

    day = args.day
    history_name = f"chiso_national_bench_{label.lower()}_h{args.history_days}"
    night_name = f"chiso_national_bench_{label.lower()}_night"
    history_url, url = with_database(admin_url, history_name), with_database(admin_url, night_name)
    workdir = args.workdir / label
    simulator = ExportCachingSimulator(SEED, world, args.workdir / "exports")
    started = time.perf_counter()
    for entity in ENTITIES:
        simulator.export(entity, day)
    print(f"[{label}] the day's files exported or found in the cache: {time.perf_counter() - started:.0f} s",
          flush=True)
    spawn = multiprocessing.get_context("spawn")
    figures: dict = {"world": label, "units": len(world.units), "day": day.isoformat(),
                     "history_days": args.history_days}
    key = secrets.token_urlsafe(32)
    token = secrets.token_urlsafe(16)

    def stage(environment, function, *stage_args):
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            return pool.submit(_in_child, environment, function, *stage_args).result()

    with RunningSimulator(simulator, token) as portal, tempfile.TemporaryDirectory() as mail_dir, \
            tempfile.TemporaryDirectory(dir=args.workdir) as night_landing, MailCatcher(Path(mail_dir)) as catcher:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            history_exists = conn.execute("select 1 from pg_database where datname = %s",
                                          (history_name,)).fetchone() is not None
        if history_exists and args.reuse:
            print(f"[{label}] re-using the history in {history_name}", flush=True)
        else:
            # The history, made once: the nights before, as they would have left the warehouse.
            environment = stage_environment(workdir / "history", history_url)
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'drop database if exists "{history_name}" with (force)')
                conn.execute(f'create database "{history_name}"')
            started = time.perf_counter()
            for entity in ENTITIES:
                stage(environment, ingest_entity, portal.url, token, entity, day, key)
            print(f"[{label}] the day loaded once to copy from ({time.perf_counter() - started:.0f} s); "
                  f"making {args.history_days} days of history", flush=True)
            started = time.perf_counter()
            make_history(history_url, day, args.history_days)
            figures["history_copy_s"] = round(time.perf_counter() - started)
            started = time.perf_counter()
            previous = day - timedelta(days=1)
            stage(environment, dbt_stage, previous)
            figures["history_complete_build_s"] = round(time.perf_counter() - started)
            stage(environment, publish_stage, previous)
            print(f"[{label}] history built completely in {figures['history_complete_build_s']} s and published",
                  flush=True)
        if args.history_only:
            return figures
        if args.in_place:
            # No room for a copy (a national month of history is ~40 GB): the night runs in the history
            # itself, which then holds the night and cannot serve another.
            night_name, url = history_name, history_url
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f"alter database \"{history_name}\" rename to \"{history_name}_used\"")
            night_name = history_name = f"{history_name}_used"
            url = history_url = with_database(admin_url, night_name)
            print(f"[{label}] the night runs in the history warehouse itself ({night_name})", flush=True)
        else:
            # Each timed night starts from a copy of the history (a template database: a file copy).
            started = time.perf_counter()
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'drop database if exists "{night_name}" with (force)')
                conn.execute(f'create database "{night_name}" template "{history_name}"')
            print(f"[{label}] night warehouse copied from the history in {time.perf_counter() - started:.0f} s",
                  flush=True)
        with psycopg.connect(url) as conn:
            figures["history_dossier_rows"] = conn.execute(
                "select count(*) from raw.portal__dossiers").fetchone()[0]
        recipients_file = write_recipients(workdir, world, day)
        # A landing zone of its own: the night downloads and lands the day like any night.
        environment = {**stage_environment(workdir / "night", url), "CHISO_LANDING_DIR": night_landing}

        timings: dict[str, dict] = {}
        night_started = time.perf_counter()
        started = time.perf_counter()
        with ProcessPoolExecutor(args.ingest_workers, mp_context=spawn) as pool:
            futures = [pool.submit(_in_child, environment, ingest_entity, portal.url, token, entity, day, key)
                       for entity in ENTITIES]
            per_entity = [future.result()[2] for future in futures]
        timings["fetch_land_load"] = {"s": round(time.perf_counter() - started, 1),
                                      "peak_mb": max(e["peak_mb"] for e in per_entity), "entities": per_entity}
        print(f"[{label}] fetch_land_load: {timings['fetch_land_load']['s']} s", flush=True)
        for stage_name, function, stage_args in (
                ("raw_gate", raw_gate_stage, (day,)),
                ("dbt_build", dbt_stage, (day,)),
                ("quality_gate", quality_gate_stage, (day,)),
                ("publish", publish_stage, (day,)),
                ("reports", reports_stage, (day, catcher.port, str(recipients_file)))):
            seconds, peak, result = stage(environment, function, *stage_args)
            timings[stage_name] = {"s": round(seconds, 1), "peak_mb": round(peak)}
            if stage_name in ("dbt_build", "reports", "publish"):
                timings[stage_name]["detail"] = result
            print(f"[{label}] {stage_name}: {seconds:.1f} s, peak {peak:.0f} MB", flush=True)
        figures["night_s"] = round(time.perf_counter() - night_started, 1)
        figures["stages"] = timings
        sizes = [len(path.read_bytes()) for path in Path(mail_dir).glob("*.eml")]
        figures["emails"] = {"count": len(sizes), "largest_bytes": max(sizes, default=0)}
    if not args.keep_database:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{night_name}" with (force)')
            conn.execute(f'drop database if exists "{history_name}" with (force)')
    return figures


def write_recipients(workdir: Path, world, day: date) -> Path:
    """Every province, every commune and the data team of the world as of the day, as a recipients file."""
    from chiso.reports.recipients import write_world_recipients

    workdir.mkdir(parents=True, exist_ok=True)
    return write_world_recipients(workdir / "recipients.yml", world, day)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--day", type=date.fromisoformat, default=date(2025, 11, 12))
    parser.add_argument("--history-days", type=int, default=30)
    parser.add_argument("--province", default="H26", help="a province code of the national world, or none")
    parser.add_argument("--volume", type=float, default=1.0)
    parser.add_argument("--ingest-workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "chiso-national-bench")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--reuse", action="store_true",
                        help="re-use the history database an earlier --keep-database left (same day and history days)")
    parser.add_argument("--only", choices=("national", "province"), help="run one world only")
    parser.add_argument("--history-only", action="store_true",
                        help="make (and keep) the history database, then stop: a later --reuse times the night")
    parser.add_argument("--in-place", action="store_true",
                        help="run the night in the history database itself (renamed *_used: not reusable) "
                             "instead of a copy, when the disk has no room for one")
    args = parser.parse_args(argv)
    worlds = []
    if args.only != "province":
        worlds.append(("national", None))
    if args.province.lower() != "none" and args.only != "national":
        worlds.append((args.province, args.province))
    results = []
    for label, province in worlds:
        results.append(run_world(label, world_for("national", args.volume, province), args, args.database_url))
        print(json.dumps(results[-1], ensure_ascii=False), flush=True)
    if args.history_only:
        return
    print("\nworld | units | history days | fetch+land+load | raw gate | dbt build | quality gate | publish | "
          "reports | night | peak MB (max stage)")
    for r in results:
        s = r["stages"]
        print(f"{r['world']} | {r['units']:,} | {r['history_days']} | " + " | ".join(
            f"{s[k]['s']} s" for k in ("fetch_land_load", "raw_gate", "dbt_build", "quality_gate", "publish",
                                         "reports")) + f" | {r['night_s']} s | {max(v['peak_mb'] for v in s.values())}")
    if len(results) == 2:
        print(f"\nnational / province night: ×{results[0]['night_s'] / results[1]['night_s']:.1f}")


if __name__ == "__main__":
    sys.exit(main())
