"""Fetching one business day of one entity from the portal: page by page from the paged JSON API
(``fetch_extract``), or as the whole-day NDJSON.gz file (``fetch_day_file``). ``fetch_day`` picks one
by the portal's ``transfer`` (CHISO_PORTAL_TRANSFER); docs/ingest.md compares them."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.util.retry import Retry

from chiso.contract.canonical import MANIFEST_FORMAT
from chiso.ingest.landing import (
    DAY_FILE,
    FILE_MANIFEST,
    FILE_MODE,
    LandingError,
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


@dataclass(frozen=True)
class Portal:
    base_url: str
    token: str
    page_size: int = 500
    transfer: str = "pages"  # one of TRANSFERS
    read_timeout: float = TIMEOUT_SECONDS[1]  # seconds of silence before a request is abandoned

    def __post_init__(self):
        if self.transfer not in TRANSFERS:
            raise ValueError(f"transfer must be one of {', '.join(TRANSFERS)}, got {self.transfer!r}")

    @property
    def timeout(self) -> tuple[float, float]:
        return TIMEOUT_SECONDS[0], self.read_timeout

    def session(self) -> requests.Session:
        retry = Retry(
            total=5,
            backoff_factor=0.5,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=("GET",),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        session = requests.Session()
        session.headers[TOKEN_HEADER] = self.token
        session.mount("http://", HTTPAdapter(max_retries=retry))
        session.mount("https://", HTTPAdapter(max_retries=retry))
        return session


BODY_ATTEMPTS = 3  # urllib3 retries connects and statuses; a body cut short is retried here


def _log_retries(response: requests.Response, url: str, started: float) -> None:
    """Say what urllib3 retried silently (throttling, outages, timeouts) before this answer came."""
    retries = getattr(response.raw, "retries", None)
    history = getattr(retries, "history", ())
    if history:
        causes = ", ".join(f"HTTP {h.status}" if h.status else type(h.error).__name__ for h in history)
        log.warning("GET %s answered after %d retr%s (%s), %.1f s in all", url, len(history),
                    "y" if len(history) == 1 else "ies", causes, time.monotonic() - started)


def _get(session: requests.Session, url: str, params: dict, check=None,
         timeout: tuple[float, float] = TIMEOUT_SECONDS) -> requests.Response:
    """GET with retries, including bodies cut short or unreadable (``check`` raises on a bad body)."""
    for attempt in range(1, BODY_ATTEMPTS + 1):
        try:
            started = time.monotonic()
            response = session.get(url, params=params, timeout=timeout)
            _log_retries(response, url, started)
            if response.status_code == 200 and check is not None:
                check(response.content)
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError, LandingError) as exc:
            if attempt == BODY_ATTEMPTS:
                raise PortalError(f"GET {url} {params} failed {attempt} times; last: {exc}") from exc
            log.warning("GET %s %s: %s; trying again", url, params, exc)
            time.sleep(0.5 * 2 ** attempt)
            continue
        except requests.RequestException as exc:
            raise PortalError(f"GET {url} {params} failed after retries: {exc}") from exc
        if response.status_code != 200:
            raise PortalError(f"GET {response.url} answered HTTP {response.status_code}: {response.text[:300]}")
        return response
    raise AssertionError("unreachable")


def fetch_extract(portal: Portal, entity: str, day: date, landing_root: Path) -> Path:
    """Download the day's manifest and pages unchanged; return the directory holding them.

    Pages go to an incoming directory named by the manifest's checksum, so a run that died
    mid-fetch resumes where it stopped and never mixes pages of two different extracts. If the
    extract was already landed, nothing is downloaded but the manifest.
    """
    base = f"{portal.base_url.rstrip('/')}/api/v1/{entity}"
    with portal.session() as session:
        manifest_bytes = _get(session, f"{base}/manifest", {"ngay": day.isoformat()}, timeout=portal.timeout).content
        manifest = json.loads(manifest_bytes)
        already_landed = landed_dir(landing_root, entity, day, manifest["sha256"])
        if already_landed.exists():
            log.info("%s %s already landed at %s: nothing to fetch", entity, day, already_landed)
            return already_landed
        target = incoming_dir(landing_root, entity, day, manifest["sha256"])
        write_file_once(target / "manifest.json", manifest_bytes)
        page, total_pages = 1, None
        while total_pages is None or page <= total_pages:
            page_path = target / f"page-{page:05d}.json"
            if page_path.exists():  # fetched by an earlier, interrupted try
                body = page_path.read_bytes()
            else:
                params = {"ngay": day.isoformat(), "page": page, "page_size": portal.page_size}
                body = _get(session, base, params, check=lambda content: decode_page(content, base),
                            timeout=portal.timeout).content
                write_file_once(page_path, body)
            total_pages = decode_page(body, str(page_path))["total_pages"]
            page += 1
        log.info("fetched %s %s: %d page(s), manifest says %d rows", entity, day, total_pages,
                 manifest["row_count"])
    return target


# ----------------------------------------------------------------------------- whole-day files

FILE_FORMAT = "ndjson.gz"
FILE_ATTEMPTS = 2  # a file that disagrees with its manifest is downloaded once more, then refused
CHUNK_BYTES = 1 << 20


def fetch_day(portal: Portal, entity: str, day: date, landing_root: Path) -> Path:
    """The day's extract by the portal's transfer: pages or the whole-day file."""
    if portal.transfer == "files":
        return fetch_day_file(portal, entity, day, landing_root)
    return fetch_extract(portal, entity, day, landing_root)


def fetch_day_file(portal: Portal, entity: str, day: date, landing_root: Path) -> Path:
    """Download the day's whole NDJSON.gz file, streamed to disk and checked against its manifest.

    The file goes to the same incoming directory as pages would (named by the checksum of the day's
    rows, ``rows_sha256``, which the paged API's manifest calls ``sha256``), beside the file manifest
    as sent and a rows manifest in the paged API's form, so landing and loading read it like pages.
    A file already downloaded whole by an interrupted try is kept; a download whose size or sha256
    differs from the manifest (cut short, corrupted) is fetched once more, then refused with its URL.
    """
    url = f"{portal.base_url.rstrip('/')}/api/v1/{entity}/files/{day.isoformat()}.{FILE_FORMAT}"
    with portal.session() as session:
        manifest_bytes = _get(session, f"{url}.manifest", {}, timeout=portal.timeout).content
        manifest = _file_manifest(manifest_bytes, f"{url}.manifest", entity, day)
        already_landed = landed_dir(landing_root, entity, day, manifest["rows_sha256"])
        if already_landed.exists():
            log.info("%s %s already landed at %s: nothing to fetch", entity, day, already_landed)
            return already_landed
        target = incoming_dir(landing_root, entity, day, manifest["rows_sha256"])
        path = target / DAY_FILE
        expected = (manifest["bytes"], manifest["sha256"])
        if path.exists() and _size_and_sha256(path) == expected:
            log.info("%s %s: %s was downloaded whole by an earlier try", entity, day, path)
        else:
            for attempt in range(1, FILE_ATTEMPTS + 1):
                received = _download(session, url, path, portal.timeout)
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
        write_file_once(target / "manifest.json", json.dumps(rows_manifest, ensure_ascii=False).encode())
    log.info("fetched %s %s as one file: %d bytes, manifest says %d rows", entity, day, manifest["bytes"],
             manifest["row_count"])
    return target


def _file_manifest(data: bytes, url: str, entity: str, day: date) -> dict:
    try:
        manifest = json.loads(data)
        missing = [key for key in ("row_count", "sha256", "bytes", "rows_sha256") if key not in manifest]
    except (json.JSONDecodeError, TypeError) as exc:
        raise PortalError(f"GET {url} is not a file manifest: {exc}") from exc
    if missing:
        raise PortalError(f"GET {url} is not a file manifest: it lacks {', '.join(missing)}")
    described = (manifest.get("entity"), manifest.get("business_date"), manifest.get("format"))
    if described != (entity, day.isoformat(), FILE_FORMAT):
        raise PortalError(f"GET {url} describes {described}, not ({entity!r}, {day.isoformat()!r}, {FILE_FORMAT!r})")
    return manifest


def _download(session: requests.Session, url: str, path: Path, timeout) -> tuple[int, str]:
    """Stream ``url`` into ``path`` (owner-only, via a .part file); return (bytes, sha256) received.

    The bytes are stored as sent (no Content-Encoding decoding), so they are the bytes the manifest's
    checksum is over. A connection that breaks mid-body leaves what arrived, which the caller then
    finds short: a cut-off stream and a short file are the same fault.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    part = path.with_suffix(path.suffix + ".part")
    digest, size = hashlib.sha256(), 0
    started = time.monotonic()
    try:
        response = session.get(url, stream=True, timeout=timeout)
    except requests.RequestException as exc:
        raise PortalError(f"GET {url} failed after retries: {exc}") from exc
    with response:
        _log_retries(response, url, started)
        if response.status_code != 200:
            raise PortalError(f"GET {url} answered HTTP {response.status_code}: {response.text[:300]}")
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            try:
                for chunk in response.raw.stream(CHUNK_BYTES, decode_content=False):
                    handle.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
            except (Urllib3Error, requests.RequestException, OSError) as exc:
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
