"""The portal simulator's HTTP API.

    GET /healthz
    GET /api/v1/<entity>?ngay=YYYY-MM-DD&page=N&page_size=M        paged JSON rows of one business day
    GET /api/v1/<entity>/manifest?ngay=YYYY-MM-DD                  row count and sha256 of those rows
    GET /api/v1/<entity>/files/<YYYY-MM-DD>.<ndjson.gz|csv>          the whole day as a file (streamed)
    GET /api/v1/<entity>/files/<YYYY-MM-DD>.<ndjson.gz|csv>.manifest its size, sha256 and row count
    GET /api/v1/evaluations?ngay=YYYY-MM-DD&tinh=<province code>    the published 766 evaluation, year to date

Every /api call needs the header ``X-Api-Token``. Faults (faults.py) are switched on per day at
start-up (``--faults``) or per request (``?fault=…`` or the header ``X-Simulator-Fault``).
The rows' manifest checksum is over their canonical NDJSON (chiso.contract.canonical), the same
whatever page size is asked for and equal to the files' ``rows_sha256``.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from datetime import date
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from chiso.contract import ENTITIES, sha256_of_rows
from chiso.contract.canonical import MANIFEST_FORMAT
from chiso.simulator import exports
from chiso.simulator.evaluation import published_evaluation
from chiso.simulator.faults import (
    REQUEST_OVERRIDE_HEADER,
    REQUEST_OVERRIDE_PARAM,
    AttemptCounter,
    FaultPlan,
    FaultSchedule,
    HttpFault,
    apply_byte_faults,
    apply_manifest_faults,
    apply_row_faults,
    http_fault_for,
)
from chiso.simulator.generator import extract_rows
from chiso.simulator.world import World

TOKEN_HEADER = "X-Api-Token"
MAX_PAGE_SIZE = 5000
CACHED_DAY_ROWS = 50_000  # days up to this size are kept for paging; bigger ones are re-streamed
_FILE_PATH = re.compile(r"^(?P<day>\d{4}-\d{2}-\d{2})\.(?P<fmt>ndjson\.gz|csv)(?P<manifest>\.manifest)?$")


class PortalSimulator:
    """What the portal knows: a seed, a world and a fault schedule. The HTTP layer sits on top."""

    def __init__(self, seed: int, world: World, faults: FaultSchedule | None = None):
        self.seed = seed
        self.world = world
        self.faults = faults or FaultSchedule.none()
        self._cache: OrderedDict[tuple, tuple[dict, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def stream(self, entity: str, day: date, plan: FaultPlan | None = None) -> Iterator[dict]:
        rows = extract_rows(entity, self.seed, self.world, day)
        return apply_row_faults(plan, entity, day, rows) if plan and not plan.is_empty else rows

    def rows(self, entity: str, day: date, plan: FaultPlan | None = None) -> tuple[dict, ...] | None:
        """The day's rows if the day is small enough to keep, else None (stream it instead)."""
        key = (entity, day, plan.to_text() if plan else "")
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        rows = tuple(itertools.islice(self.stream(entity, day, plan), CACHED_DAY_ROWS + 1))
        if len(rows) > CACHED_DAY_ROWS:
            return None
        with self._lock:
            self._cache[key] = rows
            while len(self._cache) > 32:
                self._cache.popitem(last=False)
        return rows

    def page(self, entity: str, day: date, page: int, page_size: int, plan: FaultPlan | None = None) -> dict:
        rows = self.rows(entity, day, plan)
        start = (page - 1) * page_size
        if rows is not None:
            total, items = len(rows), list(rows[start:start + page_size])
        else:
            total = sum(1 for _ in self.stream(entity, day, plan))
            items = list(itertools.islice(self.stream(entity, day, plan), start, start + page_size))
        return {
            "entity": entity,
            "business_date": day.isoformat(),
            "page": page,
            "page_size": page_size,
            "total_pages": max(1, -(-total // page_size)),
            "total_rows": total,
            "items": items,
        }

    def manifest(self, entity: str, day: date, plan: FaultPlan | None = None) -> dict:
        rows = self.rows(entity, day, plan)
        sha256, count = sha256_of_rows(rows if rows is not None else self.stream(entity, day, plan))
        manifest = {"entity": entity, "business_date": day.isoformat(), "row_count": count, "sha256": sha256,
                    "format": MANIFEST_FORMAT}
        return apply_manifest_faults(plan, manifest) if plan else manifest

    def file_chunks(self, entity: str, day: date, fmt: str, plan: FaultPlan | None = None) -> Iterator[bytes]:
        return exports.export_chunks(entity, fmt, self.stream(entity, day, plan))

    def file_manifest(self, entity: str, day: date, fmt: str, plan: FaultPlan | None = None) -> dict:
        manifest = exports.file_manifest(entity, day, fmt, self.stream(entity, day, plan))
        return apply_manifest_faults(plan, manifest) if plan else manifest


class _BadRequest(Exception):
    pass


_ANSWERED = object()  # an HTTP fault already answered the request


def _make_handler(portal: PortalSimulator, token: str, counter: AttemptCounter):
    class Handler(BaseHTTPRequestHandler):
        server_version = "chiso-portal-simulator/2"

        def log_message(self, format, *args):  # keep test output quiet; errors are answered, not logged
            pass

        def _send_json(self, status: HTTPStatus, body: dict, plan: FaultPlan | None = None,
                       headers: dict | None = None, drop_after: HttpFault | None = None) -> None:
            payload = json.dumps(body, ensure_ascii=False).encode()
            if plan is not None and not plan.is_empty:
                payload = apply_byte_faults(plan, payload)
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, str(value))
            self.end_headers()
            if drop_after is not None:  # the connection dies mid-body, as a flaky network does
                self.wfile.write(payload[:drop_after.bytes_before_drop(len(payload))])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(payload)

        def do_GET(self):  # noqa: N802 (http.server's naming)
            url = urlparse(self.path)
            if url.path == "/healthz":
                return self._send_json(HTTPStatus.OK, {"status": "ok", "world": portal.world.name})
            parts = url.path.strip("/").split("/")
            if len(parts) < 3 or parts[:2] != ["api", "v1"]:
                return self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such path {url.path}"})
            if self.headers.get(TOKEN_HEADER) != token:
                return self._send_json(HTTPStatus.UNAUTHORIZED, {"error": f"missing or wrong {TOKEN_HEADER}"})
            entity, rest = parts[2], parts[3:]
            if entity == "evaluations" and not rest:
                return self._send_evaluation(parse_qs(url.query))
            if entity not in ENTITIES:
                return self._send_json(HTTPStatus.NOT_FOUND, {"error": f"unknown entity {entity}"})
            query = parse_qs(url.query)
            try:
                if rest[:1] == ["files"] and len(rest) == 2:
                    match = _FILE_PATH.match(rest[1])
                    if not match:
                        raise _BadRequest(f"file name must be YYYY-MM-DD.ndjson.gz or YYYY-MM-DD.csv, got {rest[1]}")
                    day = _parse_day(match["day"])
                else:
                    day = _parse_day(query.get("ngay", [None])[0])
                override = query.get(REQUEST_OVERRIDE_PARAM, [None])[0] or self.headers.get(REQUEST_OVERRIDE_HEADER)
                try:
                    plan = portal.faults.plan_for(entity, day, override)
                except ValueError as exc:
                    raise _BadRequest(str(exc)) from None
                request_key = f"{url.path}?{_without_fault(query)}"
                fault = self._http_fault(plan, request_key)
                if fault is _ANSWERED:
                    return None
                if rest == ["manifest"]:
                    return self._send_json(HTTPStatus.OK, portal.manifest(entity, day, plan), plan, drop_after=fault)
                if rest[:1] == ["files"] and len(rest) == 2:
                    if match["manifest"]:
                        return self._send_json(HTTPStatus.OK, portal.file_manifest(entity, day, match["fmt"], plan),
                                               drop_after=fault)
                    return self._send_file(entity, day, match["fmt"], plan)
                if rest:
                    return self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such path {url.path}"})
                page = _int_param(query, "page", 1, minimum=1)
                page_size = _int_param(query, "page_size", 500, minimum=1, maximum=MAX_PAGE_SIZE)
            except _BadRequest as exc:
                return self._send_json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return self._send_json(HTTPStatus.OK, portal.page(entity, day, page, page_size, plan), plan,
                                   drop_after=fault)

        def _send_evaluation(self, query: dict) -> None:
            """The province's published 766 evaluation, year to date as of ``ngay`` (tinh = province code)."""
            try:
                day = _parse_day(query.get("ngay", [None])[0])
                province = query.get("tinh", [None])[0]
                if not province:
                    raise _BadRequest("parameter tinh (the province's portal code, e.g. H21) is required")
                try:
                    document = published_evaluation(portal.seed, portal.world, province, day)
                except ValueError as exc:
                    raise _BadRequest(str(exc)) from None
            except _BadRequest as exc:
                return self._send_json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return self._send_json(HTTPStatus.OK, document)

        def _http_fault(self, plan: FaultPlan, request_key: str):
            """Play this attempt's HTTP-level fault, if the plan has one: sleep, answer an error status
            (returns _ANSWERED), or return the fault whose connection must drop mid-body (else None)."""
            fault = http_fault_for(plan, request_key, counter)
            if fault is None:
                return None
            if fault.delay_seconds:
                time.sleep(fault.delay_seconds)
            if fault.status:
                self._send_json(HTTPStatus(fault.status), fault.error_body(), headers=dict(fault.headers))
                return _ANSWERED
            return fault if fault.drop_after_fraction is not None else None

        def _send_file(self, entity: str, day: date, fmt: str, plan: FaultPlan) -> None:
            chunks = portal.file_chunks(entity, day, fmt, plan)
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", exports.EXPORT_FORMATS[fmt])
            self.send_header("Content-Disposition",
                             f'attachment; filename="{exports.export_filename(entity, day, fmt)}"')
            if not plan.is_empty and plan.at_level("bytes"):
                body = apply_byte_faults(plan, b"".join(chunks))  # byte faults need the whole body
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            # HTTP/1.0 without Content-Length: the body is streamed and the connection's end delimits it.
            self.end_headers()
            for chunk in chunks:
                self.wfile.write(chunk)

    return Handler


def _parse_day(raw: str | None) -> date:
    try:
        return date.fromisoformat(raw)
    except (TypeError, ValueError):
        raise _BadRequest(f"parameter ngay must be YYYY-MM-DD, got {raw!r}") from None


def _int_param(query, name, default, minimum, maximum=None) -> int:
    raw = query.get(name, [str(default)])[0]
    try:
        value = int(raw)
    except ValueError:
        raise _BadRequest(f"parameter {name} must be an integer, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise _BadRequest(f"parameter {name} must be in [{minimum}, {maximum or '∞'}]")
    return value


def _without_fault(query: dict) -> str:
    return "&".join(f"{k}={v[0]}" for k, v in sorted(query.items()) if k != REQUEST_OVERRIDE_PARAM)


def make_server(portal: PortalSimulator, token: str, host: str = "127.0.0.1", port: int = 0):
    server = ThreadingHTTPServer((host, port), _make_handler(portal, token, AttemptCounter()))
    server.daemon_threads = True
    return server


class RunningSimulator:
    """A simulator serving on a background thread (for tests and the demo)."""

    def __init__(self, portal: PortalSimulator, token: str, host: str = "127.0.0.1", port: int = 0):
        self.portal = portal
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
