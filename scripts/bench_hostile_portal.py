"""Benchmark: what a hostile portal's bodies cost fetch → land → load (issue 15, "bounded fetch and load").

    .venv/bin/python scripts/bench_hostile_portal.py [--size-mb 1536] [--kinds huge_page,gzip_line,...]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

A local hostile portal (``chiso.simulator.hostile``) serves each kind of body, generated on the fly
(nothing big is held on the serving side: gigabyte bodies are a row or a block sent again and again,
gzip bombs are one small gzip member repeated, slow bodies sleep between bytes). For each kind a child
process runs the real ``fetch_day`` → ``land`` → ``load_extract`` against a throw-away database and
reports how it ended (the error's type and one-sentence message), its peak resident memory (VmHWM,
the whole process: Python, psycopg, msgspec and all) and the bytes it left in the landing zone.
Prints one line per kind and exits non-zero if any peak reaches --max-peak-mb (300) or a kind ends
otherwise than expected. ``tests/test_hostile_portal.py`` runs the same kinds (smaller --size-mb is
not needed: the bounds stop every kind within a few MiB).

    .venv/bin/python scripts/bench_hostile_portal.py child URL TRANSFER ROOT WAREHOUSE_URL LIMITS_JSON

is the child (used by the parent and by the tests).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DAY = date(2024, 11, 15)
ENTITY = "dossiers"
MIB = 1 << 20
ROW = ('{"MaHoSo": "000.00.27.H15-241115-0003", "MaTTHC": "1.003003", "TenTTHC": "Đăng ký lại khai sinh", '
       '"ChuHoSo": "Hoàng Văn Bảo", "SoDienThoai": "0973153747"}')

# kind: (transfer, what the child must end with: (error type, words its message must hold))
KINDS = {
    "huge_page": ("pages", ("PortalError", "CHISO_PORTAL_MAX_PAGE_BYTES")),
    "huge_page_chunked": ("pages", ("PortalError", "CHISO_PORTAL_MAX_PAGE_BYTES")),
    "gzip_bomb_page": ("pages", ("PortalError", "CHISO_PORTAL_MAX_PAGE_BYTES")),
    "huge_manifest": ("pages", ("PortalError", "CHISO_PORTAL_MAX_PAGE_BYTES")),
    "file_longer_than_declared": ("files", ("PortalError", "the size its manifest declares")),
    "file_declared_too_big": ("files", ("PortalError", "CHISO_PORTAL_MAX_FILE_BYTES")),
    # One line of 1.5 GB: read on in chunks past CHISO_MAX_LINE_BYTES, until the file's expansion gives it away.
    "gzip_bomb_line": ("files", ("LandingError", "CHISO_MAX_GZIP_RATIO")),
    # One line of a few hundred MB (CHISO_MAX_GZIP_RATIO raised to let it through) between two real dossiers:
    # it is quarantined by reference, read in chunks and hashed, never held; the rest of the day loads.
    "overlong_line": ("files", (None, "")),
    "gzip_bomb_ratio": ("files", ("LandingError", "CHISO_MAX_GZIP_RATIO")),
    "slow_page": ("pages", ("PortalError", "CHISO_PORTAL_REQUEST_DEADLINE_SECONDS")),
    "slow_file": ("files", ("PortalError", "CHISO_PORTAL_REQUEST_DEADLINE_SECONDS")),
    "slow_day": ("pages", ("PortalError", "CHISO_PORTAL_DAY_DEADLINE_SECONDS")),
    "slow_headers": ("pages", ("PortalError", "CHISO_PORTAL_REQUEST_DEADLINE_SECONDS")),
    "slow_file_headers": ("files", ("PortalError", "CHISO_PORTAL_REQUEST_DEADLINE_SECONDS")),
    # The largest page allowed, of the rows that cost most memory per byte sent ("[]": 3 bytes each, a
    # Python list each): it loads, every row quarantined by reference.
    "dense_page": ("pages", (None, "")),
}
# The portal's bounds in the child: the settings' defaults, but deadlines short enough for a test.
LIMITS = {"read_timeout": 3.0, "request_deadline": 8.0, "day_deadline": 60.0}
OVERLONG_BYTES = 400 * MIB  # the "overlong_line" kind's line, at most


def serve(portal, kind: str, size: int) -> dict:
    """Put ``kind``'s routes on ``portal``; return the limits the child should use."""
    from chiso.simulator import hostile

    limits = dict(LIMITS)
    rows = hostile.rows_manifest(ENTITY, DAY, [json.loads(ROW)])
    pages_manifest = json.dumps(rows).encode()
    portal.routes[f"/api/v1/{ENTITY}/manifest"] = (200, {}, pages_manifest)
    file_path = hostile.file_path(ENTITY, DAY)
    page = f"/api/v1/{ENTITY}?page=1"
    if kind == "huge_page":
        length = sum(len(chunk) for chunk in hostile.huge_page(size, ROW))
        portal.routes[page] = hostile.streamed(lambda: hostile.huge_page(size, ROW), length)
    elif kind == "huge_page_chunked":
        portal.routes[page] = hostile.streamed(lambda: hostile.huge_page(size, ROW), None)
    elif kind == "gzip_bomb_page":
        bomb = hostile.gzip_bomb(b'{"page": 1, "total_pages": 1, "items": ["', size, b'"]}')
        portal.routes[page] = (200, {"Content-Encoding": "gzip", "Content-Type": "application/json"}, bomb)
    elif kind == "huge_manifest":
        portal.routes[f"/api/v1/{ENTITY}/manifest"] = hostile.streamed(lambda: hostile.zeros(size), size)
    elif kind in ("file_longer_than_declared", "file_declared_too_big", "slow_file"):
        declared = 1_000 if kind != "file_declared_too_big" else 3 << 30
        manifest = hostile.file_manifest(ENTITY, DAY, rows, declared, "0" * 64)
        portal.routes[file_path + ".manifest"] = (200, {}, json.dumps(manifest).encode())
        if kind == "slow_file":
            portal.routes[file_path] = hostile.streamed(lambda: hostile.trickle(b"\x1f"), None)
        else:
            portal.routes[file_path] = hostile.streamed(lambda: hostile.zeros(size), size)
    elif kind in ("gzip_bomb_line", "gzip_bomb_ratio"):
        if kind == "gzip_bomb_line":  # one line of `size` bytes
            body = hostile.gzip_bomb(b'{"MaHoSo": "', size, b'"}\n')
        else:  # lines of 1 MiB, under the line limit, `size` bytes in all
            import gzip

            member = gzip.compress((b"0" * (MIB - 1) + b"\n") * 16, compresslevel=9, mtime=0)
            body = member * max(1, size // (16 * MIB))
        manifest = hostile.file_manifest(ENTITY, DAY, rows, len(body), hashlib.sha256(body).hexdigest())
        portal.routes[file_path + ".manifest"] = (200, {}, json.dumps(manifest).encode())
        portal.routes[file_path] = (200, {"Content-Type": "application/gzip"}, body)
    elif kind == "overlong_line":
        from chiso.contract import canonical_line
        from chiso.simulator.scenarios import get_scenario
        from chiso.simulator.server import PortalSimulator

        first, last = PortalSimulator(11, get_scenario("cu_kuin_2024")).rows(ENTITY, DAY)[:2]
        zeros = (min(size, OVERLONG_BYTES) // (16 * MIB)) * 16 * MIB  # as gzip_bomb makes them
        prefix, suffix = b'{"MaHoSo": "', b'", "ChuHoSo": "Ho\xc3\xa0ng V\xc4\x83n B\xe1\xba\xa3o"}'
        body = (hostile.gzip_bomb(json.dumps(first, ensure_ascii=False).encode() + b"\n" + prefix, zeros,
                                  suffix + b"\n" + json.dumps(last, ensure_ascii=False).encode() + b"\n"))
        digest = hashlib.sha256(canonical_line(first) + prefix)  # the rows' checksum, the long line streamed
        block = b"0" * MIB
        for _ in range(zeros // MIB):
            digest.update(block)
        digest.update(suffix + b"\n" + canonical_line(last))
        rows = {"row_count": 3, "sha256": digest.hexdigest()}
        manifest = hostile.file_manifest(ENTITY, DAY, rows, len(body), hashlib.sha256(body).hexdigest())
        portal.routes[file_path + ".manifest"] = (200, {}, json.dumps(manifest).encode())
        portal.routes[file_path] = (200, {"Content-Type": "application/gzip"}, body)
        limits["env"] = {"CHISO_MAX_GZIP_RATIO": "100000"}
    elif kind == "dense_page":
        from chiso.core import settings

        count = (int(settings.require("CHISO_PORTAL_MAX_PAGE_BYTES")) - 100) // 4
        body = b'{"page": 1, "total_pages": 1, "items": [' + b"[], " * (count - 1) + b"[]]}"
        portal.routes[page] = (200, {}, body)
        portal.routes[f"/api/v1/{ENTITY}/manifest"] = (200, {}, json.dumps(
            hostile.rows_manifest(ENTITY, DAY, [[]] * count)).encode())
    elif kind == "slow_headers":
        portal.routes[page] = hostile.trickled_headers()
    elif kind == "slow_file_headers":
        manifest = hostile.file_manifest(ENTITY, DAY, rows, 1_000, "0" * 64)
        portal.routes[file_path + ".manifest"] = (200, {}, json.dumps(manifest).encode())
        portal.routes[file_path] = hostile.trickled_headers()
    elif kind == "slow_page":
        portal.routes[page] = hostile.streamed(lambda: hostile.trickle(first=b'{"items": ['), None)
    elif kind == "slow_day":  # each page within its request's deadline, the day not within its own
        many = [ROW] * 40
        portal.serve_pages(ENTITY, DAY, many, page_size=1)
        for number in range(1, 41):
            body = portal.routes[f"/api/v1/{ENTITY}?page={number}"][2]
            portal.routes[f"/api/v1/{ENTITY}?page={number}"] = hostile.streamed(
                lambda body=body: _slowly(body), len(body))
        limits.update(request_deadline=30.0, day_deadline=4.0)
    else:
        raise ValueError(kind)
    return limits


def _slowly(body: bytes):
    time.sleep(1.0)
    yield body


def run_child(url: str, transfer: str, root: str, warehouse: str, limits: dict) -> dict:
    """fetch_day → land → load_extract in a fresh process; what happened, its peak memory and disk use.
    ``limits`` are the Portal's, and under "env" settings for the child."""
    limits = dict(limits)
    env = limits.pop("env", {})
    command = [sys.executable, str(Path(__file__).resolve()), "child", url, transfer, root, warehouse,
               json.dumps(limits)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO), **env})
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the child failed: {done.stderr[-2000:]}")
    return json.loads(lines[-1])


def child(url: str, transfer: str, root: str, warehouse: str, limits: dict) -> None:
    import psycopg

    from chiso.ingest.fetch import Portal, fetch_day
    from chiso.ingest.landing import land
    from chiso.ingest.load import load_extract
    from chiso.ingest.pseudonymise import Pseudonymiser
    from chiso.core.warehouse import ensure_schema

    started = time.monotonic()
    outcome = {"error_type": None, "message": None}
    try:
        ensure_schema(warehouse)
        portal = Portal(url, "hostile-token", page_size=1 if "slow_day" in root else 500, transfer=transfer,
                        **limits)
        fetched = fetch_day(portal, ENTITY, DAY, Path(root))
        landed = land(fetched, Path(root), ENTITY, DAY)
        with psycopg.connect(warehouse) as conn:
            outcome["result"] = load_extract(conn, ENTITY, DAY, landed, Pseudonymiser("hostile-key")).as_dict()
    except Exception as exc:  # reported, not raised: the parent checks it
        outcome.update(error_type=type(exc).__name__, message=str(exc))
    outcome["seconds"] = round(time.monotonic() - started, 1)
    outcome["peak_mb"] = _vm_hwm_mb()
    outcome["disk_bytes"] = sum(p.stat().st_size for p in Path(root).rglob("*") if p.is_file())
    print(json.dumps(outcome, ensure_ascii=False))


def _vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_kind(kind: str, size: int, warehouse: str, workdir: Path) -> dict:
    from chiso.simulator.hostile import HostilePortal

    transfer, _ = KINDS[kind]
    with HostilePortal() as portal:
        limits = serve(portal, kind, size)
        root = workdir / kind
        root.mkdir(parents=True, exist_ok=True)
        return run_child(portal.url, transfer, str(root), warehouse, limits)


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        _, _, url, transfer, root, warehouse, limits = sys.argv
        child(url, transfer, root, warehouse, json.loads(limits))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1536, help="size of the big bodies (decompressed for bombs)")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--max-peak-mb", type=float, default=300.0)
    args = parser.parse_args()

    import psycopg

    name = f"bench_hostile_{uuid.uuid4().hex[:8]}"
    base = args.database_url.rsplit("/", 1)[0]
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    failures = 0
    try:
        with tempfile.TemporaryDirectory() as workdir:
            for kind in args.kinds.split(","):
                outcome = run_kind(kind, args.size_mb * MIB, f"{base}/{name}", Path(workdir))
                expected_type, words = KINDS[kind][1]
                as_expected = outcome["error_type"] == expected_type and words in (outcome["message"] or "")
                if outcome.get("result"):
                    result = outcome["result"]
                    outcome["message"] = (f"{result['rows_in_manifest']} rows: {result['rows_loaded']} loaded, "
                                          f"{result['rows_quarantined']} quarantined")
                within = outcome["peak_mb"] < args.max_peak_mb
                failures += not (as_expected and within)
                print(f"{kind:28} peak {outcome['peak_mb']:6.1f} MB  {outcome['seconds']:5.1f} s  "
                      f"disk {outcome['disk_bytes']:>9} B  {'ok' if as_expected and within else 'UNEXPECTED'}: "
                      f"{outcome['error_type']}: {outcome['message']}", flush=True)
    finally:
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
