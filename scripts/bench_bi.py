"""How fast each dashboard card answers, next to a plain count(*) of its main source, in the same run.

    .venv/bin/python scripts/bench_bi.py --warehouse postgresql://postgres@127.0.0.1:5432/chiso \
        --province 000.00.00.H15 [--size "3 communes, 10 days"] [--repeat 5]

Runs every card of bi/dashboards against the warehouse's published ``reporting`` schema (as whoever the URL
logs in as) and prints, per card, the median of ``--repeat`` runs, the median of ``select count(*)`` over the
card's largest ``reporting`` relation, and their ratio. The issue's target is each card under 1 s on a
national year (about 50M dossiers); ``--size`` is only a label for the printout, saying what was measured.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time

import psycopg

from chiso.bi.checks import run
from chiso.bi.dashboards import load_all

DRILL = {"unit": None, "indicator": "ON_TIME"}


def _median_seconds(conn, query: str, values: dict, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run(conn, query, values)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--province", required=True)
    parser.add_argument("--size", default="unspecified", help="what the warehouse holds (printed with the figures)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"warehouse: {args.size}; median of {args.repeat} runs each")
    print(f"{'card':55} {'card s':>9} {'count(*) s':>11} {'ratio':>7}  source (rows)")
    with psycopg.connect(args.warehouse, autocommit=True) as conn:
        for dashboard in load_all():
            values = dashboard.values({"province": args.province, **{k: v for k, v in DRILL.items() if v}})
            for card in dashboard.cards:
                # The card's source: of the reporting relations it reads, the one with the most rows.
                names = sorted(set(re.findall(r"reporting\.(\w+)", card.sql)) - {"publication_status"})
                sizes = {name: conn.execute(f"select count(*) from reporting.{name}").fetchone()[0] for name in names}
                source = max(names, key=sizes.get)
                card_s = _median_seconds(conn, card.sql, values, args.repeat)
                count_s = _median_seconds(conn, f"select count(*) from reporting.{source}", {}, args.repeat)
                print(f"{dashboard.slug + '/' + card.key:55} {card_s:9.4f} {count_s:11.4f} "
                      f"{card_s / count_s if count_s else float('nan'):7.2f}  reporting.{source} ({sizes[source]:,})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
