"""The portal simulator's HTTP API.

    GET /healthz
    GET /api/v1/<entity>?ngay=YYYY-MM-DD&page=N&page_size=M        paged JSON rows of one business day
    GET /api/v1/<entity>/manifest?ngay=YYYY-MM-DD                  row count and sha256 of those rows
    GET /api/v1/<entity>/files/<YYYY-MM-DD>.<ndjson.gz|csv>          the whole day as a file (streamed)
    GET /api/v1/<entity>/files/<YYYY-MM-DD>.<ndjson.gz|csv>.manifest its size, sha256 and row count
    GET /api/v1/evaluations?ngay=YYYY-MM-DD&tinh=<province code>    the published 766 evaluation, year to date
    GET /tinh/<province code>/api/v1/<entity>...                    the same for that province's slice of an
                                                                    entity the contract slices (docs/ingest.md)

Every /api call needs the header ``X-Api-Token``. Faults (faults.py) are switched on per day at
start-up (``--faults``) or per request (``?fault=…`` or the header ``X-Simulator-Fault``).
The rows' manifest checksum is over their canonical NDJSON (chiso.contract.canonical), the same
whatever page size is asked for and equal to the files' ``rows_sha256``.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from datetime import date
from http import HTTPStatus
from urllib.parse import parse_qs

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

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

    def stream(self, entity: str, day: date, plan: FaultPlan | None = None,
               province: str | None = None) -> Iterator[dict]:
        rows = extract_rows(entity, self.seed, self.world, day)
        if province is not None:
            rows = self._slice(entity, rows, province)
        return apply_row_faults(plan, entity, day, rows) if plan and not plan.is_empty else rows

    def provinces(self) -> set[str]:
        """The portal codes of the world's provinces (the slices ``/tinh/<code>/`` serves)."""
        return {unit.portal_code for unit in self.world.units if unit.kind == "PROVINCE" and unit.portal_code}

    def province_of(self, unit_code: str | None) -> str | None:
        """The portal code of the province a unit lies in (None for a unit the world does not know)."""
        unit = self.world.by_code.get(unit_code) if unit_code else None
        if unit is None:
            return None
        return self.world.by_code[self.world.province_of(unit)].portal_code

    def _slice(self, entity: str, rows: Iterator[dict], province: str) -> Iterator[dict]:
        """The rows of one province, by the unit field the contract slices the entity by."""
        field = ENTITIES[entity].province_field
        if field is None:
            raise ValueError(f"{entity} is national: the portal serves it whole, at /api/v1/{entity}")
        by_unit: dict[str | None, str | None] = {}
        for row in rows:
            unit = row.get(field) if isinstance(row, dict) else None
            if unit not in by_unit:
                by_unit[unit] = self.province_of(unit)
            if by_unit[unit] == province:
                yield row

    def rows(self, entity: str, day: date, plan: FaultPlan | None = None,
             province: str | None = None) -> tuple[dict, ...] | None:
        """The day's rows if the day is small enough to keep, else None (stream it instead)."""
        key = (entity, day, plan.to_text() if plan else "", province)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        rows = tuple(itertools.islice(self.stream(entity, day, plan, province), CACHED_DAY_ROWS + 1))
        if len(rows) > CACHED_DAY_ROWS:
            return None
        with self._lock:
            self._cache[key] = rows
            while len(self._cache) > 32:
                self._cache.popitem(last=False)
        return rows

    def page(self, entity: str, day: date, page: int, page_size: int, plan: FaultPlan | None = None,
             province: str | None = None) -> dict:
        rows = self.rows(entity, day, plan, province)
        start = (page - 1) * page_size
        if rows is not None:
            total, items = len(rows), list(rows[start:start + page_size])
        else:
            total = sum(1 for _ in self.stream(entity, day, plan, province))
            items = list(itertools.islice(self.stream(entity, day, plan, province), start, start + page_size))
        return {
            "entity": entity,
            "business_date": day.isoformat(),
            "page": page,
            "page_size": page_size,
            "total_pages": max(1, -(-total // page_size)),
            "total_rows": total,
            "items": items,
        }

    def manifest(self, entity: str, day: date, plan: FaultPlan | None = None, province: str | None = None) -> dict:
        rows = self.rows(entity, day, plan, province)
        sha256, count = sha256_of_rows(rows if rows is not None else self.stream(entity, day, plan, province))
        manifest = {"entity": entity, "business_date": day.isoformat(), "row_count": count, "sha256": sha256,
                    "format": MANIFEST_FORMAT}
        return apply_manifest_faults(plan, manifest) if plan else manifest

    def file_chunks(self, entity: str, day: date, fmt: str, plan: FaultPlan | None = None,
                    province: str | None = None) -> Iterator[bytes]:
        return exports.export_chunks(entity, fmt, self.stream(entity, day, plan, province))

    def file_manifest(self, entity: str, day: date, fmt: str, plan: FaultPlan | None = None,
                      province: str | None = None) -> dict:
        manifest = exports.file_manifest(entity, day, fmt, self.stream(entity, day, plan, province))
        return apply_manifest_faults(plan, manifest) if plan else manifest


class _BadRequest(Exception):
    pass


class _ConnectionDropped(Exception):
    """Raised after part of a body was sent: the ASGI server closes the connection (a flaky network)."""


class _DroppedResponse(Response):
    """The headers (with the whole body's Content-Length) and the body's first ``sent`` bytes, then the
    connection dies. ASGI has no call to close a connection; an application that fails after its answer
    started is, by the ASGI spec, cut off by the server: that is the fault."""

    def __init__(self, content: bytes, sent: int, headers: dict):
        super().__init__(content, headers=headers, media_type=JSON)
        self.sent = sent

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[:self.sent], "more_body": True})
        raise _ConnectionDropped


class _QuietAboutDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _ConnectionDropped))


JSON = "application/json; charset=utf-8"


def make_app(portal: PortalSimulator, token: str, counter: AttemptCounter | None = None) -> FastAPI:
    """The portal's API as an ASGI app (FastAPI); endpoints are plain functions, run in the server's
    thread pool, so a fault's sleep holds one request, never the others."""
    counter = counter or AttemptCounter()
    app = FastAPI(title="chiso portal simulator", openapi_url=None, docs_url=None, redoc_url=None,
                  redirect_slashes=False)  # (a trailing slash is the same path, as the portal's was)

    def send_json(status: int, body: dict, plan: FaultPlan | None = None, headers: dict | None = None,
                  drop_after: HttpFault | None = None) -> Response:
        payload = json.dumps(body, ensure_ascii=False).encode()
        if plan is not None and not plan.is_empty:
            payload = apply_byte_faults(plan, payload)
        headers = {name: str(value) for name, value in (headers or {}).items()}
        if drop_after is not None:  # the connection dies mid-body, as a flaky network does
            return _DroppedResponse(payload, drop_after.bytes_before_drop(len(payload)), headers)
        return Response(payload, status_code=status, headers=headers, media_type=JSON)

    def http_fault(plan: FaultPlan, request_key: str) -> HttpFault | Response | None:
        """Play this attempt's HTTP-level fault, if the plan has one: sleep, answer an error status (the
        answer), or return the fault whose connection must drop mid-body (else None)."""
        fault = http_fault_for(plan, request_key, counter)
        if fault is None:
            return None
        if fault.delay_seconds:
            time.sleep(fault.delay_seconds)
        if fault.status:
            return send_json(fault.status, fault.error_body(), headers=dict(fault.headers))
        return fault if fault.drop_after_fraction is not None else None

    def authorised(request: Request) -> Response | None:
        if request.headers.get(TOKEN_HEADER) != token:
            return send_json(HTTPStatus.UNAUTHORIZED, {"error": f"missing or wrong {TOKEN_HEADER}"})
        return None

    def serve_day(request: Request, entity: str, rest: list[str], province: str | None = None) -> Response:
        """Pages, the manifest or a whole-day file of ``entity`` (``rest``: the path after it), of the
        whole nation or of one ``province``'s slice."""
        query = parse_qs(request.url.query)
        if entity not in ENTITIES:
            return send_json(HTTPStatus.NOT_FOUND, {"error": f"unknown entity {entity}"})
        if province is not None:
            if province not in portal.provinces():
                return send_json(HTTPStatus.NOT_FOUND, {"error": f"no province {province} in this portal"})
            if ENTITIES[entity].province_field is None:
                return send_json(HTTPStatus.NOT_FOUND, {"error": f"{entity} is national: it is served whole, "
                                                                 f"at /api/v1/{entity}"})
        try:
            match = None
            if rest[:1] == ["files"] and len(rest) == 2:
                match = _FILE_PATH.match(rest[1])
                if not match:
                    raise _BadRequest(f"file name must be YYYY-MM-DD.ndjson.gz or YYYY-MM-DD.csv, got {rest[1]}")
                day = _parse_day(match["day"])
            else:
                day = _parse_day(query.get("ngay", [None])[0])
            override = query.get(REQUEST_OVERRIDE_PARAM, [None])[0] or request.headers.get(REQUEST_OVERRIDE_HEADER)
            try:
                plan = portal.faults.plan_for(entity, day, override)
            except ValueError as exc:
                raise _BadRequest(str(exc)) from None
            fault = http_fault(plan, f"{request.url.path}?{_without_fault(query)}")
            if isinstance(fault, Response):
                return fault
            if rest == ["manifest"]:
                return send_json(HTTPStatus.OK, portal.manifest(entity, day, plan, province), plan,
                                 drop_after=fault)
            if match is not None:
                if match["manifest"]:
                    return send_json(HTTPStatus.OK, portal.file_manifest(entity, day, match["fmt"], plan, province),
                                     drop_after=fault)
                return _file_response(portal, entity, day, match["fmt"], plan, province)
            if rest:
                return send_json(HTTPStatus.NOT_FOUND, {"error": f"no such path {request.url.path}"})
            page = _int_param(query, "page", 1, minimum=1)
            page_size = _int_param(query, "page_size", 500, minimum=1, maximum=MAX_PAGE_SIZE)
        except _BadRequest as exc:
            return send_json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        return send_json(HTTPStatus.OK, portal.page(entity, day, page, page_size, plan, province), plan,
                         drop_after=fault)

    @app.get("/healthz")
    def healthz() -> Response:
        return send_json(HTTPStatus.OK, {"status": "ok", "world": portal.world.name})

    @app.get("/api/v1/evaluations")
    def evaluations(request: Request) -> Response:
        """The province's published 766 evaluation, year to date as of ``ngay`` (tinh = province code)."""
        refused = authorised(request)
        if refused:
            return refused
        query = parse_qs(request.url.query)
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
            return send_json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        return send_json(HTTPStatus.OK, document)

    @app.get("/api/v1/{entity}")
    def pages(request: Request, entity: str) -> Response:
        return authorised(request) or serve_day(request, entity, [])

    @app.get("/api/v1/{entity}/manifest")
    def manifest(request: Request, entity: str) -> Response:
        return authorised(request) or serve_day(request, entity, ["manifest"])

    @app.get("/api/v1/{entity}/files/{name}")
    def day_file(request: Request, entity: str, name: str) -> Response:
        return authorised(request) or serve_day(request, entity, ["files", name])

    @app.get("/{path:path}")
    def anything_else(request: Request, path: str) -> Response:
        parts = path.strip("/").split("/")
        if len(parts) >= 3 and parts[:2] == ["api", "v1"]:  # the portal's API: the token first, then the path
            refused = authorised(request)
            if refused:
                return refused
            return serve_day(request, parts[2], parts[3:])
        if len(parts) >= 5 and parts[0] == "tinh" and parts[2:4] == ["api", "v1"]:  # a province's slice
            refused = authorised(request)
            if refused:
                return refused
            return serve_day(request, parts[4], parts[5:], province=parts[1])
        return send_json(HTTPStatus.NOT_FOUND, {"error": f"no such path {request.url.path}"})

    return app


def _file_response(portal: PortalSimulator, entity: str, day: date, fmt: str, plan: FaultPlan,
                   province: str | None = None) -> Response:
    chunks = portal.file_chunks(entity, day, fmt, plan, province)
    headers = {"Content-Disposition": f'attachment; filename="{exports.export_filename(entity, day, fmt)}"'}
    if not plan.is_empty and plan.at_level("bytes"):
        body = apply_byte_faults(plan, b"".join(chunks))  # byte faults need the whole body
        return Response(body, headers=headers, media_type=exports.EXPORT_FORMATS[fmt])
    # No Content-Length: the body is streamed as it is made (chunked), never held whole.
    return StreamingResponse(chunks, headers=headers, media_type=exports.EXPORT_FORMATS[fmt])


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


_DROPS_FILTER = _QuietAboutDrops()  # (uvicorn logs an application that fails mid-answer: here, on purpose)


def _uvicorn(portal: PortalSimulator, token: str) -> uvicorn.Server:
    logging.getLogger("uvicorn.error").addFilter(_DROPS_FILTER)  # (the same filter is added once)
    config = uvicorn.Config(make_app(portal, token), log_config=None, access_log=False, lifespan="off",
                            timeout_graceful_shutdown=1)  # (a request sleeping out a fault is not waited for)
    return uvicorn.Server(config)


def _listening_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def serve(portal: PortalSimulator, token: str, host: str = "127.0.0.1", port: int = 0, ready=None) -> None:
    """Serve until interrupted (``python -m chiso.simulator``); ``ready(url)`` is called once listening."""
    sock = _listening_socket(host, port)
    if ready is not None:
        ready(f"http://{host}:{sock.getsockname()[1]}")
    _uvicorn(portal, token).run(sockets=[sock])


class RunningSimulator:
    """A simulator serving on a background thread (for tests and the demo): uvicorn on a socket bound
    before it starts, so that ``url`` is known at once."""

    def __init__(self, portal: PortalSimulator, token: str, host: str = "127.0.0.1", port: int = 0):
        self.portal = portal
        self.token = token
        self._socket = _listening_socket(host, port)
        self.server = _uvicorn(portal, token)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    @property
    def server_address(self) -> tuple[str, int]:
        return self._socket.getsockname()[:2]

    @property
    def url(self) -> str:
        host, port = self.server_address
        return f"http://{host}:{port}"

    def __enter__(self) -> RunningSimulator:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the portal simulator did not start on {self.url}")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
