"""Benchmark: the real loader against ``psql \\copy`` and ``pandas.DataFrame.to_sql``, on a million dossiers.

    .venv/bin/python scripts/bench_ingest.py [--rows 1000000] [--small-rows 250000] [--to-sql-rows 100000]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres] [--workdir DIR] [--keep-database]

Needs PostgreSQL (default: the test server, 127.0.0.1:5432, user postgres) and ``psql`` on the PATH.
It creates a throw-away database ``bench_ingest_<random>`` next to the one named by --database-url
and drops it at the end (--keep-database keeps it).

Untimed preparation: the simulator's national scenario produces --rows dossier rows (personal fields,
nested lists and all), written as the pipeline lands them: pages of 500 rows as the portal serves
them plus a manifest, verified and moved into the landing zone by ``chiso.ingest.landing.land``. The
first --small-rows rows are landed as a second extract, to show that the loader's memory does not
grow with the file. The same rows are also written one per line for ``\\copy``. --workdir keeps the
generated files and re-uses them on the next run (generation takes minutes).

Timed, in one run, on the same rows:

1. the real loader, ``chiso.ingest.load.load_extract`` (contract validation, NFC, pseudonymisation,
   COPY, ledger, quarantine accounting), in a child process that does nothing else, so that its
   peak resident memory (VmHWM) is the loader's; once for the small and once for the full extract;
2. ``psql \\copy`` of the same rows into a table shaped like ``raw.portal__dossiers`` (JSONB record,
   the same indexes and the same foreign key to ``raw.load_ledger``, which costs the server a lookup
   per row): the throughput a bulk load cannot beat, with no validation or pseudonyms; and, for
   comparison, into the same table without the foreign key;
3. ``pandas.DataFrame.to_sql`` (pandas' defaults, through SQLAlchemy) of the first --to-sql-rows rows
   into the same shape, extrapolated as rows/s (building the DataFrame is not timed).

With --compare-row-by-row, the loader also runs with its fast lane switched off (every page parsed and
checked row by row, as before chiso.ingest.typed_decode), to show what the fast lane gains.

A CHECKPOINT precedes each timed step. Prints rows/s, the ratios loader/\\copy and loader/to_sql,
and the loader's peak memory. Not a test: figures go in issue notes. The machine's other load makes
timings noisy; compare the ratios of one run, and run it more than once.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENTITY = "dossiers"
DAY = date(2025, 11, 12)  # the business date the extracts are landed (and loaded) under
PAGE_SIZE = 500  # the portal's page size the pipeline asks for (chiso.ingest.fetch.Portal)
SEED = 766
BASELINE_TABLE = "bench.copy_baseline"  # raw.portal__dossiers' shape, foreign key included
BARE_BASELINE_TABLE = "bench.copy_baseline_without_fk"
BASELINE_LOAD_ID = 1  # the load_id column of the \\copy file
TO_SQL_TABLE = "to_sql_baseline"  # in schema bench


# ----------------------------------------------------------------------------- preparation (untimed)

def _simulated_rows(limit: int):
    """``limit`` contract-valid dossier rows from the national simulator, day after day."""
    from chiso.simulator.generator import extract_rows
    from chiso.simulator.scenarios import get_scenario

    world = get_scenario("national", 1.0)
    days = (DAY - timedelta(days=n) for n in itertools.count())
    return itertools.islice(itertools.chain.from_iterable(
        extract_rows(ENTITY, SEED, world, day) for day in days), limit)


class _ExtractWriter:
    """Writes pages and a manifest exactly as ``chiso.ingest.fetch`` stores what the portal serves."""

    def __init__(self, directory: Path, total: int):
        from chiso.ingest.landing import write_file_once

        self._write = write_file_once
        self.directory, self.total = directory, total
        self.digest, self.count, self.page, self.items = hashlib.sha256(), 0, 0, []

    def add(self, row: dict, line: bytes) -> None:
        self.digest.update(line)
        self.count += 1
        self.items.append(row)
        if len(self.items) == PAGE_SIZE:
            self._flush()

    def _flush(self) -> None:
        self.page += 1
        body = {"entity": ENTITY, "business_date": DAY.isoformat(), "page": self.page, "page_size": PAGE_SIZE,
                "total_pages": -(-self.total // PAGE_SIZE), "total_rows": self.total, "items": self.items}
        self._write(self.directory / f"page-{self.page:05d}.json", json.dumps(body, ensure_ascii=False).encode())
        self.items = []

    def close(self) -> None:
        from chiso.contract.canonical import MANIFEST_FORMAT

        if self.items:
            self._flush()
        manifest = {"entity": ENTITY, "business_date": DAY.isoformat(), "row_count": self.count,
                    "sha256": self.digest.hexdigest(), "format": MANIFEST_FORMAT}
        self._write(self.directory / "manifest.json", json.dumps(manifest).encode())


def _copy_text(value: str) -> str:
    """A value in COPY's text format (JSON text never holds raw tabs or newlines, but be exact)."""
    return (value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r"))


def prepare(workdir: Path, rows: int, small_rows: int) -> dict:
    """Land the full and the small extract and write the \\copy file; re-use them if already there."""
    from chiso.contract.canonical import canonical_line
    from chiso.ingest.landing import land

    done = workdir / "prepared.json"
    if done.exists():
        prepared = json.loads(done.read_text())
        if (prepared["rows"], prepared["small_rows"]) == (rows, small_rows):
            print(f"re-using the extracts prepared in {workdir}")
            return prepared
    shutil.rmtree(workdir / "landing", ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    full = _ExtractWriter(workdir / "incoming-full", rows)
    small = _ExtractWriter(workdir / "incoming-small", min(rows, small_rows))
    copy_file = workdir / "copy.tsv"
    with copy_file.open("w", encoding="utf-8") as out:
        for number, row in enumerate(_simulated_rows(rows), start=1):
            line = canonical_line(row)
            full.add(row, line)
            if number <= small_rows:
                small.add(row, line)
            page = f"page-{(number - 1) // PAGE_SIZE + 1:05d}.json"
            out.write(f"1\t{DAY.isoformat()}\t{page}\t{number}\t"
                      f"{_copy_text(json.dumps(row, ensure_ascii=False))}\n")
    if full.count < rows:
        raise SystemExit(f"the simulator produced only {full.count:,} rows")
    full.close()
    small.close()
    generated = time.perf_counter() - started
    landed = {}
    for name, writer in (("full", full), ("small", small)):  # verify and move, as chiso.pipeline.land does
        landed[name] = str(land(writer.directory, workdir / "landing" / name, ENTITY, DAY))
    prepared = {"rows": rows, "small_rows": small.count, "full": landed["full"], "small": landed["small"],
                "copy_file": str(copy_file), "bytes": sum(p.stat().st_size for p in Path(landed["full"]).iterdir())}
    done.write_text(json.dumps(prepared))
    print(f"prepared {rows:,} rows ({prepared['bytes'] / 1e6:,.0f} MB of landed pages) in "
          f"{time.perf_counter() - started:.0f} s (generation {generated:.0f} s, landing the rest); not timed")
    return prepared


# ----------------------------------------------------------------------------- the timed steps

def _vm(field: str) -> float:
    """A line of /proc/self/status in MB (VmHWM: peak resident memory; VmRSS: now)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load_in_this_process(url: str, landed: str, row_by_row: bool = False) -> None:
    """The child: load one extract with the real loader and report time and memory as JSON."""
    import psycopg

    from chiso.ingest import typed_decode
    from chiso.ingest.load import load_extract

    if row_by_row:  # no fast lane: every page through json.loads and the row-by-row checks
        typed_decode.typed_decoders = lambda entity_name: None
    from chiso.ingest.pseudonymise import Pseudonymiser

    pseudonymiser = Pseudonymiser(os.urandom(32))
    with psycopg.connect(url) as conn:
        backend = conn.execute("select pg_backend_pid()").fetchone()[0]
        before = _vm("VmRSS")  # interpreter, psycopg, chiso and the contract, before the first row
        server_cpu, usage = _cpu_seconds(backend), resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        result = load_extract(conn, ENTITY, DAY, Path(landed), pseudonymiser, allow_new_columns=False)
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        server_cpu = None if server_cpu is None else _cpu_seconds(backend) - server_cpu
    print(json.dumps({"seconds": seconds, "cpu_seconds": after.ru_utime + after.ru_stime - usage.ru_utime
                      - usage.ru_stime, "server_cpu_seconds": server_cpu, "rows_loaded": result.rows_loaded,
                      "rows_quarantined": result.rows_quarantined, "rows_in_manifest": result.rows_in_manifest,
                      "rss_before_mb": before, "peak_mb": _vm("VmHWM")}))


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of a process of this machine, e.g. a PostgreSQL backend; None if unseen."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _checkpoint(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("checkpoint")


def run_loader(url: str, landed: str, rows: int, row_by_row: bool = False) -> dict:
    import psycopg

    with psycopg.connect(url) as conn:  # every run loads into an empty raw layer, as \copy does
        conn.execute("truncate raw.quarantine, raw.portal__dossiers, raw.load_ledger, "
                     f"{BASELINE_TABLE}, {BARE_BASELINE_TABLE} cascade")
    _checkpoint(url)
    child = subprocess.run([sys.executable, __file__, "--load-child", landed, "--database-url", url,
                            *(["--row-by-row"] if row_by_row else [])],
                           check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    report = json.loads(child.stdout.strip().splitlines()[-1])
    report["ru_maxrss_children_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if report["rows_loaded"] + report["rows_quarantined"] != rows or report["rows_in_manifest"] != rows:
        raise SystemExit(f"the loader did not account for {rows:,} rows: {report}")
    return report


def run_copy(url: str, copy_file: str, table: str) -> tuple[float, float | None]:
    """Seconds of the \\copy into ``table``, and CPU seconds of its server process (read while it runs)."""
    import psycopg

    with psycopg.connect(url) as conn:  # the ledger row the copied rows refer to
        conn.execute("insert into raw.load_ledger (load_id, entity, business_date, checksum, source_path, "
                     "rows_in_manifest, status) values (%s, 'bench_copy', %s, '-', %s, 0, 'superseded') "
                     "on conflict (load_id) do nothing", (BASELINE_LOAD_ID, DAY, copy_file))
    _checkpoint(url)
    command = (f"\\copy {table} (load_id, business_date, source_file, line_number, record) "
               f"from '{copy_file}'")
    started = time.perf_counter()
    psql = subprocess.Popen(["psql", url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                             "-c", "select pg_backend_pid()", "-c", command], stdout=subprocess.PIPE, text=True)
    backend = int(psql.stdout.readline())
    first = last = _cpu_seconds(backend)
    while psql.poll() is None:
        last = _cpu_seconds(backend) or last
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    if psql.returncode:
        raise SystemExit(f"psql failed ({psql.returncode})")
    return seconds, None if first is None or last is None else last - first


def run_to_sql(url: str, landed: str, rows: int) -> float:
    import pandas as pd
    from sqlalchemy import create_engine
    from sqlalchemy.dialects.postgresql import JSONB

    from chiso.ingest.landing import iter_rows
    from chiso.warehouse import sqlalchemy_url

    sample = [(1, DAY, r.source_file, r.line_number, json.dumps(r.row, ensure_ascii=False))
              for r in itertools.islice(iter_rows(Path(landed)), rows)]
    frame = pd.DataFrame(sample, columns=["load_id", "business_date", "source_file", "line_number", "record"])
    del sample
    engine = create_engine(sqlalchemy_url(url))
    _checkpoint(url)
    started = time.perf_counter()
    frame.to_sql(TO_SQL_TABLE, engine, schema="bench", if_exists="append", index=False, dtype={"record": JSONB})
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds


# ----------------------------------------------------------------------------- main

def _database(admin_url: str) -> tuple[str, str]:
    import psycopg

    from chiso.warehouse import url_parts

    name = f"bench_ingest_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    parts = url_parts(admin_url)
    credentials = parts["user"] + (f":{parts['password']}" if parts["password"] else "")
    return name, f"postgresql://{credentials}@{parts['host']}:{parts['port']}/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=250_000,
                        help="size of the second extract, to compare the loader's peak memory")
    parser.add_argument("--to-sql-rows", type=int, default=100_000, help="rows of the to_sql sample")
    parser.add_argument("--database-url", default=os.environ.get(
        "CHISO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a server and a database to connect to; the benchmark creates and drops its own database")
    parser.add_argument("--workdir", type=Path, help="keep the generated extracts here and re-use them")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--prepare-only", action="store_true", help="generate and land the extracts (with --workdir)")
    parser.add_argument("--compare-row-by-row", action="store_true",
                        help="also time the loader with its fast lane off (about two minutes more)")
    parser.add_argument("--load-child", help=argparse.SUPPRESS)  # internal: the loader's own process
    parser.add_argument("--row-by-row", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_child:
        _load_in_this_process(args.database_url, args.load_child, args.row_by_row)
        return

    import psycopg

    from chiso.warehouse import RAW_SCHEMA, ensure_schema

    load_at_start = os.getloadavg()[0]  # other work on the machine slows every step
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    prepared = prepare(workdir, args.rows, args.small_rows)
    if args.prepare_only:
        return
    name, url = _database(args.database_url)
    print(f"database {name}")
    try:
        ensure_schema(url)
        with psycopg.connect(url) as conn:
            conn.execute("create schema bench")
            for table in (BASELINE_TABLE, BARE_BASELINE_TABLE, f"bench.{TO_SQL_TABLE}"):
                conn.execute(f"create table {table} (like {RAW_SCHEMA}.portal__dossiers including all)")
            conn.execute(f"alter table {BASELINE_TABLE} add foreign key (load_id) "
                         f"references {RAW_SCHEMA}.load_ledger (load_id)")  # LIKE leaves foreign keys out

        rows, small_rows = prepared["rows"], prepared["small_rows"]
        to_sql_rows = min(args.to_sql_rows, rows)
        slow = run_loader(url, prepared["full"], rows, row_by_row=True) if args.compare_row_by_row else None
        small = run_loader(url, prepared["small"], small_rows)
        full = run_loader(url, prepared["full"], rows)
        copy_seconds, copy_server_cpu = run_copy(url, prepared["copy_file"], BASELINE_TABLE)
        bare_seconds, bare_server_cpu = run_copy(url, prepared["copy_file"], BARE_BASELINE_TABLE)
        to_sql_seconds = run_to_sql(url, prepared["full"], to_sql_rows)
        with psycopg.connect(url) as conn:
            counts = [conn.execute(f"select count(*) from {t}").fetchone()[0]
                      for t in ("raw.portal__dossiers", BASELINE_TABLE, BARE_BASELINE_TABLE, f"bench.{TO_SQL_TABLE}")]
        if counts != [full["rows_loaded"], rows, rows, to_sql_rows]:
            raise SystemExit(f"row counts differ from what was loaded: {counts}")
    finally:
        if not args.keep_database:
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f'drop database if exists "{name}" with (force)')
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    loader_rate, copy_rate, bare_rate = rows / full["seconds"], rows / copy_seconds, rows / bare_seconds
    to_sql_rate = to_sql_rows / to_sql_seconds
    sample = "all rows" if to_sql_rows == rows else f"first {to_sql_rows:,} rows, rows/s extrapolated"
    print(f"\n{rows:,} dossier rows, {prepared['bytes'] / 1e6:,.0f} MB of landed JSON pages; "
          f"{full['rows_quarantined']:,} quarantined by the loader")
    print(f"  loader (chiso)  {full['seconds']:7.1f} s  {loader_rate:9,.0f} rows/s")
    if slow:
        print(f"  loader, row by row (no fast lane) {slow['seconds']:7.1f} s  {rows / slow['seconds']:9,.0f} rows/s "
              f"(fast lane: {slow['seconds'] / full['seconds']:.2f}x quicker; CPU us per row "
              f"{slow['cpu_seconds'] / rows * 1e6:.0f} -> {full['cpu_seconds'] / rows * 1e6:.0f})")
    print(f"  psql \\copy      {copy_seconds:7.1f} s  {copy_rate:9,.0f} rows/s  (same table, foreign key included)")
    print(f"  psql \\copy      {bare_seconds:7.1f} s  {bare_rate:9,.0f} rows/s  (same table without the foreign key)")
    print(f"  pandas to_sql   {to_sql_seconds:7.1f} s  {to_sql_rate:9,.0f} rows/s  ({sample})")
    print(f"  loader / \\copy:  {loader_rate / copy_rate:5.0%}  (target >= 70%; {loader_rate / bare_rate:.0%} of "
          f"\\copy without the foreign key)")
    print(f"  loader / to_sql: {loader_rate / to_sql_rate:5.1f}x (target >= 10x; \\copy / to_sql: "
          f"{copy_rate / to_sql_rate:.1f}x)")
    cpu = lambda seconds: "?" if seconds is None else f"{seconds / rows * 1e6:.0f}"  # noqa: E731
    print(f"  CPU us per row: loader process {cpu(full['cpu_seconds'])}, its server process "
          f"{cpu(full['server_cpu_seconds'])}; \\copy's server process {cpu(copy_server_cpu)} "
          f"({cpu(bare_server_cpu)} without the foreign key)")
    print(f"  machine: {os.cpu_count()} CPUs; load average {load_at_start:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end")
    print("  loader peak memory (VmHWM of the process that only loads; target < 500 MB):")
    for report, count in ((small, small_rows), (full, rows)):
        print(f"    {count:>9,} rows: {report['peak_mb']:5.0f} MB  ({report['rss_before_mb']:.0f} MB before the "
              f"first row; {count / report['seconds']:,.0f} rows/s)")
    print(f"    getrusage(RUSAGE_CHILDREN).ru_maxrss: {full['ru_maxrss_children_mb']:.0f} MB")


if __name__ == "__main__":
    main()
