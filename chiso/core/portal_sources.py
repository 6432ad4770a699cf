"""The syntax of CHISO_PORTAL_SOURCES, the province slices a day's extracts are fetched in
(chiso.ingest.sources says what they are for). Here, below the settings that validate it: it imports
no other chiso module."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

NATIONAL = "national"  # the source of national entities, and of every entity when nothing is sliced
SETTING = "CHISO_PORTAL_SOURCES"
_CODE = re.compile(r"^[A-Z][A-Z0-9]{1,15}$")
ALLOWED = ("a comma-separated list of CODE=URL, each CODE a province's portal code written once (e.g. H15) "
           "and each URL a path on the portal (/tinh/H15) or an http(s):// address "
           "(e.g. H15=/tinh/H15,H39=https://dvc.example.vn)")


@dataclass(frozen=True)
class Source:
    """One place a day's extracts are fetched from."""

    code: str  # NATIONAL, or a province's portal code
    url: str = ""  # "" (the portal itself), a path on the portal's host, or an absolute URL

    @property
    def is_national(self) -> bool:
        return self.code == NATIONAL

    @property
    def is_absolute(self) -> bool:
        return "://" in self.url

    @property
    def conn_id(self) -> str | None:
        """The Airflow connection holding this source's token when it is not on the portal's host."""
        return f"chiso_portal_{self.code.lower()}" if self.is_absolute else None

    def base_url(self, portal_base_url: str) -> str:
        """The URL the portal's API paths (``/api/v1/...``) are appended to."""
        if self.is_absolute:
            return self.url.rstrip("/")
        return portal_base_url.rstrip("/") + self.url.rstrip("/")


NATIONAL_SOURCE = Source(NATIONAL)


def parse_sources(text: str | None) -> tuple[Source, ...]:
    """The slices a CHISO_PORTAL_SOURCES value names (empty when unset); ValueError saying what is wrong."""
    if text is None or not text.strip():
        return ()
    sources: list[Source] = []
    for item in text.split(","):
        item = item.strip()
        code, equals, url = item.partition("=")
        code, url = code.strip().upper(), url.strip()
        if not item or not equals:
            raise ValueError(f"{item!r} is not CODE=URL")
        if not _CODE.match(code):
            raise ValueError(f"{code!r} is not a province's portal code")
        if any(source.code == code for source in sources):
            raise ValueError(f"{code} is named twice")
        if "://" in url:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"{url!r} is not an http(s):// address")
        elif not url.startswith("/") or ".." in url.split("/") or "?" in url or "#" in url:
            raise ValueError(f"{url!r} is neither a path on the portal nor an http(s):// address")
        sources.append(Source(code, url))
    return tuple(sources)


def check(text: str) -> str:
    """The setting's pydantic validator: the text unchanged if it parses."""
    parse_sources(text)
    return text
