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

# The setting's syntax sits below the settings that validate it (chiso.core.portal_sources).
from chiso.core.portal_sources import (  # noqa: F401
    ALLOWED, NATIONAL, NATIONAL_SOURCE, SETTING, Source, check, parse_sources)


def configured() -> tuple[Source, ...]:
    """The province slices of the environment's CHISO_PORTAL_SOURCES; () when unset."""
    from chiso.core import settings

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
