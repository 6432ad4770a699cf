"""Where a day's extracts come from: one national portal, or one slice per province.

``CHISO_PORTAL_SOURCES`` lists the slices as ``CODE=URL`` pairs separated by commas, e.g.
``H15=/tinh/H15,H39=/tinh/H39``:

* ``CODE`` is the province's portal code (``H15``); it names the slice in the landing zone
  (``tinh=H15``), in ``raw.load_ledger.source`` and in the Airflow UI (the mapped task's index);
* ``URL`` is either a path on the portal's host (the ``CHISO_PORTAL_CONN_ID`` connection, whose token
  it uses), or an absolute ``http(s)://`` URL of a provincial system, whose token is the password of
  the Airflow connection ``chiso_portal_<code>`` (lower case: ``chiso_portal_h15``).

Only the entities the contract slices by province (``Entity.province_field``: dossiers, process
steps, feedback, ratings) are fetched per slice; the catalogues and the national TTHC database's
publications are national and come from the national source whatever the setting says.

Unset, there is one national source (``national``) and everything is as it always was: the landing
zone has no ``tinh=`` folder, the ledger's source is ``national``.
"""

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


def configured() -> tuple[Source, ...]:
    """The province slices of the environment's CHISO_PORTAL_SOURCES; () when unset."""
    from chiso import settings

    return parse_sources(settings.get(SETTING))


def is_sliced(entity_name: str) -> bool:
    """Whether the contract fetches ``entity_name`` per province (when slices are configured)."""
    from chiso.contract import ENTITIES

    return ENTITIES[entity_name].province_field is not None


def sources_for(entity_name: str, slices: tuple[Source, ...] | None = None) -> tuple[Source, ...]:
    """Where ``entity_name``'s day comes from: the configured slices if the contract slices it, else
    the national source."""
    slices = configured() if slices is None else slices
    return slices if slices and is_sliced(entity_name) else (NATIONAL_SOURCE,)


def source_named(code: str) -> Source:
    """The source of that code (NATIONAL or a configured slice); ValueError if none is configured."""
    if code == NATIONAL:
        return NATIONAL_SOURCE
    for source in configured():
        if source.code == code:
            return source
    raise ValueError(f"{SETTING} names no source {code!r}")
