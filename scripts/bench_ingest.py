"""Benchmark: the real loader against ``psql \\copy`` and ``pandas.DataFrame.to_sql``, on a million dossiers.

    .venv/bin/python scripts/bench_ingest.py [--rows 1000000] [--small-rows 250000] [--to-sql-rows 100000]
        [--rounds 1] [--database-url postgresql://postgres@127.0.0.1:5432/postgres] [--workdir DIR] [--keep-database]

Needs PostgreSQL (default: the test server, 127.0.0.1:5432, user postgres) and ``psql`` on the PATH.
It creates a throw-away database ``bench_ingest_<random>`` next to the one named by --database-url
and drops it at the end (--keep-database keeps it).

Untimed preparation: the simulator's national scenario produces --rows dossier rows (personal fields,
nested lists and all), written as the pipeline lands them: pages of 500 rows as the portal serves
them plus a manifest, verified and moved into the landing zone by ``chiso.ingest.landing.land``. The
first --small-rows rows are landed as a second extract, to show that the loader's memory does not
grow with the file. The same rows are also written one per line for ``\\copy``, and as the cells of the
portal's CSV export (``chiso.contract.csv_format``) for the typed ``\\copy``. --workdir keeps the
generated files and re-uses them on the next run (generation takes minutes).

Timed, in one run, on the same rows:

1. the real loader, ``chiso.ingest.load.load_extract`` (contract validation, NFC, pseudonymisation,
   COPY, ledger, quarantine accounting), in a child process that does nothing else, so that its
   peak resident memory (VmHWM) is the loader's; once for the small and once for the full extract;
2. ``psql \\copy`` of the same rows into a table shaped like ``raw.portal__dossiers`` (JSONB record,
   the same indexes and the same foreign key to ``raw.load_ledger``, which costs the server a lookup
   per row): the throughput a bulk load cannot beat, with no validation or pseudonyms; and, for
   comparison, into the same table without the foreign key;
3. the honest baseline (issue 13, "load at the physical limit"): ``psql \\copy`` of the same rows as
   CSV (the portal's export cells: dd/mm/yyyy datetimes, nested lists as compact JSON) into a typed
   table, one column per contract field (text, integer, smallint flags, timestamp, jsonb lists, and an
   ``extra`` jsonb for unknown columns), partitioned by month like the raw tables, with the foreign key
   to the ledger and indexes on business_date and MaHoSo;
4. a prototype of a typed raw layer, in the benchmark only: the loader's fast lane (msgspec decode =
   contract check, the same pseudonym functions) writing COPY text with one field per column into a
   table of that shape, in a child process of its own. Fast-lane pages only: it stops on any other;
5. ``pandas.DataFrame.to_sql`` (pandas' defaults, through SQLAlchemy) of the first --to-sql-rows rows
   into the JSONB shape, extrapolated as rows/s (building the DataFrame is not timed).

Steps 1 (full extract) to 4 run --rounds times in alternation; the summary gives each one's median
and the median of the per-round ratios, with CPU per row of each client and its server process, bytes
per row sent to COPY, and each table's size.

With --compare-row-by-row, the loader also runs with its fast lane switched off (every page parsed and
checked row by row, as before chiso.ingest.typed_decode), to show what the fast lane gains.

A CHECKPOINT precedes each timed step. Prints rows/s, the ratios loader/\\copy (JSON and typed),
prototype/typed \\copy and loader/to_sql, and the loader's peak memory. Not a test: figures go in
docs/performance.md and issue notes. The machine's other load makes timings noisy; compare the ratios
of one run (--rounds), and run it more than once.
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
TYPED_BASELINE_TABLE = "bench.typed_copy_baseline"  # one column per contract field, \copy of CSV
TYPED_PROTOTYPE_TABLE = "bench.typed_prototype"  # the same shape, filled by the typed-raw prototype
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
    for name, writer in (("full", full), ("small", small)):  # verify and move, as chiso.orchestration.pipeline.land does
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

    from chiso.ingest import load

    sent = [0]  # bytes the loader sends to COPY: one len() per page
    page = load._RowWriter.page

    def counted_page(self, raw_page):
        chunk = page(self, raw_page)
        sent[0] += len(chunk) if isinstance(chunk, bytes) else len(chunk.encode())
        return chunk

    load._RowWriter.page = counted_page
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
                      "bytes_sent": sent[0], "rss_before_mb": before, "peak_mb": _vm("VmHWM")}))


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
        conn.execute("truncate raw.quarantine, raw.portal__dossiers, raw.load_ledger cascade")
    _checkpoint(url)
    child = subprocess.run([sys.executable, __file__, "--load-child", landed, "--database-url", url,
                            *(["--row-by-row"] if row_by_row else [])],
                           check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    report = json.loads(child.stdout.strip().splitlines()[-1])
    report["ru_maxrss_children_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if report["rows_loaded"] + report["rows_quarantined"] != rows or report["rows_in_manifest"] != rows:
        raise SystemExit(f"the loader did not account for {rows:,} rows: {report}")
    return report


def _ensure_baseline_ledger_row(url: str, source_path: str) -> None:
    """The ledger row the baselines' rows refer to (the loader's runs truncate the ledger)."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("insert into raw.load_ledger (load_id, entity, business_date, checksum, source_path, "
                     "rows_in_manifest, status) values (%s, 'bench_copy', %s, '-', %s, 0, 'superseded') "
                     "on conflict (load_id) do nothing", (BASELINE_LOAD_ID, DAY, source_path))


def run_json_copy(url: str, copy_file: str, table: str) -> tuple[float, float | None, float]:
    return run_copy(url, f"\\copy {table} (load_id, business_date, source_file, line_number, record) "
                         f"from '{copy_file}'", table)


def run_copy(url: str, command: str, table: str,
             datestyle: str | None = None) -> tuple[float, float | None, float]:
    """Seconds of a \\copy into ``table`` (emptied first), CPU seconds of its server process (read while
    it runs) and of psql (this process's only child meanwhile)."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute(f"truncate {table}")
    _ensure_baseline_ledger_row(url, command)
    _checkpoint(url)
    env = {**os.environ, **({"PGOPTIONS": f"-c datestyle={datestyle.replace(' ', '')}"} if datestyle else {})}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    psql = subprocess.Popen(["psql", url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                             "-c", "select pg_backend_pid()", "-c", command], stdout=subprocess.PIPE, text=True,
                            env=env)
    backend = int(psql.stdout.readline())
    first = last = _cpu_seconds(backend)
    while psql.poll() is None:
        last = _cpu_seconds(backend) or last
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    if psql.returncode:
        raise SystemExit(f"psql failed ({psql.returncode})")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    psql_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    return seconds, None if first is None or last is None else last - first, psql_cpu


def run_to_sql(url: str, landed: str, rows: int) -> float:
    import pandas as pd
    from sqlalchemy import create_engine
    from sqlalchemy.dialects.postgresql import JSONB

    from chiso.ingest.landing import iter_rows
    from chiso.core.warehouse import sqlalchemy_url

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


# ----------------------------------------------------------------------------- typed raw columns
#
# The honest baseline of issue 13 ("load at the physical limit"): the same rows as CSV, \copy'd into a
# table with one column per contract field, and a prototype of what a typed raw layer would let the
# loader reach. Both tables have the raw layer's shape around the columns: partitioned by month of
# business_date, the foreign key to raw.load_ledger, an index on business_date and one on MaHoSo (the
# raw layer indexes record ->> 'MaHoSo'), and an ``extra`` jsonb column for the columns a later portal
# version may add (what CHISO_ALLOW_NEW_COLUMNS keeps today inside the record).

_SQL_TYPES = {"string": "text", "integer": "integer", "number": "numeric", "flag": "smallint",
              "datetime": "timestamp", "array": "jsonb"}  # datetimes: portal local time, as sent


def _typed_columns() -> list[tuple[str, str]]:
    """(column, SQL type) of every contract field of the entity, in contract order."""
    from chiso.contract.entities import get_entity

    return [(field.name, _SQL_TYPES[field.type]) for field in get_entity(ENTITY).field_list]


def _create_typed_table(conn, table: str) -> None:
    from chiso.core.warehouse import RAW_SCHEMA, month_start, next_month

    schema, name = table.split(".")
    columns = ",\n".join(f'"{column}" {sql_type}' for column, sql_type in _typed_columns())
    conn.execute(f"""
        create table {table} (
            load_id bigint not null references {RAW_SCHEMA}.load_ledger (load_id),
            business_date date not null,
            source_file text not null,
            line_number integer not null,
            loaded_at timestamptz not null default now(),
            {columns},
            extra jsonb
        ) partition by range (business_date)""")
    first = month_start(DAY)
    conn.execute(f"create table {schema}.{name}_p{first:%Y_%m} partition of {table} "
                 f"for values from ('{first}') to ('{next_month(first)}')")
    conn.execute(f"create index on {table} (business_date)")
    conn.execute(f'create index on {table} ("MaHoSo")')


def prepare_typed_csv(workdir: Path, prepared: dict) -> str:
    """The landed rows as the portal's CSV export writes their cells (chiso.contract.csv_format:
    datetimes dd/mm/yyyy HH:MM:SS, flags 0/1, nested lists as compact JSON, None as an empty cell),
    each preceded by the four load columns; no BOM, no header. Personal fields in clear, as in the
    JSON \\copy file. Untimed; re-used if there."""
    import csv

    from chiso.contract.csv_format import _row_writer  # the export's cells, without its header and BOM
    from chiso.contract.entities import get_entity
    from chiso.ingest.landing import iter_rows

    path = workdir / "typed.csv"
    if prepared.get("typed_csv_file") == str(path) and path.exists():
        return str(path)
    row_cells = _row_writer(get_entity(ENTITY))
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        for row in iter_rows(Path(prepared["full"])):
            writer.writerow([BASELINE_LOAD_ID, DAY.isoformat(), row.source_file, row.line_number,
                             *row_cells(row.row)])
    prepared["typed_csv_file"] = str(path)
    (workdir / "prepared.json").write_text(json.dumps(prepared))
    return str(path)


def run_typed_copy(url: str, csv_file: str) -> tuple[float, float | None, float]:
    """\\copy of the portal's CSV cells into the typed table (datestyle DMY for dd/mm/yyyy)."""
    columns = ", ".join(["load_id", "business_date", "source_file", "line_number",
                         *(f'"{column}"' for column, _ in _typed_columns())])
    return run_copy(url, f"\\copy {TYPED_BASELINE_TABLE} ({columns}) from '{csv_file}' with (format csv)",
                    TYPED_BASELINE_TABLE, datestyle="ISO, DMY")


class _TypedRowWriter:
    """The prototype's rows: the loader's fast lane (msgspec decode = contract check, the same
    pseudonym functions), then one COPY text field per contract field instead of one JSON record."""

    def __init__(self, pseudonymiser, load_id: int):
        from msgspec import structs

        from chiso.contract.entities import get_entity
        from chiso.ingest.load import _copy_field
        from chiso.ingest.typed_decode import encoder, typed_decoders

        entity = get_entity(ENTITY)
        self.decoders = typed_decoders(ENTITY)
        row_type = self.decoders.row.type
        kinds = {field.name: field.type for field in entity.field_list}
        order = [info.encode_name for info in structs.fields(row_type)]  # astuple's order
        # Columns are listed in the struct's order, so each row is astuple(record) converted in place.
        self.columns = order
        self.pseudonyms = [(self.decoders.attribute[field], pseudonymiser.for_nfc_text(field))
                           for field in entity.personal_fields]
        self.strings = [i for i, name in enumerate(order) if kinds[name] == "string"]
        self.numbers = [i for i, name in enumerate(order) if kinds[name] in ("integer", "number", "flag")]
        self.datetimes = [i for i, name in enumerate(order) if kinds[name] == "datetime"]
        self.arrays = [i for i, name in enumerate(order) if kinds[name] == "array"]
        self.astuple = structs.astuple
        self.encode, self.copy_field = encoder().encode, _copy_field  # the loader's own
        self.load_id, self.line_number, self.bytes_sent = load_id, 0, 0

    def pseudonymise(self, records: list) -> None:
        """As the loader's fast lane: an empty text becomes null, absent and null stay so."""
        for record in records:
            for attribute, pseudonym in self.pseudonyms:
                value = getattr(record, attribute)
                if type(value) is str:
                    setattr(record, attribute, pseudonym(value) if value else None)

    def page(self, page) -> bytes:
        from msgspec import UNSET

        if page.lines is not None or not page.already_nfc():
            raise SystemExit("the prototype covers only NFC pages of a paged extract (the fast lane)")
        records = self.decoders.page.decode(page.text).items  # raises on a row the fast lane refuses
        # JSON escapes every backslash, quote and control character with a backslash: a page without
        # one has no string that COPY's text format would need to escape.
        plain = "\\" not in page.text
        prefix = f"{self.load_id}\t{DAY.isoformat()}\t{self.copy_field(page.source_file)}\t"
        strings, numbers, datetimes, arrays = self.strings, self.numbers, self.datetimes, self.arrays
        astuple, encode, lines = self.astuple, self.encode, []
        self.pseudonymise(records)
        number = self.line_number
        for record in records:
            number += 1
            cells = list(astuple(record))
            for i in strings:
                value = cells[i]
                if value is None or value is UNSET:
                    cells[i] = "\\N"
                elif not plain:
                    cells[i] = self.copy_field(value)
            for i in numbers:
                value = cells[i]
                cells[i] = "\\N" if value is None or value is UNSET else str(value)
            for i in datetimes:  # yyyyMMddHHmmss -> yyyyMMddTHHmmss, which timestamp input reads
                value = cells[i]
                cells[i] = "\\N" if value is None or value is UNSET else f"{value[:8]}T{value[8:]}"
            for i in arrays:
                value = cells[i]
                if value is None or value is UNSET:
                    cells[i] = "\\N"
                else:
                    text = encode(value).decode()
                    cells[i] = text if plain else text.replace("\\", "\\\\")
            lines.append(f"{prefix}{number}\t" + "\t".join(cells))
        self.line_number = number
        lines.append("")
        chunk = "\n".join(lines).encode()
        self.bytes_sent += len(chunk)
        return chunk


def _typed_load_in_this_process(url: str, landed: str) -> None:
    """The prototype's child: load one extract into the typed table, report time and CPU as JSON."""
    import psycopg

    from chiso.ingest.landing import iter_raw_pages
    from chiso.ingest.pseudonymise import Pseudonymiser

    writer = _TypedRowWriter(Pseudonymiser(os.urandom(32)), BASELINE_LOAD_ID)
    columns = ", ".join(["load_id", "business_date", "source_file", "line_number",
                         *(f'"{column}"' for column in writer.columns)])
    with psycopg.connect(url) as conn:
        backend = conn.execute("select pg_backend_pid()").fetchone()[0]
        server_cpu, usage = _cpu_seconds(backend), resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        with conn.transaction(), conn.cursor().copy(f"copy {TYPED_PROTOTYPE_TABLE} ({columns}) from stdin") as copy:
            for page in iter_raw_pages(Path(landed)):
                copy.write(writer.page(page))
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        server_cpu = None if server_cpu is None else _cpu_seconds(backend) - server_cpu
    print(json.dumps({"seconds": seconds, "cpu_seconds": after.ru_utime + after.ru_stime - usage.ru_utime
                      - usage.ru_stime, "server_cpu_seconds": server_cpu, "rows_loaded": writer.line_number,
                      "bytes_sent": writer.bytes_sent, "peak_mb": _vm("VmHWM")}))


def run_typed_prototype(url: str, landed: str, rows: int) -> dict:
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute(f"truncate {TYPED_PROTOTYPE_TABLE}")
    _ensure_baseline_ledger_row(url, landed)
    _checkpoint(url)
    child = subprocess.run([sys.executable, __file__, "--typed-child", landed, "--database-url", url],
                           check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    report = json.loads(child.stdout.strip().splitlines()[-1])
    if report["rows_loaded"] != rows:
        raise SystemExit(f"the typed prototype loaded {report['rows_loaded']:,} rows, not {rows:,}")
    return report


def client_cpu_breakdown(landed: str, limit: int) -> dict[str, float]:
    """CPU microseconds per row of each stage of the typed prototype, and of the loader's fast lane,
    on the first ``limit`` rows' pages (held in memory; no server). Each page's records are dropped
    before the next page, as in the loader: holding them all would make the garbage collector, not
    the stages, the cost measured."""
    from chiso.contract.entities import get_entity
    from chiso.ingest import load
    from chiso.ingest.landing import iter_raw_pages
    from chiso.ingest.pseudonymise import Pseudonymiser

    clock = time.process_time
    pseudonymiser = Pseudonymiser(os.urandom(32))
    started = clock()
    pages = list(itertools.islice(iter_raw_pages(Path(landed)), -(-limit // PAGE_SIZE)))
    stages = {"read pages": clock() - started, "NFC check": 0.0, "msgspec decode (contract check)": 0.0,
              "pseudonyms": 0.0}
    typed = _TypedRowWriter(pseudonymiser, BASELINE_LOAD_ID)
    rows = 0
    for page in pages:
        started = clock()
        page.already_nfc()
        decoded = clock()
        records = typed.decoders.page.decode(page.text).items
        pseudonymising = clock()
        typed.pseudonymise(records)
        stages["pseudonyms"] += clock() - pseudonymising
        stages["msgspec decode (contract check)"] += pseudonymising - decoded
        stages["NFC check"] += decoded - started
        rows += len(records)
        del records
    started = clock()
    for page in pages:
        typed.page(page)
    typed_page = clock() - started
    json_writer = load._RowWriter(get_entity(ENTITY), DAY, BASELINE_LOAD_ID, pseudonymiser, False, True)
    started = clock()
    for page in pages:
        json_writer.page(page)
    json_page = clock() - started
    checked = stages["NFC check"] + stages["msgspec decode (contract check)"] + stages["pseudonyms"]
    stages["typed: cells to COPY text"] = typed_page - checked  # (the rest of the prototype's page())
    stages["loader: JSON record to COPY text"] = json_page - checked  # (the rest of the loader's page())
    stages["typed prototype, whole page()"] = typed_page
    stages["loader fast lane, whole page()"] = json_page
    return {stage: seconds / rows * 1e6 for stage, seconds in stages.items()} | {"rows": rows}


def table_megabytes(url: str, table: str) -> tuple[float, float]:
    """(heap and TOAST, indexes) of a table, partitions included, in MB."""
    import psycopg

    with psycopg.connect(url) as conn:
        heap, indexes = conn.execute(  # pg_partition_tree has no rows for a plain table
            "select coalesce(sum(pg_table_size(relid)), pg_table_size(%(t)s::regclass)), "
            "coalesce(sum(pg_indexes_size(relid)), pg_indexes_size(%(t)s::regclass)) "
            "from pg_partition_tree(%(t)s::regclass)", {"t": table}).fetchone()
    return float(heap) / 1e6, float(indexes) / 1e6


# ----------------------------------------------------------------------------- main

def _database(admin_url: str) -> tuple[str, str]:
    import psycopg

    from chiso.core.warehouse import url_parts

    name = f"bench_ingest_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    parts = url_parts(admin_url)
    credentials = parts["user"] + (f":{parts['password']}" if parts["password"] else "")
    return name, f"postgresql://{credentials}@{parts['host']}:{parts['port']}/{name}"


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=250_000,
                        help="size of the second extract, to compare the loader's peak memory")
    parser.add_argument("--to-sql-rows", type=int, default=100_000, help="rows of the to_sql sample (0: skip it)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the loader, the \\copy baselines and the typed prototype this many times, "
                             "in alternation; the summary takes each one's median")
    parser.add_argument("--breakdown-rows", type=int, default=50_000,
                        help="rows (held in memory) of the per-stage CPU breakdown of the client side")
    parser.add_argument("--database-url", default=os.environ.get(
        "CHISO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a server and a database to connect to; the benchmark creates and drops its own database")
    parser.add_argument("--workdir", type=Path, help="keep the generated extracts here and re-use them")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--prepare-only", action="store_true", help="generate and land the extracts (with --workdir)")
    parser.add_argument("--compare-row-by-row", action="store_true",
                        help="also time the loader with its fast lane off (about two minutes more)")
    parser.add_argument("--load-child", help=argparse.SUPPRESS)  # internal: the loader's own process
    parser.add_argument("--typed-child", help=argparse.SUPPRESS)  # internal: the typed prototype's process
    parser.add_argument("--row-by-row", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_child:
        _load_in_this_process(args.database_url, args.load_child, args.row_by_row)
        return
    if args.typed_child:
        _typed_load_in_this_process(args.database_url, args.typed_child)
        return

    import psycopg

    from chiso.core.warehouse import RAW_SCHEMA, ensure_schema

    load_at_start = os.getloadavg()[0]  # other work on the machine slows every step
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    prepared = prepare(workdir, args.rows, args.small_rows)
    typed_csv = prepare_typed_csv(workdir, prepared)
    if args.prepare_only:
        return
    name, url = _database(args.database_url)
    print(f"database {name}")
    rows, small_rows = prepared["rows"], prepared["small_rows"]
    rounds: list[dict] = []
    try:
        ensure_schema(url)
        with psycopg.connect(url) as conn:
            conn.execute("create schema bench")
            for table in (BASELINE_TABLE, BARE_BASELINE_TABLE, f"bench.{TO_SQL_TABLE}"):
                conn.execute(f"create table {table} (like {RAW_SCHEMA}.portal__dossiers including all)")
            conn.execute(f"alter table {BASELINE_TABLE} add foreign key (load_id) "
                         f"references {RAW_SCHEMA}.load_ledger (load_id)")  # LIKE leaves foreign keys out
            for table in (TYPED_BASELINE_TABLE, TYPED_PROTOTYPE_TABLE):
                _create_typed_table(conn, table)

        to_sql_rows = min(args.to_sql_rows, rows)
        slow = run_loader(url, prepared["full"], rows, row_by_row=True) if args.compare_row_by_row else None
        small = run_loader(url, prepared["small"], small_rows)
        for number in range(1, args.rounds + 1):  # alternate, so that the machine's load hits each alike
            step = {"loader": run_loader(url, prepared["full"], rows),
                    "copy": run_json_copy(url, prepared["copy_file"], BASELINE_TABLE),
                    "bare": run_json_copy(url, prepared["copy_file"], BARE_BASELINE_TABLE),
                    "typed_copy": run_typed_copy(url, typed_csv),
                    "typed_prototype": run_typed_prototype(url, prepared["full"], rows),
                    "load_average": os.getloadavg()[0]}
            rounds.append(step)
            print(f"round {number}: rows/s loader {rows / step['loader']['seconds']:,.0f}, \\copy JSON "
                  f"{rows / step['copy'][0]:,.0f}, \\copy typed CSV {rows / step['typed_copy'][0]:,.0f}, "
                  f"typed prototype {rows / step['typed_prototype']['seconds']:,.0f} "
                  f"(load average {step['load_average']:.1f})", flush=True)
        to_sql_seconds = run_to_sql(url, prepared["full"], to_sql_rows) if to_sql_rows else None
        breakdown = client_cpu_breakdown(prepared["full"], min(rows, args.breakdown_rows))
        with psycopg.connect(url) as conn:
            counts = [conn.execute(f"select count(*) from {t}").fetchone()[0]
                      for t in ("raw.portal__dossiers", BASELINE_TABLE, BARE_BASELINE_TABLE, f"bench.{TO_SQL_TABLE}",
                                TYPED_BASELINE_TABLE, TYPED_PROTOTYPE_TABLE)]
        full = rounds[-1]["loader"]
        if counts != [full["rows_loaded"], rows, rows, to_sql_rows, rows, rows]:
            raise SystemExit(f"row counts differ from what was loaded: {counts}")
        sizes = {label: table_megabytes(url, table) for label, table in (
            ("loader", "raw.portal__dossiers"), ("copy", BASELINE_TABLE), ("typed_copy", TYPED_BASELINE_TABLE),
            ("typed_prototype", TYPED_PROTOTYPE_TABLE))}
    finally:
        if not args.keep_database:
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f'drop database if exists "{name}" with (force)')
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    def median(pick) -> float:
        return _median([pick(step) for step in rounds])

    loader_seconds = median(lambda step: step["loader"]["seconds"])
    copy_seconds, bare_seconds = median(lambda step: step["copy"][0]), median(lambda step: step["bare"][0])
    typed_seconds = median(lambda step: step["typed_copy"][0])
    prototype_seconds = median(lambda step: step["typed_prototype"]["seconds"])
    loader_rate, copy_rate, bare_rate = rows / loader_seconds, rows / copy_seconds, rows / bare_seconds
    typed_rate, prototype_rate = rows / typed_seconds, rows / prototype_seconds
    share = lambda pick: median(lambda step: pick(step)) * 100  # noqa: E731 (a per-round ratio's median, in %)
    of = "median of " + (f"{len(rounds)} rounds" if len(rounds) > 1 else "1 round")
    print(f"\n{rows:,} dossier rows, {prepared['bytes'] / 1e6:,.0f} MB of landed JSON pages; "
          f"{full['rows_quarantined']:,} quarantined by the loader; {of}")
    print(f"  loader (chiso)  {loader_seconds:7.1f} s  {loader_rate:9,.0f} rows/s")
    if slow:
        print(f"  loader, row by row (no fast lane) {slow['seconds']:7.1f} s  {rows / slow['seconds']:9,.0f} rows/s "
              f"(fast lane: {slow['seconds'] / full['seconds']:.2f}x quicker; CPU us per row "
              f"{slow['cpu_seconds'] / rows * 1e6:.0f} -> {full['cpu_seconds'] / rows * 1e6:.0f})")
    print(f"  psql \\copy      {copy_seconds:7.1f} s  {copy_rate:9,.0f} rows/s  (same JSON, same table, foreign key "
          f"included)")
    print(f"  psql \\copy      {bare_seconds:7.1f} s  {bare_rate:9,.0f} rows/s  (same JSON, same table without the "
          f"foreign key)")
    print(f"  psql \\copy      {typed_seconds:7.1f} s  {typed_rate:9,.0f} rows/s  (the portal's CSV cells into a "
          f"typed table, partitioned by month, foreign key included: the honest baseline)")
    print(f"  typed prototype {prototype_seconds:7.1f} s  {prototype_rate:9,.0f} rows/s  (fast lane + pseudonyms, "
          f"COPY text into the typed table)")
    if to_sql_seconds:
        to_sql_rate = to_sql_rows / to_sql_seconds
        sample = "all rows" if to_sql_rows == rows else f"first {to_sql_rows:,} rows, rows/s extrapolated"
        print(f"  pandas to_sql   {to_sql_seconds:7.1f} s  {to_sql_rate:9,.0f} rows/s  ({sample})")
    print(f"  loader / \\copy JSON:       {share(lambda s: s['copy'][0] / s['loader']['seconds']):5.0f}%  "
          f"({share(lambda s: s['bare'][0] / s['loader']['seconds']):.0f}% of \\copy without the foreign key)")
    print(f"  loader / \\copy typed CSV:  {share(lambda s: s['typed_copy'][0] / s['loader']['seconds']):5.0f}%  "
          f"(target >= 70%)")
    print(f"  typed prototype / \\copy typed CSV: "
          f"{share(lambda s: s['typed_copy'][0] / s['typed_prototype']['seconds']):5.0f}%")
    if to_sql_seconds:
        print(f"  loader / to_sql: {loader_rate / to_sql_rate:5.1f}x (target >= 10x; \\copy / to_sql: "
              f"{copy_rate / to_sql_rate:.1f}x)")
    per_row = lambda seconds: "?" if seconds is None else f"{seconds / rows * 1e6:.1f}"  # noqa: E731
    cpu = lambda pick: per_row(median(pick)) if all(pick(s) is not None for s in rounds) else "?"  # noqa: E731
    print("  CPU us per row (client process, psql or the loader / its server process):")
    print(f"    loader           {cpu(lambda s: s['loader']['cpu_seconds']):>5} / "
          f"{cpu(lambda s: s['loader']['server_cpu_seconds'])}")
    print(f"    \\copy JSON       {cpu(lambda s: s['copy'][2]):>5} / {cpu(lambda s: s['copy'][1])}  "
          f"({cpu(lambda s: s['bare'][1])} without the foreign key)")
    print(f"    \\copy typed CSV  {cpu(lambda s: s['typed_copy'][2]):>5} / {cpu(lambda s: s['typed_copy'][1])}")
    print(f"    typed prototype  {cpu(lambda s: s['typed_prototype']['cpu_seconds']):>5} / "
          f"{cpu(lambda s: s['typed_prototype']['server_cpu_seconds'])}")
    print(f"  client CPU us per row by stage, each alone on the first {breakdown.pop('rows'):,} rows held in memory:")
    for stage, micros in breakdown.items():
        print(f"    {stage:<36} {micros:5.1f}")
    copy_bytes = Path(prepared["copy_file"]).stat().st_size
    typed_bytes = Path(typed_csv).stat().st_size
    print("  bytes per row sent to COPY; table MB (heap and TOAST + indexes, partitions included):")
    for label, sent, size in (("loader (jsonb)", full["bytes_sent"], sizes["loader"]),
                              ("\\copy JSON", copy_bytes, sizes["copy"]),
                              ("\\copy typed CSV", typed_bytes, sizes["typed_copy"]),
                              ("typed prototype", rounds[-1]["typed_prototype"]["bytes_sent"],
                               sizes["typed_prototype"])):
        print(f"    {label:<16} {sent / rows:6,.0f} B/row   {size[0]:7,.0f} + {size[1]:5,.0f} MB")
    print(f"  machine: {os.cpu_count()} CPUs; load average {load_at_start:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end")
    print("  loader peak memory (VmHWM of the process that only loads; target < 500 MB):")
    for report, count in ((small, small_rows), (full, rows)):
        print(f"    {count:>9,} rows: {report['peak_mb']:5.0f} MB  ({report['rss_before_mb']:.0f} MB before the "
              f"first row; {count / report['seconds']:,.0f} rows/s)")
    print(f"    getrusage(RUSAGE_CHILDREN).ru_maxrss: {full['ru_maxrss_children_mb']:.0f} MB; typed prototype's "
          f"peak {rounds[-1]['typed_prototype']['peak_mb']:.0f} MB")


if __name__ == "__main__":
    main()
