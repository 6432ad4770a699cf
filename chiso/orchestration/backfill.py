"""Load a range of the simulator's days into a warehouse without Airflow: for engine tests, the
transform benchmark and local development of dbt models.

    python -m chiso.orchestration.backfill --scenario cu_kuin_2024 --from 2024-11-01 --to 2024-11-14 [--seed 766]

The path is the production one minus the scheduler: the simulator served over HTTP, the real
fetch → land → load functions, every contract entity. CHISO_WAREHOUSE_URL names the warehouse.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
from collections.abc import Iterable
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path

from chiso.contract import ENTITIES


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def backfill(url: str, scenario: str, days: Iterable[date], seed: int = 766, volume: float = 1.0,
             landing_root: Path | None = None, entities: Iterable[str] = tuple(ENTITIES),
             pseudonym_key: str | None = None, portal_url: str | None = None,
             portal_token: str = "backfill") -> dict[str, int]:
    """Fetch, land and load every entity of every day; returns rows loaded per entity. ``portal_url``
    names a running portal (or simulator) to fetch from; unset, a simulator of ``scenario`` is started."""
    from chiso.ingest.fetch import Portal, fetch_extract
    from chiso.ingest.landing import land
    from chiso.ingest.load import load_extract
    from chiso.ingest.pseudonymise import Pseudonymiser
    from chiso.simulator.scenarios import get_scenario
    from chiso.simulator.server import PortalSimulator, RunningSimulator
    from chiso.core.warehouse import connect, ensure_schema

    ensure_schema(url)
    pseudonymiser = Pseudonymiser(pseudonym_key or secrets.token_urlsafe(32))
    loaded: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="chiso-backfill-") as scratch, ExitStack() as stack:
        if portal_url is None:
            portal_url = stack.enter_context(
                RunningSimulator(PortalSimulator(seed, get_scenario(scenario, volume)), portal_token)).url
        root = landing_root or Path(scratch)
        portal = Portal(base_url=portal_url, token=portal_token, page_size=5000)
        with connect(url) as conn:
            for day in days:
                for entity in entities:
                    fetched = fetch_extract(portal, entity, day, root)
                    landed = land(fetched, root, entity, day)
                    result = load_extract(conn, entity, day, landed, pseudonymiser).as_dict()
                    loaded[entity] = loaded.get(entity, 0) + int(result.get("rows_loaded") or 0)
    return loaded


def main(argv: list[str] | None = None) -> None:
    from chiso.core.warehouse import warehouse_url

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="cu_kuin_2024")
    parser.add_argument("--from", dest="first", type=date.fromisoformat, required=True)
    parser.add_argument("--to", dest="last", type=date.fromisoformat, required=True)
    parser.add_argument("--seed", type=int, default=766)
    parser.add_argument("--volume", type=float, default=1.0)
    args = parser.parse_args(argv)
    loaded = backfill(warehouse_url(), args.scenario, days_between(args.first, args.last), args.seed, args.volume)
    print(", ".join(f"{entity}: {rows}" for entity, rows in loaded.items()))


if __name__ == "__main__":
    main()
