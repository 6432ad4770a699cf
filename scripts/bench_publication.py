"""Benchmark: what keeping the published figures adds to a night's publication (docs/publication.md).

    .venv/bin/python scripts/bench_publication.py [--history-days 20] [--nights 3] [--volume 1.0]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres] [--keep-database]

Creates a throw-away database ``chiso_pubbench_<random>`` next to --database-url and drops it at the end.
Untimed: Cư Kuin (cu_kuin_2024) from 2024-11-01 for --history-days through chiso.orchestration.backfill, the engine
built. Timed, for the first publication (the baseline: every value kept) and for each following night
(load, incremental build untimed): the whole publication (chiso.publish.publication.publish) and, inside it,
chiso.publish.published_values.record; prints the rows kept, the seconds and record's share of the publication.
Not a test: a ratio in one process, never an absolute time to assert.
"""

from __future__ import annotations

import argparse
import secrets
import time
import uuid
from datetime import date, timedelta

import psycopg

from chiso.publish.publication import published_values
from chiso.orchestration.backfill import backfill, days_between
from chiso.publish.publication import publish
from chiso.transform.runner import run_dbt

ENGINE = ["run", "--select", "+fct_unit_scores", "+fct_plan_metric_values", "int_engine_watermarks",
          "mart_peer_rankings", "+mart_target_attainment", "+mart_peer_lists"]
FIRST = date(2024, 11, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--history-days", type=int, default=20)
    parser.add_argument("--nights", type=int, default=3)
    parser.add_argument("--volume", type=float, default=1.0)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep-database", action="store_true")
    args = parser.parse_args()
    name = f"chiso_pubbench_{uuid.uuid4().hex[:8]}"
    base = args.database_url.rpartition("/")[0]
    url = f"{base}/{name}"
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    timings: list[float] = []
    original = published_values.record

    def timed_record(*a, **k):
        started = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            timings.append(time.perf_counter() - started)
    published_values.record = timed_record
    try:
        key = secrets.token_urlsafe(32)   # one key: the nights' pseudonyms match the history's
        history = days_between(FIRST, FIRST + timedelta(days=args.history_days - 1))
        backfill(url, "cu_kuin_2024", history, seed=766, volume=args.volume, pseudonym_key=key)
        run_dbt(["build", "--select", "resource_type:seed", "--full-refresh", "--indirect-selection", "cautious"], url)
        run_dbt(ENGINE, url)
        print("night | values kept | restated | scores kept | record s | publish s | record / publish")
        nights = [history[-1]] + [history[-1] + timedelta(days=n) for n in range(1, args.nights + 1)]
        for number, night in enumerate(nights):
            if number:
                backfill(url, "cu_kuin_2024", [night], seed=766, volume=args.volume, pseudonym_key=key)
                run_dbt(ENGINE, url)
            started = time.perf_counter()
            publication = publish(night, [], url)
            whole = time.perf_counter() - started
            kept = publication.figures_kept
            label = f"{night} (first)" if number == 0 else str(night)
            print(f"{label} | {kept.values:,} | {kept.restated:,} | {kept.scores:,} | {timings[-1]:.2f} | {whole:.2f} | "
                  f"{timings[-1] / whole:.2f}")
    finally:
        published_values.record = original
        if not args.keep_database:
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f'drop database if exists "{name}" with (force)')


if __name__ == "__main__":
    main()
