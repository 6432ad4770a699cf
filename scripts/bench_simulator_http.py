"""Benchmark: pages per second the portal simulator serves over HTTP, against a baseline in the same process.

    .venv/bin/python scripts/bench_simulator_http.py [--scenario cu_kuin_2024] [--page-size 50] [--rounds 50]

The baseline is what any server must do per page: the page from the simulator's cache, encoded as JSON,
called in-process. The served rate is a requests.Session paging through the same day over HTTP (one
connection at a time, as chiso's fetch does). Prints both rates and their ratio (served / baseline):
the HTTP layer's cost. Not a test: figures go in issue notes.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date

import requests

from chiso.simulator.scenarios import SCENARIOS, get_scenario
from chiso.simulator.server import PortalSimulator, RunningSimulator

TOKEN = "bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="cu_kuin_2024", choices=sorted(SCENARIOS))
    parser.add_argument("--day", type=date.fromisoformat, default=date(2024, 11, 15))
    parser.add_argument("--page-size", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()

    portal = PortalSimulator(766, get_scenario(args.scenario))
    total = len(portal.rows("dossiers", args.day))  # (cached: both sides page the same rows)
    pages = max(1, -(-total // args.page_size))

    started = time.perf_counter()
    for _ in range(args.rounds):
        for page in range(1, pages + 1):
            json.dumps(portal.page("dossiers", args.day, page, args.page_size), ensure_ascii=False).encode()
    baseline = args.rounds * pages / (time.perf_counter() - started)

    with RunningSimulator(portal, TOKEN) as running, requests.Session() as session:
        session.headers["X-Api-Token"] = TOKEN
        started = time.perf_counter()
        for _ in range(args.rounds):
            for page in range(1, pages + 1):
                response = session.get(f"{running.url}/api/v1/dossiers", params={
                    "ngay": args.day.isoformat(), "page": page, "page_size": args.page_size})
                response.raise_for_status()
                response.json()
        served = args.rounds * pages / (time.perf_counter() - started)

    print(f"{args.scenario} {args.day}: {total:,} dossier rows, {pages} pages of {args.page_size}, {args.rounds} rounds")
    print(f"  baseline (in-process page + JSON) {baseline:8.1f} pages/s")
    print(f"  served over HTTP                  {served:8.1f} pages/s")
    print(f"  served / baseline: {served / baseline:.2f}")


if __name__ == "__main__":
    main()
