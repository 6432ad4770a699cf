"""Every entity's daily extract, as a stream of rows grouped by unit.

Rows come unit after unit (catalogues as one group), so a page can be served by skipping whole
units and a whole day streams in flat memory whatever its size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date

from chiso.simulator import catalogue, dossiers, feedback
from chiso.simulator.world import World

RowSource = Callable[[int, World, date], Iterator[dict]]


def _catalogue(rows: Callable[[World, date], Iterator[dict]]) -> RowSource:
    return lambda seed, world, day: rows(world, day)


SOURCES: dict[str, RowSource] = {
    "units": _catalogue(catalogue.unit_rows),
    "unit_crosswalk": _catalogue(catalogue.crosswalk_rows),
    "procedures": _catalogue(catalogue.procedure_rows),
    "procedure_publications": catalogue.publication_rows,
    "dossiers": dossiers.dossier_rows,
    "process_log": dossiers.process_log_rows,
    "ratings": dossiers.rating_rows,
    "feedback": feedback.feedback_rows,
}


def extract_rows(entity: str, seed: int, world: World, day: date) -> Iterator[dict]:
    try:
        source = SOURCES[entity]
    except KeyError:
        raise ValueError(f"The simulator does not serve entity {entity!r}") from None
    return source(seed, world, day)
