"""The dashboards of bi/dashboards/*.yml: each defined once, read here by every BI tool's provisioning.

A dashboard file has a slug, a Vietnamese title and description, parameters and cards. Each card has a
key, a title, a description, a display (scalar, table, bar or line), its SQL over ``reporting`` and an
``expected`` query over the marts that computes its figures another way (the tests compare them).
Parameters appear in the SQL as ``{{name}}``, Metabase's template-tag syntax; :func:`bind` turns them
into bound query parameters and :func:`inline` into SQL literals (for tools without parameters).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from psycopg import sql

DASHBOARDS_DIR = Path(__file__).resolve().parents[2] / "bi" / "dashboards"
DISPLAYS = ("scalar", "table", "bar", "line")
PARAMETER_TYPES = ("unit_code", "indicator_code")
_TAG = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
_CODE = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class Parameter:
    name: str
    title: str
    type: str
    default: str | None = None
    default_from: str | None = None  # another parameter whose value this one takes when not given


@dataclass(frozen=True)
class Expected:
    sql: str
    totals: str | None = None  # aggregates over the card's rows to compare with sql's single row


@dataclass(frozen=True)
class Card:
    key: str
    title: str
    description: str
    display: str
    sql: str
    expected: Expected
    drill_through: dict | None = None

    @property
    def tags(self) -> list[str]:
        return sorted(set(_TAG.findall(self.sql)))


@dataclass(frozen=True)
class Dashboard:
    slug: str
    title: str
    description: str
    parameters: list[Parameter]
    cards: list[Card] = field(default_factory=list)
    path: Path | None = None

    def values(self, given: dict[str, str]) -> dict[str, str]:
        """Every parameter's value: those given, then defaults; a missing one is an error naming it."""
        values = {}
        for parameter in self.parameters:
            value = given.get(parameter.name) or (values.get(parameter.default_from) if parameter.default_from
                                                   else None) or parameter.default
            if value is None:
                raise ValueError(f"dashboard {self.slug} needs a value for its parameter {parameter.name!r}")
            if not _CODE.match(value):
                raise ValueError(f"parameter {parameter.name!r} of dashboard {self.slug} must be a code "
                                 f"(letters, digits, '.', '_', '-'), got {value!r}")
            values[parameter.name] = value
        return values


def _card(raw: dict, where: str) -> Card:
    expected = raw.get("expected")
    if isinstance(expected, str):
        expected = Expected(expected)
    elif isinstance(expected, dict) and "sql" in expected:
        expected = Expected(expected["sql"], expected.get("totals"))
    else:
        raise ValueError(f"{where}: card {raw.get('key')!r} has no expected query (how its figures are checked)")
    card = Card(raw["key"], raw["title"], raw["description"].strip(), raw["display"], raw["sql"], expected,
                raw.get("drill_through"))
    if card.display not in DISPLAYS:
        raise ValueError(f"{where}: card {card.key!r} has display {card.display!r}, not one of {', '.join(DISPLAYS)}")
    return card


def load(path: Path) -> Dashboard:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    parameters = [Parameter(p["name"], p["title"], p["type"], p.get("default"), p.get("default_from"))
                  for p in raw.get("parameters") or []]
    dashboard = Dashboard(raw["slug"], raw["title"], raw["description"].strip(), parameters,
                          [_card(card, str(path)) for card in raw["cards"]], path)
    declared = {p.name for p in parameters}
    for parameter in parameters:
        if parameter.type not in PARAMETER_TYPES:
            raise ValueError(f"{path}: parameter {parameter.name!r} has type {parameter.type!r}, "
                             f"not one of {', '.join(PARAMETER_TYPES)}")
    for card in dashboard.cards:
        for query in (card.sql, card.expected.sql):
            if undeclared := set(_TAG.findall(query)) - declared:
                raise ValueError(f"{path}: card {card.key!r} uses undeclared parameter(s) {sorted(undeclared)}")
    if len({card.key for card in dashboard.cards}) != len(dashboard.cards):
        raise ValueError(f"{path}: two cards share a key")
    return dashboard


def load_all(directory: Path = DASHBOARDS_DIR) -> list[Dashboard]:
    dashboards = [load(path) for path in sorted(directory.glob("*.yml"))]
    slugs = [d.slug for d in dashboards]
    if len(set(slugs)) != len(slugs):
        raise ValueError(f"two dashboards in {directory} share a slug: {slugs}")
    return dashboards


def bind(query: str) -> str:
    """The query with ``{{name}}`` as psycopg's ``%(name)s`` (and literal ``%`` escaped)."""
    return _TAG.sub(lambda m: f"%({m.group(1)})s", query.replace("%", "%%"))


def inline(query: str, values: dict[str, str]) -> str:
    """The query with each ``{{name}}`` replaced by its value as a quoted SQL literal."""
    return _TAG.sub(lambda m: sql.Literal(values[m.group(1)]).as_string(None), query)
