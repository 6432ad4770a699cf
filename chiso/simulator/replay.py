"""A simulator that exports each whole-day file once and serves it from disk afterwards.

A national day takes the generator tens of seconds per entity; a benchmark that wants to time the
pipeline's fetch, not the simulator's generation, exports the day first (untimed, or once per cache)
and then downloads it through the ordinary HTTP API. Faults still go through the generator: a day
with a fault plan is never cached.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from chiso.simulator import exports
from chiso.simulator.faults import FaultPlan
from chiso.simulator.server import PortalSimulator

CHUNK_BYTES = 1 << 20


class ExportCachingSimulator(PortalSimulator):
    """PortalSimulator whose clean whole-day files live in ``cache_dir/<world>/<seed>/<day>/``."""

    def __init__(self, seed, world, cache_dir: Path, faults=None):
        super().__init__(seed, world, faults)
        self.cache_dir = Path(cache_dir) / world.name / str(seed)

    def export(self, entity: str, day: date, fmt: str = "ndjson.gz") -> tuple[Path, dict]:
        """The day's file and its manifest, generated on the first call (written atomically)."""
        folder = self.cache_dir / day.isoformat()
        path = folder / f"{entity}.{fmt}"
        manifest_path = folder / f"{entity}.{fmt}.manifest.json"
        if not manifest_path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            part = path.with_suffix(path.suffix + f".{os.getpid()}.part")
            with part.open("wb") as sink:
                manifest = exports.file_manifest(entity, day, fmt, super().stream(entity, day), sink)
            os.replace(part, path)
            manifest_part = manifest_path.with_suffix(f".{os.getpid()}.part")
            manifest_part.write_text(json.dumps(manifest), encoding="utf-8")
            os.replace(manifest_part, manifest_path)
        return path, json.loads(manifest_path.read_text(encoding="utf-8"))

    def file_chunks(self, entity: str, day: date, fmt: str, plan: FaultPlan | None = None) -> Iterator[bytes]:
        if plan is not None and not plan.is_empty:
            return super().file_chunks(entity, day, fmt, plan)
        path, _ = self.export(entity, day, fmt)
        return _read_chunks(path)

    def file_manifest(self, entity: str, day: date, fmt: str, plan: FaultPlan | None = None) -> dict:
        if plan is not None and not plan.is_empty:
            return super().file_manifest(entity, day, fmt, plan)
        return self.export(entity, day, fmt)[1]


def _read_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk
