"""Row-level checks against the extract contract. A failing row is quarantined, never dropped.

The contract's JSON Schema (chiso.contract) decides what a valid row is; it is compiled once per
entity with fastjsonschema, which turns it into plain Python (the loader checks every row, so this
is on the hot path). Messages are rewritten to name the field and what is wrong with it, never its
value (a quarantined row's reason is read by engineers, and the value may be personal); dates are
also checked to be real calendar moments, which a pattern cannot say.

Hotter still: most rows are valid, so each entity's schema and the checks below are also compiled
into one stricter, quicker function (``surely_valid``: exact types, no exceptions raised) that only
ever says "valid" of a row both accept; a row it doubts goes through them as before, so the answers
do not change.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache

import fastjsonschema
from fastjsonschema.draft04 import DOLLAR_FINDER

from chiso.contract.entities import get_entity
from chiso.contract.model import Entity, is_portal_datetime


class ContractError(RuntimeError):
    """The extract's shape differs from the contract: the whole load stops."""


_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")


def check_columns(entity: Entity, columns: set[str], where: str = "") -> None:
    """Refuse columns the contract does not know; ``where`` (e.g. "line 3 of 2024-11-15, in …/page-00001.json")
    ends the message."""
    unknown = sorted(columns - set(entity.fields))
    if unknown:
        # Names that look like a column's are named; others (a key may be anything a portal sends, a
        # citizen's name included) are only counted.
        named = [name for name in unknown if _COLUMN_NAME.match(name)]
        others = len(unknown) - len(named)
        described = ", ".join(named + ([f"{others} more whose names are not identifiers"] if others else []))
        raise ContractError(f"{entity.name}: the extract has columns the contract does not know: {described}"
                            + (f" ({where})" if where else ""))


@lru_cache(maxsize=None)
def _schema_validator(entity_name: str):
    return fastjsonschema.compile(get_entity(entity_name).json_schema())


def row_problems(entity: Entity, row: dict) -> list[str]:
    """What is wrong with ``row`` (empty when it satisfies the contract)."""
    if not isinstance(row, dict):
        return [f"a row must be a JSON object, got {type(row).__name__}"]
    if _checks(entity).surely_valid(row):
        return []
    problems = _readable_problems(entity, row)
    if problems:
        return problems
    try:
        _schema_validator(entity.name)(row)
    except fastjsonschema.JsonSchemaValueException:
        return [_explain(entity, row)]
    return []


def surely_valid(entity: Entity, row) -> bool:
    """True only if ``row_problems(entity, row)`` is empty and every value in ``row`` is a string, an
    integer, a finite float, a boolean, null, a list or an object (so any JSON encoder writes it the
    same way); False when in doubt. Much quicker than ``row_problems`` for the usual, valid row."""
    return _checks(entity).surely_valid(row)


def _explain(entity: Entity, row: dict) -> str:
    """A precise message for a row the fast validator refused (rare, so the slow library is fine):
    the field and what is wrong with it, never the value (it may be a citizen's phone number)."""
    from jsonschema import Draft7Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft7Validator(entity.json_schema()).iter_errors(row))
    while error.context:  # "not valid under any of the given schemas": say why, skipping the null branch
        relevant = [e for e in error.context if e.schema != {"type": "null"}]
        error = best_match(relevant or error.context)
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    return f"{where or 'row'}: {_problem(error)}"


def shape(value) -> str:
    """What kind of value ``value`` is, saying nothing of what it holds."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"a text of {len(value)} character{'' if len(value) == 1 else 's'}"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number" if math.isfinite(value) else "a non-finite number"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else f"a {type(value).__name__}"


def _problem(error) -> str:
    """A jsonschema error told with the schema's words and the value's shape (jsonschema's own message
    quotes the value)."""
    kind, expected = error.validator, error.validator_value
    if kind == "type":
        expected = expected if isinstance(expected, str) else " or ".join(expected)
        return f"{shape(error.instance)} is not of type {expected}"
    if kind == "enum":
        return f"{shape(error.instance)} is not one of the allowed values"
    if kind == "pattern":
        return f"{shape(error.instance)} does not match the pattern {expected}"
    if kind == "required":
        return error.message  # "'X' is a required property": the name comes from the schema
    if kind == "additionalProperties":
        return "has fields the contract does not know"
    if isinstance(expected, (str, int, float)) and not isinstance(expected, bool):
        return f"{shape(error.instance)} fails {kind} {expected}"
    return f"{shape(error.instance)} fails {kind}"


class _Checks:
    """What ``_readable_problems`` looks at, taken from the entity once rather than for every row, and
    the entity's compiled ``surely_valid``."""

    def __init__(self, entity: Entity):
        self.entity = entity  # held, so that the id this is cached under is not reused
        self.required = entity.required
        self.code_lists = tuple(entity.code_lists.items())
        self.datetime_fields = entity.datetime_fields
        self.nested_datetime_fields = entity.nested_datetime_fields
        try:
            self.surely_valid = _QuickCheckWriter().compile(self, get_entity(entity.name).json_schema())
        except _Unsupported:
            self.surely_valid = _never


def _never(row) -> bool:
    return False


_CHECKS: dict[int, _Checks] = {}


def _checks(entity: Entity) -> _Checks:
    checks = _CHECKS.get(id(entity))
    if checks is None or checks.entity is not entity:
        checks = _CHECKS[id(entity)] = _Checks(entity)
    return checks


_REAL_DAYS: dict[str, bool] = {}  # yyyyMMdd -> is it a calendar day; a day's extract holds few


def _is_portal_datetime(value) -> bool:
    """``is_portal_datetime``, quicker for the usual 14 ASCII digits: strptime can only read those as
    yyyy MM dd HH mm ss (no field but the year has more than 2 digits), so the answer is whether that
    is a real moment: the time compared as fixed-width digits, the day looked up."""
    if type(value) is str and len(value) == 14 and value.isascii() and value.isdigit():
        if value[8:10] > "23" or value[10:12] > "59" or value[12:] > "59":
            return False
        day = value[:8]
        real = _REAL_DAYS.get(day)
        if real is None:
            try:
                datetime(int(day[:4]), int(day[4:6]), int(day[6:]))
                real = True
            except ValueError:
                real = False
            if len(_REAL_DAYS) < 100_000:
                _REAL_DAYS[day] = real
        return real
    return is_portal_datetime(value)


def _readable_problems(entity: Entity, row: dict) -> list[str]:
    """The common faults, named the way an engineer reading the quarantine wants them named."""
    checks = _checks(entity)
    problems = [f"missing required field {name}" for name in checks.required if row.get(name) in (None, "")]
    for name, allowed in checks.code_lists:
        value = row.get(name)
        if value is not None and (isinstance(value, (bool, list, dict, float)) or value not in allowed):
            problems.append(f"{name}: {shape(value)} is not in the code list")
    for name in checks.datetime_fields:
        value = row.get(name)
        if value not in (None, "") and not _is_portal_datetime(value):
            problems.append(f"{name}: {shape(value)} is not a yyyyMMddHHmmss date")
    for list_name, name in checks.nested_datetime_fields:
        items = row.get(list_name)
        for item in items if isinstance(items, list) else ():
            value = item.get(name) if isinstance(item, dict) else None
            if value not in (None, "") and not _is_portal_datetime(value):
                problems.append(f"{list_name}[].{name}: {shape(value)} is not a yyyyMMddHHmmss date")
    return problems


# ----------------------------------------------------------------------------- surely_valid, compiled

class _Unsupported(Exception):
    """The schema uses something the quick check does not translate: every row takes the slow path."""


_ANNOTATIONS = frozenset({"$schema", "$id", "title", "description"})
_KEYWORDS = frozenset({"type", "anyOf", "enum", "pattern", "properties", "required", "additionalProperties",
                       "items"})
_EXACT_TYPES = {  # exact types: JSON never decodes to subclasses, and bool is not an integer here
    "string": "type({v}) is str",
    "integer": "type({v}) is int",
    "number": "(type({v}) is int or (type({v}) is float and _isfinite({v})))",
    "boolean": "type({v}) is bool",
    "null": "{v} is None",
    "object": "type({v}) is dict",
    "array": "type({v}) is list",
}
# A portal date-time that _is_portal_datetime has already seen to be a real moment (else: in doubt).
_DATETIME = ('(type({v}) is str and len({v}) == 14 and {v}.isascii() and {v}.isdigit() and {v}[8:10] <= "23" '
             'and {v}[10:12] <= "59" and {v}[12:] <= "59" and _real_days.get({v}[:8]) is True)')
_MISSING = object()


class _QuickCheckWriter:
    """Writes the Python source of ``surely_valid(row)``: first ``_readable_problems``'s conditions
    (the same expressions, or stricter), then the JSON Schema read as fastjsonschema reads it (anyOf,
    type, enum, pattern with ``$`` as end of string, properties, required, additionalProperties,
    items), with exact types, and only schemas that say the type of every value inside a row."""

    def __init__(self):
        self.constants: dict[str, object] = {"_MISSING": _MISSING, "_isfinite": math.isfinite,
                                             "_real_days": _REAL_DAYS}
        self.functions: list[str] = []

    def constant(self, value) -> str:
        name = f"_c{len(self.constants)}"
        self.constants[name] = value
        return name

    def expression(self, schema, v: str) -> str:
        if not isinstance(schema, dict) or not set(schema) <= _KEYWORDS | _ANNOTATIONS:
            raise _Unsupported(schema)
        if not {"type", "anyOf", "enum"} & set(schema):
            raise _Unsupported(schema)  # any value would do: it could hold NaN
        parts = []
        if "anyOf" in schema:
            branches = schema["anyOf"]
            if not isinstance(branches, list) or not branches:
                raise _Unsupported(schema)
            parts.append("(" + " or ".join(self.expression(branch, v) for branch in branches) + ")")
        if "type" in schema:
            if schema["type"] not in _EXACT_TYPES:
                raise _Unsupported(schema)
            parts.append(_EXACT_TYPES[schema["type"]].format(v=v))
        if "enum" in schema:
            values = schema["enum"]
            if not isinstance(values, list) or not all(type(value) in (int, str) for value in values):
                raise _Unsupported(schema)
            parts.append(f"(type({v}) is int or type({v}) is str) and {v} in {self.constant(frozenset(values))}")
        if "pattern" in schema:
            regex = self.constant(re.compile(DOLLAR_FINDER.sub(r"\\Z", schema["pattern"])))
            parts.append(f"(not isinstance({v}, str) or {regex}.search({v}) is not None)")
        if {"properties", "required", "additionalProperties"} & set(schema) or schema.get("type") == "object":
            parts.append(f"isinstance({v}, dict) and {self.object_function(schema)}({v})")
        if "items" in schema or schema.get("type") == "array":
            parts.append(f"(not isinstance({v}, list) or {self.array_function(schema.get('items'))}({v}))")
        return "(" + " and ".join(parts) + ")"

    def object_function(self, schema: dict) -> str:
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        if not isinstance(properties, dict) or not isinstance(required, list) \
                or schema.get("additionalProperties") is not False:
            raise _Unsupported(schema)  # other keys' values could be anything
        body = [f"    if not {self.constant(frozenset(required))} <= d.keys(): return False",
                f"    if not d.keys() <= {self.constant(frozenset(properties))}: return False"]
        for key, subschema in properties.items():
            body.append(f"    v = d.get({key!r}, _MISSING)")
            body.append(f"    if v is not _MISSING and not {self.expression(subschema, 'v')}: return False")
        return self.function("d", body)

    def array_function(self, items) -> str:
        return self.function("items", ["    for v in items:",
                                       f"        if not {self.expression(items, 'v')}: return False"])

    def function(self, argument: str, body: list[str]) -> str:
        name = f"_check{len(self.functions)}"
        self.functions.append("\n".join([f"def {name}({argument}):", *body, "    return True"]))
        return name

    def readable(self, checks: _Checks) -> list[str]:
        """The body of surely_valid before the schema: False wherever _readable_problems may complain."""
        body = ["    if type(row) is not dict: return False"]
        for name in checks.required:
            body.append(f"    if row.get({name!r}) in (None, ''): return False")
        for name, allowed in checks.code_lists:
            body.append(f"    v = row.get({name!r})")
            body.append(f"    if v is not None and (isinstance(v, (bool, list, dict, float)) "
                        f"or v not in {self.constant(allowed)}): return False")
        for name in checks.datetime_fields:
            body.append(f"    v = row.get({name!r})")
            body.append(f"    if not (v in (None, '') or {_DATETIME.format(v='v')}): return False")
        for list_name, name in checks.nested_datetime_fields:
            body += [f"    items = row.get({list_name!r})",
                     "    if isinstance(items, list):",
                     "        for item in items:",
                     f"            v = item.get({name!r}) if isinstance(item, dict) else None",
                     f"            if not (v in (None, '') or {_DATETIME.format(v='v')}): return False"]
        return body

    def compile(self, checks: _Checks, schema: dict) -> Callable[[object], bool]:
        body = self.readable(checks)
        body.append(f"    return {self.expression(schema, 'row')}")
        source = "\n\n".join([*self.functions, "def surely_valid(row):\n" + "\n".join(body)])
        namespace = dict(self.constants)
        exec(compile(source, "<chiso.ingest.validate surely_valid>", "exec"), namespace)  # noqa: S102 (ours)
        return namespace["surely_valid"]
