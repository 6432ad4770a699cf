"""The portal simulator's HTTP API.

    GET /healthz
    GET /api/v1/<entity>?ngay=YYYY-MM-DD&page=N&page_size=M   paged rows of one business day
    GET /api/v1/<entity>/manifest?ngay=YYYY-MM-DD             row count and sha256 of the day

Every /api call needs the header ``X-Api-Token``. The manifest's checksum is over the canonical
NDJSON of the day's rows (chiso.contract.canonical), the same whatever page size is asked for.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import date
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from chiso.contract import ENTITIES, sha256_of_rows
from chiso.contract.canonical import MANIFEST_FORMAT
from chiso.simulator.generator import extract
from chiso.simulator.scenarios import PROCEDURES, Procedure, UnitProfile

TOKEN_HEADER = "X-Api-Token"
MAX_PAGE_SIZE = 5000


class PortalSimulator:
    """What the portal knows: a seed and a unit set. Pure; the HTTP layer sits on top."""

    def __init__(self, seed: int, units: Sequence[UnitProfile], procedures: Sequence[Procedure] = PROCEDURES):
        self.seed = seed
        self.units = tuple(units)
        self.procedures = tuple(procedures)
        self._day_rows = lru_cache(maxsize=64)(self._generate)

    def _generate(self, entity: str, day: date) -> tuple[dict, ...]:
        return tuple(extract(entity, self.seed, self.units, day, self.procedures))

    def rows(self, entity: str, day: date) -> tuple[dict, ...]:
        return self._day_rows(entity, day)

    def page(self, entity: str, day: date, page: int, page_size: int) -> dict:
        rows = self.rows(entity, day)
        total_pages = max(1, -(-len(rows) // page_size))
        start = (page - 1) * page_size
        return {
            "entity": entity,
            "business_date": day.isoformat(),
            "page": page,
            "page_size": page_size,
            "total_pages": total_pages,
            "total_rows": len(rows),
            "items": list(rows[start : start + page_size]),
        }

    def manifest(self, entity: str, day: date) -> dict:
        sha256, count = sha256_of_rows(self.rows(entity, day))
        return {"entity": entity, "business_date": day.isoformat(), "row_count": count,
                "sha256": sha256, "format": MANIFEST_FORMAT}


class _BadRequest(Exception):
    pass


def _make_handler(portal: PortalSimulator, token: str):
    class Handler(BaseHTTPRequestHandler):
        server_version = "chiso-portal-simulator/1"

        def log_message(self, format, *args):  # keep test output quiet; errors still raise
            pass

        def _send(self, status: HTTPStatus, body: dict) -> None:
            payload = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self):  # noqa: N802 (http.server's naming)
            url = urlparse(self.path)
            if url.path == "/healthz":
                return self._send(HTTPStatus.OK, {"status": "ok"})
            parts = url.path.strip("/").split("/")
            if len(parts) < 3 or parts[:2] != ["api", "v1"]:
                return self._send(HTTPStatus.NOT_FOUND, {"error": f"no such path {url.path}"})
            if self.headers.get(TOKEN_HEADER) != token:
                return self._send(HTTPStatus.UNAUTHORIZED, {"error": f"missing or wrong {TOKEN_HEADER}"})
            entity = parts[2]
            if entity not in ENTITIES:
                return self._send(HTTPStatus.NOT_FOUND, {"error": f"unknown entity {entity}"})
            query = parse_qs(url.query)
            try:
                day = self._day(query)
                if parts[3:] == ["manifest"]:
                    return self._send(HTTPStatus.OK, portal.manifest(entity, day))
                if parts[3:]:
                    return self._send(HTTPStatus.NOT_FOUND, {"error": f"no such path {url.path}"})
                page = self._int(query, "page", 1, minimum=1)
                page_size = self._int(query, "page_size", 500, minimum=1, maximum=MAX_PAGE_SIZE)
            except _BadRequest as exc:
                return self._send(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return self._send(HTTPStatus.OK, portal.page(entity, day, page, page_size))

        @staticmethod
        def _day(query) -> date:
            raw = query.get("ngay", [None])[0]
            try:
                return date.fromisoformat(raw)
            except (TypeError, ValueError):
                raise _BadRequest(f"parameter ngay must be YYYY-MM-DD, got {raw!r}") from None

        @staticmethod
        def _int(query, name, default, minimum, maximum=None) -> int:
            raw = query.get(name, [str(default)])[0]
            try:
                value = int(raw)
            except ValueError:
                raise _BadRequest(f"parameter {name} must be an integer, got {raw!r}") from None
            if value < minimum or (maximum is not None and value > maximum):
                raise _BadRequest(f"parameter {name} must be in [{minimum}, {maximum or '∞'}]")
            return value

    return Handler


def make_server(portal: PortalSimulator, token: str, host: str = "127.0.0.1", port: int = 0):
    return ThreadingHTTPServer((host, port), _make_handler(portal, token))


class RunningSimulator:
    """A simulator serving on a background thread (for tests and the demo)."""

    def __init__(self, portal: PortalSimulator, token: str, host: str = "127.0.0.1", port: int = 0):
        self.server = make_server(portal, token, host, port)
        self.token = token
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> RunningSimulator:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
