"""A hostile portal for tests and benchmarks (tests/test_hostile_portal.py, scripts/bench_hostile_portal.py).

Unlike the simulator, it serves whatever it is given: pages and whole-day files built from row texts
(with manifests whose checksums chiso will agree with), redirects, HTML, and bodies generated on the
fly so that nothing big is ever held in memory on the serving side either: gigabyte bodies, bodies
that trickle a byte at a time, and gzip bombs made by repeating one small gzip member.

It stays on ``http.server``, unlike the simulator (FastAPI and uvicorn): some of its answers write the
raw bytes of a response themselves (a status line and headers that never end, ``trickled_headers``),
which an ASGI application cannot do, since the server writes the status line and headers.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from chiso.contract.canonical import MANIFEST_FORMAT, canonical_line

Answer = tuple[int, dict, bytes] | Callable[[BaseHTTPRequestHandler], None]


class HostilePortal:
    """Answers GETs from ``routes``: a path (with ``?page=N`` for pages; other query ignored) →
    (status, headers, body), or a function writing the whole answer itself. Records each request's
    path and headers in ``requests``."""

    def __init__(self):
        self.routes: dict[str, Answer] = {}
        self.requests: list[tuple[str, dict]] = []
        portal = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                parsed = urlparse(self.path)
                portal.requests.append((self.path, dict(self.headers)))
                page = parse_qs(parsed.query).get("page", [None])[0]
                answer = portal.routes.get(f"{parsed.path}?page={page}" if page else parsed.path)
                if answer is None:
                    answer = (404, {}, b"not here")
                try:
                    if callable(answer):
                        answer(self)
                        return
                    status, headers, body = answer
                    self.send_response(status)
                    for name, value in {"Content-Length": str(len(body)), **headers}.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up on an endless body: that is what it should do

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> HostilePortal:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def serve_pages(self, entity: str, day: date, row_texts: list[str], page_size: int) -> dict:
        """Serve ``row_texts`` (each row's JSON text, as sent) as the paged API would, with a manifest
        whose checksum is over the rows as chiso decodes them; return the manifest."""
        from chiso.ingest.landing import decode_page

        pages = [row_texts[i:i + page_size] for i in range(0, len(row_texts), page_size)] or [[]]
        rows = []
        for number, texts in enumerate(pages, 1):
            body = ('{"entity": "%s", "business_date": "%s", "page": %d, "total_pages": %d, "items": [%s]}'
                    % (entity, day.isoformat(), number, len(pages), ", ".join(texts))).encode()
            self.routes[f"/api/v1/{entity}?page={number}"] = (200, {"Content-Type": "application/json"}, body)
            rows += decode_page(body, "hostile portal")["items"]
        manifest = rows_manifest(entity, day, rows)
        self.routes[f"/api/v1/{entity}/manifest"] = (200, {}, json.dumps(manifest).encode())
        return manifest

    def serve_file(self, entity: str, day: date, row_texts: list[str]) -> dict:
        """Serve ``row_texts`` as the whole-day NDJSON.gz file with its manifest; return the manifest."""
        from chiso.core import settings
        from chiso.ingest.landing import _parse_line

        body = gzip.compress("".join(text + "\n" for text in row_texts).encode(), mtime=0)
        # A line over CHISO_MAX_LINE_BYTES counts in the rows' checksum as its bytes as sent, as chiso reads it.
        max_line = int(settings.require("CHISO_MAX_LINE_BYTES"))
        rows = rows_manifest(entity, day, [text.encode().rstrip(b"\r\n") if len(text.encode()) > max_line
                                           else _parse_line(text, "hostile portal") for text in row_texts])
        manifest = file_manifest(entity, day, rows, len(body), hashlib.sha256(body).hexdigest())
        path = file_path(entity, day)
        self.routes[path] = (200, {"Content-Type": "application/gzip"}, body)
        self.routes[path + ".manifest"] = (200, {}, json.dumps(manifest).encode())
        return manifest


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """A client that hangs up on an endless body is expected; anything else is printed as usual."""
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


def file_path(entity: str, day: date) -> str:
    return f"/api/v1/{entity}/files/{day.isoformat()}.ndjson.gz"


def rows_manifest(entity: str, day: date, rows: list) -> dict:
    digest = hashlib.sha256()
    for row in rows:  # (a row given as bytes is a line too long to decode: its bytes stand for it)
        digest.update(row + b"\n" if isinstance(row, bytes) else canonical_line(row))
    return {"entity": entity, "business_date": day.isoformat(), "row_count": len(rows),
            "sha256": digest.hexdigest(), "format": MANIFEST_FORMAT}


def file_manifest(entity: str, day: date, rows: dict, size: int, sha256: str) -> dict:
    return {"entity": entity, "business_date": day.isoformat(), "format": "ndjson.gz",
            "row_count": rows["row_count"], "rows_sha256": rows["sha256"], "bytes": size, "sha256": sha256}


# ----------------------------------------------------------------------------- bodies made on the fly

MIB = 1 << 20


def streamed(chunks: Callable[[], Iterator[bytes]], length: int | None, headers: dict | None = None,
             status: int = 200) -> Callable[[BaseHTTPRequestHandler], None]:
    """An answer whose body is written chunk by chunk as ``chunks()`` makes it (Content-Length
    ``length``, or chunked when None)."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        if length is None:
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            handler.send_header("Content-Length", str(length))
        handler.end_headers()
        for chunk in chunks():
            if length is None:
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                handler.wfile.write(chunk)
            handler.wfile.flush()
        if length is None:
            handler.wfile.write(b"0\r\n\r\n")

    return answer


def trickled_headers(every_seconds: float = 2.0) -> Callable[[BaseHTTPRequestHandler], None]:
    """An answer whose status line and headers never end: one byte every ``every_seconds``."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        handler.wfile.flush()
        while True:
            time.sleep(every_seconds)
            handler.wfile.write(b"X")
            handler.wfile.flush()

    return answer


def huge_page(total_bytes: int, row_text: str) -> Iterator[bytes]:
    """A JSON page of ``total_bytes`` (give or take a row): the same row again and again."""
    yield b'{"page": 1, "total_pages": 1, "items": ['
    row = (row_text + ", ").encode()
    block = row * max(1, MIB // len(row))
    sent = 0
    while sent < total_bytes:
        yield block
        sent += len(block)
    yield row_text.encode() + b"]}"


def zeros(total_bytes: int) -> Iterator[bytes]:
    block = b"0" * MIB
    for _ in range(total_bytes // MIB):
        yield block


def trickle(byte: bytes = b" ", every_seconds: float = 2.0, first: bytes = b"") -> Iterator[bytes]:
    """A body that never ends: ``first``, then one byte every ``every_seconds``."""
    if first:
        yield first
    while True:
        time.sleep(every_seconds)
        yield byte


def gzip_bomb(prefix: bytes, expanded_bytes: int, suffix: bytes = b"") -> bytes:
    """gzip of ``prefix`` + ``expanded_bytes`` zeros ("0") + ``suffix``, as concatenated gzip members (a
    gzip file may hold several), made from one member of 16 MiB repeated: about 1 kB per 1 MB expanded."""
    member = gzip.compress(b"0" * (16 * MIB), compresslevel=9, mtime=0)
    parts = [gzip.compress(prefix, mtime=0)] if prefix else []
    parts += [member] * (expanded_bytes // (16 * MIB))
    if suffix:
        parts.append(gzip.compress(suffix, mtime=0))
    return b"".join(parts)
