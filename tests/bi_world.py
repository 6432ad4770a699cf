"""A small warehouse of two provinces (huyện Cư Kuin of Đắk Lắk and huyện Chư Prông of Gia Lai), loaded
through the real fetch, land and load path from the simulator and built with dbt: what the BI access
tests publish and query."""

from __future__ import annotations

import secrets
import tempfile
from datetime import date
from pathlib import Path

import psycopg

DAYS = [date(2024, 11, 14), date(2024, 11, 15)]
PROVINCES = ("000.00.00.H15", "000.00.00.H21")


def two_provinces_world(volume: float = 0.3, gia_lai_volume: float | None = None):
    """Cư Kuin (Đắk Lắk) at ``volume`` and Chư Prông (Gia Lai) at ``gia_lai_volume`` (default: the same)."""
    from chiso.simulator.scenarios import cu_kuin_2024, ia_tor_2024
    from chiso.simulator.world import ALL_PROCEDURES, World

    dak_lak, gia_lai = cu_kuin_2024(volume), ia_tor_2024(volume if gia_lai_volume is None else gia_lai_volume)
    return World("two_provinces", dak_lak.units + gia_lai.units, ALL_PROCEDURES,
                 dak_lak.successions + gia_lai.successions, dak_lak.publishers + gia_lai.publishers)


def load_and_build(url: str) -> None:
    """Fetch, land and load every entity of DAYS, then build the marts with dbt (CHISO_WAREHOUSE_URL and
    CHISO_HOME must point at ``url`` and a scratch home)."""
    from chiso.contract import ENTITIES
    from chiso.ingest.fetch import Portal, fetch_extract
    from chiso.ingest.landing import land
    from chiso.ingest.load import load_extract
    from chiso.ingest.pseudonymise import Pseudonymiser
    from chiso.orchestration.pipeline import transform
    from chiso.simulator.server import PortalSimulator, RunningSimulator
    from chiso.core.warehouse import ensure_schema

    ensure_schema(url)
    with tempfile.TemporaryDirectory(prefix="chiso-bi-") as scratch, \
            RunningSimulator(PortalSimulator(766, two_provinces_world()), "bi") as sim, \
            psycopg.connect(url) as conn:
        portal = Portal(base_url=sim.url, token="bi", page_size=5000)
        for day in DAYS:
            for entity in ENTITIES:
                landed = land(fetch_extract(portal, entity, day, Path(scratch)), Path(scratch), entity, day)
                load_extract(conn, entity, day, landed, Pseudonymiser(secrets.token_urlsafe(16)))
    transform()
