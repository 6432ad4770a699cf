"""Benchmark: how fast the simulator produces a day, from one commune to the whole country.

    .venv/bin/python scripts/bench_simulator.py [--scenario national] [--volume 1.0] [--day 2025-11-12]

Prints, for the day's dossier change feed: rows, seconds and rows/s to generate them, the same for
writing them as the NDJSON.gz whole-day file, and the ratio of generation to a baseline run in the
same process (encoding the same rows as canonical NDJSON, the least any producer must do), plus the
process's peak memory. Not a test: figures go in issue notes.
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import date

from chiso.contract import canonical_line
from chiso.simulator.exports import file_manifest
from chiso.simulator.generator import extract_rows
from chiso.simulator.scenarios import SCENARIOS, get_scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="national", choices=sorted(SCENARIOS))
    parser.add_argument("--volume", type=float, default=1.0)
    parser.add_argument("--day", type=date.fromisoformat, default=date(2025, 11, 12))
    parser.add_argument("--seed", type=int, default=766)
    args = parser.parse_args()

    started = time.perf_counter()
    world = get_scenario(args.scenario, args.volume)
    built = time.perf_counter() - started
    print(f"world {args.scenario} (volume {args.volume}): {len(world.units):,} units in {built:.1f} s")

    started = time.perf_counter()
    rows = list(extract_rows("dossiers", args.seed, world, args.day))
    generation = time.perf_counter() - started
    received = sum(r["NgayTiepNhan"].startswith(args.day.strftime("%Y%m%d")) for r in rows)

    started = time.perf_counter()
    encoded = sum(len(canonical_line(r)) for r in rows)
    baseline = time.perf_counter() - started

    started = time.perf_counter()
    manifest = file_manifest("dossiers", args.day, "ndjson.gz", iter(rows))
    export = time.perf_counter() - started

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"day {args.day}: {len(rows):,} dossier rows ({received:,} received that day, the rest changes)")
    print(f"  generate        {generation:7.1f} s  {len(rows) / generation:10,.0f} rows/s")
    print(f"  canonical NDJSON{baseline:7.1f} s  {len(rows) / baseline:10,.0f} rows/s  (baseline, {encoded / 1e6:.0f} MB)")
    print(f"  NDJSON.gz file  {export:7.1f} s  {len(rows) / export:10,.0f} rows/s  ({manifest['bytes'] / 1e6:.0f} MB)")
    print(f"  generation / baseline time: {generation / baseline:.1f}x")
    print(f"  peak memory: {peak_mb:,.0f} MB (rows held in memory here for the comparison)")


if __name__ == "__main__":
    main()
