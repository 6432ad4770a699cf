"""Fetching one business day of one entity from the portal: page by page from the paged JSON API
(``fetch_extract``), or as the whole-day NDJSON.gz file (``fetch_day_file``). ``fetch_day`` picks one
by the portal's ``transfer`` (CHISO_PORTAL_TRANSFER); docs/ingest.md compares them."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.util.retry import Retry

from chiso.core import settings

from chiso.contract.canonical import MANIFEST_FORMAT
from chiso.ingest.landing import (
    DAY_FILE,
    FILE_MANIFEST,
    FILE_MODE,
    UTF8_BOM,
    LandingError,
    _page_text,
    decode_page,
    incoming_dir,
    landed_dir,
    write_file_once,
)

log = logging.getLogger(__name__)

TOKEN_HEADER = "X-Api-Token"
TIMEOUT_SECONDS = (5, 60)  # connect, read
TRANSFERS = ("pages", "files")


class PortalError(RuntimeError):
    pass


def _setting(name: str, kind=int):
    return kind(settings.require(name))


MAX_RETRY_AFTER_SECONDS = 120  # a Retry-After longer than this is not waited out in full


class RetryPastDeadline(PortalError):
    """urllib3 would wait before its next retry past the request's deadline: the request is abandoned now."""

    def __init__(self, wait: float, cause: str):
        super().__init__(f"the next retry would come after {wait:.1f} s ({cause})")
        self.wait, self.cause = wait, cause


class _Retry(Retry):
    """urllib3's Retry, with a portal's Retry-After capped (a hostile one could ask for a day's wait), and
    no wait between retries (back-off or Retry-After) that would end past the deadline of the request under
    way (``session.ends``, set by ``_PortalSession.deadline``): the deadlines count the retries' sleeps too."""

    def __init__(self, *args, session: _PortalSession | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.session = session

    def new(self, **kwargs):
        retry = super().new(**kwargs)  # (urllib3 makes a new Retry for every attempt)
        retry.session = self.session
        return retry

    def get_retry_after(self, response):
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, MAX_RETRY_AFTER_SECONDS)

    def sleep(self, response=None) -> None:
        wait = (self.get_retry_after(response) if self.respect_retry_after_header and response else None) or \
            self.get_backoff_time()
        ends = getattr(self.session, "ends", None)
        if ends is not None and time.monotonic() + wait >= ends:
            cause = f"HTTP {response.status}" if response is not None else "the connection failed or went silent"
            raise RetryPastDeadline(wait, cause)
        if wait > 0:
            time.sleep(wait)


@dataclass(frozen=True)
class Portal:
    base_url: str
    token: str
    page_size: int = 500
    transfer: str = "pages"  # one of TRANSFERS
    read_timeout: float = TIMEOUT_SECONDS[1]  # seconds of silence before a request is abandoned
    # Bounds on what the portal may send (docs/ingest.md, "What a portal cannot do"); None: the setting.
    max_page_bytes: int | None = None  # CHISO_PORTAL_MAX_PAGE_BYTES
    max_file_bytes: int | None = None  # CHISO_PORTAL_MAX_FILE_BYTES
    request_deadline: float | None = None  # CHISO_PORTAL_REQUEST_DEADLINE_SECONDS: one request, body and all
    day_deadline: float | None = None  # CHISO_PORTAL_DAY_DEADLINE_SECONDS: one entity's day, every request

    def limit(self, name: str) -> float:
        value = getattr(self, name)
        if value is not None:
            return value
        setting, kind = {"max_page_bytes": ("CHISO_PORTAL_MAX_PAGE_BYTES", int),
                         "max_file_bytes": ("CHISO_PORTAL_MAX_FILE_BYTES", int),
                         "request_deadline": ("CHISO_PORTAL_REQUEST_DEADLINE_SECONDS", float),
                         "day_deadline": ("CHISO_PORTAL_DAY_DEADLINE_SECONDS", float)}[name]
        return _setting(setting, kind)

    def __post_init__(self):
        if self.transfer not in TRANSFERS:
            raise ValueError(f"transfer must be one of {', '.join(TRANSFERS)}, got {self.transfer!r}")

    @property
    def timeout(self) -> tuple[float, float]:
        return TIMEOUT_SECONDS[0], self.read_timeout

    def session(self) -> requests.Session:
        session = _PortalSession(origin_of(self.base_url))
        retry = _Retry(
            session=session,
            total=5,
            backoff_factor=0.5,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=("GET",),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        session.headers[TOKEN_HEADER] = self.token
        for scheme in ("http://", "https://"):
            adapter = HTTPAdapter(max_retries=retry)
            adapter.poolmanager.pool_classes_by_scheme = session.watched_pools
            session.mount(scheme, adapter)
        return session


def origin_of(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of ``url``: where the token may go."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme, 0)


class RedirectRefused(PortalError):
    pass


class _PortalSession(requests.Session):
    """A session that sends the token to the portal's origin only. requests strips ``Authorization``
    on a redirect to another host but keeps every other header, ``X-Api-Token`` included: a redirect
    to another origin (scheme, host or port) is refused before anything is sent there."""

    def __init__(self, origin: tuple[str, str, int]):
        super().__init__()
        self.origin = origin
        # The sockets its requests use, so that a watchdog can cut them off at a request's deadline: a
        # read timeout bounds each wait for a byte, not a portal that sends its headers a byte at a time.
        self.sockets: set[socket.socket] = set()
        self.watched_pools = _watched_pools(self.sockets)
        self.ends: float | None = None  # the deadline of the request under way (time.monotonic), for retries

    def cut_off(self) -> None:
        """Shut the session's sockets down: whatever read waits on them returns at once."""
        for sock in list(self.sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.sockets.clear()

    @contextmanager
    def deadline(self, ends: float):
        """Cut the session off at ``ends`` (time.monotonic) if the request is still under way."""
        timer = threading.Timer(max(0.0, ends - time.monotonic()), self.cut_off)
        timer.daemon = True
        timer.start()
        self.ends = ends
        try:
            yield
        finally:
            self.ends = None
            timer.cancel()

    def rebuild_auth(self, prepared_request, response):
        target = origin_of(prepared_request.url)
        if target != self.origin:
            prepared_request.headers.pop(TOKEN_HEADER, None)
            scheme, host, port = target
            raise RedirectRefused(
                f"GET {_without_query(response.url)} redirected to {scheme}://{host}:{port}, which is not the "
                f"portal's origin {self.origin[0]}://{self.origin[1]}:{self.origin[2]}: the redirect is refused, "
                f"so that the token never leaves the portal")
        super().rebuild_auth(prepared_request, response)


def _watched_pools(sockets: set) -> dict:
    """urllib3 connection pools whose connections put their socket in ``sockets`` once connected."""

    class WatchedHTTPConnection(HTTPConnection):
        def connect(self):
            super().connect()
            sockets.add(self.sock)

    class WatchedHTTPSConnection(HTTPSConnection):
        def connect(self):
            super().connect()
            sockets.add(self.sock)

    class WatchedHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = WatchedHTTPConnection

    class WatchedHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = WatchedHTTPSConnection

    return {"http": WatchedHTTPConnectionPool, "https": WatchedHTTPSConnectionPool}


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]


BODY_ATTEMPTS = 3  # urllib3 retries connects and statuses; a body cut short is retried by tenacity (_body_retries)


def _log_retries(response: requests.Response, url: str, started: float) -> None:
    """Say what urllib3 retried silently (throttling, outages, timeouts) before this answer came."""
    retries = getattr(response.raw, "retries", None)
    history = getattr(retries, "history", ())
    if history:
        causes = ", ".join(f"HTTP {h.status}" if h.status else type(h.error).__name__ for h in history)
        log.warning("GET %s answered after %d retr%s (%s), %.1f s in all", url, len(history),
                    "y" if len(history) == 1 else "ies", causes, time.monotonic() - started)


class _Budget:
    """The time left to an entity's day (CHISO_PORTAL_DAY_DEADLINE_SECONDS), and what each request may
    take of it (CHISO_PORTAL_REQUEST_DEADLINE_SECONDS), measured on the whole request, body included:
    a read timeout alone lets a body trickle in for ever, one byte per interval."""

    def __init__(self, portal: Portal, entity: str, day: date):
        self.request_seconds = portal.limit("request_deadline")
        self.day_seconds = portal.limit("day_deadline")
        self.ends = time.monotonic() + self.day_seconds
        self.what = f"{entity} of {day}"

    def request_ends(self, url: str) -> float:
        now = time.monotonic()
        if now >= self.ends:
            raise PortalError(f"GET {url}: fetching {self.what} took longer than its {self.day_seconds:g} s "
                              f"(CHISO_PORTAL_DAY_DEADLINE_SECONDS): the fetch is abandoned")
        return min(self.ends, now + self.request_seconds)

    def retry_passed(self, url: str, ends: float, retry: RetryPastDeadline) -> PortalError:
        whole_day = ends >= self.ends
        return PortalError(
            f"GET {url}: {retry}, past {'its entity-day' if whole_day else 'the request'}'s deadline of "
            f"{self.day_seconds if whole_day else self.request_seconds:g} s "
            f"({'CHISO_PORTAL_DAY_DEADLINE_SECONDS' if whole_day else 'CHISO_PORTAL_REQUEST_DEADLINE_SECONDS'}, "
            f"{self.what}): the request is abandoned")

    def passed(self, url: str, ends: float, received: int) -> PortalError:
        whole_day = ends >= self.ends
        return PortalError(
            f"GET {url} had sent {received} bytes when {'its entity-day' if whole_day else 'the request'}'s "
            f"deadline of {self.day_seconds if whole_day else self.request_seconds:g} s passed "
            f"({'CHISO_PORTAL_DAY_DEADLINE_SECONDS' if whole_day else 'CHISO_PORTAL_REQUEST_DEADLINE_SECONDS'}, "
            f"{self.what}): the body is abandoned")


def _stream_body(response: requests.Response, url: str, limit: int, limit_name: str, budget: _Budget,
                 ends: float, write, decode_content: bool = True) -> int:
    """Read the body in chunks of at most CHUNK_BYTES, handing each to ``write``; return its size.

    Never more than ``limit`` bytes (decoded, when the portal compressed them: urllib3 decompresses at
    most one chunk at a time), never past ``ends``: ``read1`` returns as soon as any byte arrives, so the
    deadline is looked at after every read, however slowly the body comes."""
    raw, size = response.raw, 0
    while True:
        if time.monotonic() > ends:
            raise budget.passed(url, ends, size)
        chunk = raw.read1(CHUNK_BYTES, decode_content=decode_content)
        if not chunk:
            return size
        size += len(chunk)
        if size > limit:
            raise PortalError(f"GET {url} sent more than {limit} bytes ({limit_name}, {budget.what}): "
                                f"the body is refused")
        write(chunk)


class _BodyUnreadable(Exception):
    """One try's body came cut short or unreadable: tenacity tries the GET again."""

    def __init__(self, cause: Exception):
        super().__init__(str(cause))
        self.cause = cause


class _BodyRetries(Retrying):
    """How a body cut short or unreadable is tried again: BODY_ATTEMPTS tries, waits of 1 then 2 s.

    urllib3's Retry (``_Retry``) retries what happens before a body: connections refused or silent and
    throttling or outage statuses. It cannot retry a body, which it hands over unread (``stream=True``);
    tenacity retries the whole GET here when that body breaks off or does not decode. Like urllib3's
    waits, these count against the entity-day's deadline: a wait that would end past it stops the tries
    (``wait_past_deadline`` then holds that wait)."""

    def __init__(self, budget: _Budget, url: str, params: dict):
        self.wait_past_deadline: float | None = None

        def wait_ends_past_the_day(state: RetryCallState) -> bool:
            if time.monotonic() + state.upcoming_sleep < budget.ends:
                return False
            self.wait_past_deadline = state.upcoming_sleep
            return True

        def say_trying_again(state: RetryCallState) -> None:
            log.warning("GET %s %s: %s; trying again", url, params, state.outcome.exception())

        super().__init__(retry=retry_if_exception_type(_BodyUnreadable),
                         stop=stop_after_attempt(BODY_ATTEMPTS) | wait_ends_past_the_day,
                         wait=wait_exponential(multiplier=1), before_sleep=say_trying_again, reraise=True)


def _get(session: requests.Session, url: str, params: dict, budget: _Budget, limit: int, check=None,
         timeout: tuple[float, float] = TIMEOUT_SECONDS, limit_name: str = "CHISO_PORTAL_MAX_PAGE_BYTES") -> bytes:
    """GET a body of at most ``limit`` bytes, within the budget's deadlines, with retries, including
    bodies cut short or unreadable (``check`` raises on a bad body)."""
    full_url = requests.Request("GET", url, params=params).prepare().url  # for messages
    retries = _BodyRetries(budget, url, params)
    try:
        return retries(_get_once, session, url, params, budget, limit, check, timeout, limit_name, full_url)
    except _BodyUnreadable as exc:
        tries = retries.statistics["attempt_number"]
        if retries.wait_past_deadline is not None:
            past = RetryPastDeadline(retries.wait_past_deadline, "the body was cut short or unreadable")
            raise budget.retry_passed(full_url, budget.ends, past) from None
        if isinstance(exc.cause, LandingError):
            raise PortalError(f"{exc.cause} ({tries} tries)") from exc.cause
        raise PortalError(f"GET {url} {params} failed {tries} times; last: {exc.cause}") from exc.cause


def _get_once(session: requests.Session, url: str, params: dict, budget: _Budget, limit: int, check,
              timeout: tuple[float, float], limit_name: str, full_url: str) -> bytes:
    """One try of ``_get``: _BodyUnreadable if the body broke off or does not decode (worth another try)."""
    ends = budget.request_ends(full_url)
    body = bytearray()
    try:
        started = time.monotonic()
        with session.deadline(ends), session.get(url, params=params, timeout=timeout, stream=True) as response:
            _log_retries(response, url, started)
            if response.status_code != 200:
                raise PortalError(f"GET {response.url} answered HTTP {response.status_code}: {_head(response)}")
            _stream_body(response, response.url, limit, limit_name, budget, ends, body.extend)
        if check is not None:
            check(bytes(body))
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError, LandingError,
            Urllib3Error) as exc:
        if time.monotonic() >= ends:  # cut off by the watchdog
            raise budget.passed(full_url, ends, len(body)) from exc
        raise _BodyUnreadable(exc) from exc
    except RetryPastDeadline as exc:
        raise budget.retry_passed(full_url, ends, exc) from None
    except requests.RequestException as exc:
        if time.monotonic() >= ends:
            raise budget.passed(full_url, ends, len(body)) from exc
        raise PortalError(f"GET {url} {params} failed after retries: {exc}") from exc
    return bytes(body)


ERROR_BODY_QUOTED = 200  # characters of an error's text body quoted in a message, at most


def _head(response: requests.Response) -> str:
    """What an error's body says, for its message: never the whole of it (it could be endless), never a
    JSON body (its fields may hold a citizen's data), and of a text only its first ERROR_BODY_QUOTED
    characters on one line, with long numbers and e-mail addresses masked."""
    try:
        head = response.raw.read1(4 * ERROR_BODY_QUOTED)
    except (Urllib3Error, requests.RequestException, OSError):
        return "a body that could not be read"
    stripped = head.removeprefix(UTF8_BOM).lstrip()
    if not stripped:
        return "an empty body"
    if stripped[:1] in (b"{", b"[") or "json" in response.headers.get("Content-Type", "").lower():
        return "a JSON body (not quoted)"
    if stripped[:14].lower().startswith((b"<!doctype html", b"<html")) or b"<html" in stripped[:512].lower():
        return "an HTML page (not quoted)"
    text = " ".join(stripped.decode("utf-8", "replace").split())
    text = _EMAIL.sub("[e-mail]", _LONG_NUMBER.sub("[number]", text))
    return repr(text[:ERROR_BODY_QUOTED] + ("…" if len(text) > ERROR_BODY_QUOTED else ""))


_LONG_NUMBER = re.compile(r"\d{6,}")  # an ID or phone number
_EMAIL = re.compile(r"\S+@\S+")


def fetch_extract(portal: Portal, entity: str, day: date, landing_root: Path, source: str = "national") -> Path:
    """Download the day's manifest and pages unchanged; return the directory holding them.

    Pages go to an incoming directory named by the manifest's checksum, so a run that died
    mid-fetch resumes where it stopped and never mixes pages of two different extracts. If the
    extract was already landed, nothing is downloaded but the manifest.
    """
    base = f"{portal.base_url.rstrip('/')}/api/v1/{entity}"
    budget, page_limit = _Budget(portal, entity, day), portal.limit("max_page_bytes")
    with portal.session() as session:
        manifest_bytes = _get(session, f"{base}/manifest", {"ngay": day.isoformat()}, budget, page_limit,
                              timeout=portal.timeout)
        manifest = _rows_manifest(manifest_bytes, f"{base}/manifest?ngay={day.isoformat()}", entity, day)
        already_landed = landed_dir(landing_root, entity, day, manifest["sha256"], source)
        if already_landed.exists():
            log.info("%s %s already landed at %s: nothing to fetch", entity, day, already_landed)
            return already_landed
        target = incoming_dir(landing_root, entity, day, manifest["sha256"], source)
        write_file_once(target / "manifest.json", manifest_bytes)
        page, total_pages, rows = 1, None, 0
        while total_pages is None or page <= total_pages:
            page_path = target / f"page-{page:05d}.json"
            params = {"ngay": day.isoformat(), "page": page, "page_size": portal.page_size}
            url = f"{base}?ngay={day.isoformat()}&page={page}&page_size={portal.page_size}"
            if page_path.exists():  # fetched by an earlier, interrupted try
                body = page_path.read_bytes()
            else:
                body = _get(session, base, params, budget, page_limit, timeout=portal.timeout,
                            check=lambda content, url=url: _page(content, url, entity, day))
            decoded = _page(body, url, entity, day)
            total_pages = _total_pages(decoded, url, entity, day, page)
            rows += len(decoded["items"])
            if rows > manifest["row_count"]:
                raise PortalError(f"GET {url} brings {entity} of {day} to {rows} rows, more than the "
                                  f"{manifest['row_count']} its manifest declares: the extract is refused")
            if not page_path.exists():
                write_file_once(page_path, body)
            page += 1
        log.info("fetched %s %s: %d page(s), manifest says %d rows", entity, day, total_pages,
                 manifest["row_count"])
    return target


def _page(body: bytes, url: str, entity: str, day: date) -> dict:
    """A page of the paged API, or LandingError in one sentence naming the URL, the entity and the day."""
    try:
        return decode_page(body, url)
    except LandingError as exc:
        what = "it has no list of items" if "no list of items" in str(exc) else _looks_like(body)
        raise LandingError(f"GET {url} did not give a page of {entity} of {day}: {what}") from exc


def _total_pages(page: dict, url: str, entity: str, day: date, number: int) -> int:
    total = page.get("total_pages")
    if type(total) is not int or total < 1:
        problem = "no total_pages" if "total_pages" not in page else \
            f"a total_pages that is {_json_kind(total)}, not a whole number of at least 1"
        raise PortalError(f"GET {url} gave a page of {entity} of {day} with {problem}: the day cannot be paged")
    if total > number and not page["items"]:
        raise PortalError(f"GET {url} gave page {number} of {total} of {entity} of {day} without rows: "
                          f"the paging is refused, it could go on for ever")
    return total


def _rows_manifest(data: bytes, url: str, entity: str, day: date) -> dict:
    """The paged API's manifest, or PortalError in one sentence naming the URL, the entity and the day."""
    try:
        manifest = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError):
        raise PortalError(f"GET {url} did not give the manifest of {entity} of {day}: {_looks_like(data)}") from None
    if not isinstance(manifest, dict):
        raise PortalError(f"GET {url} did not give the manifest of {entity} of {day}: it is {_json_kind(manifest)}")
    problems = []
    if not _is_sha256(manifest.get("sha256")):
        problems.append("no sha256 of 64 hexadecimal digits")
    if type(manifest.get("row_count")) is not int or manifest["row_count"] < 0:
        problems.append("no row_count that is a whole number")
    if not _is_moment(manifest.get("generated_at")):
        problems.append("a generated_at that is not an ISO 8601 time with its offset")
    if problems:
        raise PortalError(f"GET {url} gave a manifest of {entity} of {day} with {' and '.join(problems)}")
    return manifest


def _looks_like(body: bytes) -> str:
    """What a body that is not the expected JSON looks like, without quoting it (it may be personal)."""
    head = body[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return f"an HTML page of {len(body)} bytes"
    if not body.strip():
        return "an empty body"
    try:
        _page_text(body, "")
    except LandingError:
        return f"{len(body)} bytes that are neither UTF-8 nor Windows-1258 text"
    return f"{len(body)} bytes that are not JSON"


def _json_kind(value) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a text", int: "an integer", float: "a number", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


# ----------------------------------------------------------------------------- whole-day files

FILE_FORMAT = "ndjson.gz"
FILE_ATTEMPTS = 2  # a file that disagrees with its manifest is downloaded once more, then refused
CHUNK_BYTES = 1 << 20


def fetch_day(portal: Portal, entity: str, day: date, landing_root: Path, source: str = "national") -> Path:
    """The day's extract by the portal's transfer: pages or the whole-day file (``source``: the slice
    it is, chiso.ingest.sources; ``portal`` is that slice's)."""
    if portal.transfer == "files":
        return fetch_day_file(portal, entity, day, landing_root, source)
    return fetch_extract(portal, entity, day, landing_root, source)


def fetch_day_file(portal: Portal, entity: str, day: date, landing_root: Path, source: str = "national") -> Path:
    """Download the day's whole NDJSON.gz file, streamed to disk and checked against its manifest.

    The file goes to the same incoming directory as pages would (named by the checksum of the day's
    rows, ``rows_sha256``, which the paged API's manifest calls ``sha256``), beside the file manifest
    as sent and a rows manifest in the paged API's form, so landing and loading read it like pages.
    A file already downloaded whole by an interrupted try is kept; a download whose size or sha256
    differs from the manifest (cut short, corrupted) is fetched once more, then refused with its URL.
    """
    url = f"{portal.base_url.rstrip('/')}/api/v1/{entity}/files/{day.isoformat()}.{FILE_FORMAT}"
    budget = _Budget(portal, entity, day)
    with portal.session() as session:
        manifest_bytes = _get(session, f"{url}.manifest", {}, budget, portal.limit("max_page_bytes"),
                              timeout=portal.timeout)
        manifest = _file_manifest(manifest_bytes, f"{url}.manifest", entity, day)
        max_file_bytes = portal.limit("max_file_bytes")
        if manifest["bytes"] > max_file_bytes:
            raise PortalError(f"GET {url}.manifest declares a file of {manifest['bytes']} bytes for {entity} of {day}, "
                              f"more than CHISO_PORTAL_MAX_FILE_BYTES ({max_file_bytes}): it is not downloaded")
        already_landed = landed_dir(landing_root, entity, day, manifest["rows_sha256"], source)
        if already_landed.exists():
            log.info("%s %s already landed at %s: nothing to fetch", entity, day, already_landed)
            return already_landed
        target = incoming_dir(landing_root, entity, day, manifest["rows_sha256"], source)
        path = target / DAY_FILE
        expected = (manifest["bytes"], manifest["sha256"])
        if path.exists() and _size_and_sha256(path) == expected:
            log.info("%s %s: %s was downloaded whole by an earlier try", entity, day, path)
        else:
            for attempt in range(1, FILE_ATTEMPTS + 1):
                received = _download(session, url, path, portal.timeout, budget, manifest["bytes"])
                if received == expected:
                    break
                message = (f"GET {url} gave {received[0]} bytes with sha256 {received[1]}; its manifest says "
                           f"{expected[0]} bytes with sha256 {expected[1]}")
                if attempt == FILE_ATTEMPTS:
                    path.unlink(missing_ok=True)
                    raise PortalError(f"{message} (truncated or corrupted, {attempt} downloads)")
                log.warning("%s: downloading it again", message)
        write_file_once(target / FILE_MANIFEST, manifest_bytes)
        rows_manifest = {"entity": entity, "business_date": day.isoformat(), "row_count": manifest["row_count"],
                         "sha256": manifest["rows_sha256"], "format": MANIFEST_FORMAT, "transfer": "files",
                         "source": url}
        if manifest.get("generated_at") is not None:
            rows_manifest["generated_at"] = manifest["generated_at"]
        write_file_once(target / "manifest.json", json.dumps(rows_manifest, ensure_ascii=False).encode())
    log.info("fetched %s %s as one file: %d bytes, manifest says %d rows", entity, day, manifest["bytes"],
             manifest["row_count"])
    return target


def _file_manifest(data: bytes, url: str, entity: str, day: date) -> dict:
    try:
        manifest = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError):
        raise PortalError(f"GET {url} did not give the file manifest of {entity} of {day}: "
                          f"{_looks_like(data)}") from None
    if not isinstance(manifest, dict):
        raise PortalError(f"GET {url} did not give the file manifest of {entity} of {day}: it is "
                          f"{_json_kind(manifest)}")
    missing = [key for key in ("row_count", "sha256", "bytes", "rows_sha256") if key not in manifest]
    if missing:
        raise PortalError(f"GET {url} is not a file manifest: it lacks {', '.join(missing)}")
    wrong = [key for key in ("row_count", "bytes") if type(manifest[key]) is not int or manifest[key] < 0] + \
        [key for key in ("sha256", "rows_sha256") if not _is_sha256(manifest[key])] + \
        (["generated_at"] if not _is_moment(manifest.get("generated_at")) else [])
    if wrong:
        raise PortalError(f"GET {url} gave a file manifest of {entity} of {day} whose {', '.join(wrong)} "
                          f"{'is' if len(wrong) == 1 else 'are'} not what a manifest holds")
    described = (manifest.get("entity"), manifest.get("business_date"), manifest.get("format"))
    if described != (entity, day.isoformat(), FILE_FORMAT):
        raise PortalError(f"GET {url} describes {described}, not ({entity!r}, {day.isoformat()!r}, {FILE_FORMAT!r})")
    return manifest


def _is_moment(value) -> bool:
    """Whether an optional generated_at is absent or an ISO 8601 time with its offset."""
    if value is None:
        return True
    try:
        return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _is_sha256(value) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _download(session: requests.Session, url: str, path: Path, timeout, budget: _Budget,
              declared_bytes: int) -> tuple[int, str]:
    """Stream ``url`` into ``path`` (owner-only, via a .part file); return (bytes, sha256) received.

    The bytes are stored as sent (no Content-Encoding decoding), so they are the bytes the manifest's
    checksum is over. A connection that breaks mid-body leaves what arrived, which the caller then
    finds short: a cut-off stream and a short file are the same fault. A body longer than its manifest
    declares is refused at once, with no more than one byte past the declared size on disk (and
    removed); so is one still arriving at the request's or the entity-day's deadline.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    part = path.with_suffix(path.suffix + ".part")
    started = time.monotonic()
    ends = budget.request_ends(url)
    with session.deadline(ends):  # (a watchdog: the headers too must come before the deadline)
        return _download_within(session, url, path, part, timeout, budget, declared_bytes, started, ends)


def _download_within(session: requests.Session, url: str, path: Path, part: Path, timeout, budget: _Budget,
                     declared_bytes: int, started: float, ends: float) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    try:
        response = session.get(url, stream=True, timeout=timeout)
    except RetryPastDeadline as exc:
        raise budget.retry_passed(url, ends, exc) from None
    except requests.RequestException as exc:
        if time.monotonic() >= ends:
            raise budget.passed(url, ends, 0) from exc
        raise PortalError(f"GET {url} failed after retries: {exc}") from exc
    with response:
        _log_retries(response, url, started)
        if response.status_code != 200:
            raise PortalError(f"GET {url} answered HTTP {response.status_code}: {_head(response)}")
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with os.fdopen(fd, "wb") as handle:

            def write(chunk: bytes) -> None:
                nonlocal size
                handle.write(chunk)
                digest.update(chunk)
                size += len(chunk)

            try:
                _stream_body(response, url, declared_bytes, "the size its manifest declares", budget, ends, write,
                             decode_content=False)
            except PortalError:
                handle.close()
                part.unlink(missing_ok=True)
                raise
            except (Urllib3Error, requests.RequestException, OSError) as exc:
                if time.monotonic() >= ends:
                    handle.close()
                    part.unlink(missing_ok=True)
                    raise budget.passed(url, ends, size) from exc
                log.warning("GET %s broke off after %d bytes: %s", url, size, exc)
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(part, path)
    return size, digest.hexdigest()


def _size_and_sha256(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
