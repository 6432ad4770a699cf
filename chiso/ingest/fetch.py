"""Fetching one business day of one entity from the portal's paged API."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from chiso.ingest.landing import LandingError, decode_page, incoming_dir, landed_dir, write_file_once

log = logging.getLogger(__name__)

TOKEN_HEADER = "X-Api-Token"
TIMEOUT_SECONDS = (5, 60)  # connect, read


class PortalError(RuntimeError):
    pass


@dataclass(frozen=True)
class Portal:
    base_url: str
    token: str
    page_size: int = 500

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


def _get(session: requests.Session, url: str, params: dict, check=None) -> requests.Response:
    """GET with retries, including bodies cut short or unreadable (``check`` raises on a bad body)."""
    for attempt in range(1, BODY_ATTEMPTS + 1):
        try:
            response = session.get(url, params=params, timeout=TIMEOUT_SECONDS)
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
        manifest_bytes = _get(session, f"{base}/manifest", {"ngay": day.isoformat()}).content
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
                body = _get(session, base, params, check=lambda content: decode_page(content, base)).content
                write_file_once(page_path, body)
            total_pages = decode_page(body, str(page_path))["total_pages"]
            page += 1
        log.info("fetched %s %s: %d page(s), manifest says %d rows", entity, day, total_pages,
                 manifest["row_count"])
    return target
