"""Row-level checks against the extract contract. A failing row is quarantined, never dropped.

The contract's JSON Schema (chiso.contract) decides what a valid row is; it is compiled once per
entity with fastjsonschema, which turns it into plain Python (the loader checks every row, so this
is on the hot path). Messages are rewritten to name the field and the offending value, and dates are
also checked to be real calendar moments, which a pattern cannot say.
"""

from __future__ import annotations

from functools import lru_cache

import fastjsonschema

from chiso.contract.entities import get_entity
from chiso.contract.model import Entity, is_portal_datetime


class ContractError(RuntimeError):
    """The extract's shape differs from the contract: the whole load stops."""


def check_columns(entity: Entity, columns: set[str]) -> None:
    unknown = sorted(columns - set(entity.fields))
    if unknown:
        raise ContractError(
            f"{entity.name}: the extract has columns the contract does not know: {', '.join(unknown)}"
        )


@lru_cache(maxsize=None)
def _schema_validator(entity_name: str):
    return fastjsonschema.compile(get_entity(entity_name).json_schema())


def row_problems(entity: Entity, row: dict) -> list[str]:
    """What is wrong with ``row`` (empty when it satisfies the contract)."""
    if not isinstance(row, dict):
        return [f"a row must be a JSON object, got {type(row).__name__}"]
    problems = _readable_problems(entity, row)
    if problems:
        return problems
    try:
        _schema_validator(entity.name)(row)
    except fastjsonschema.JsonSchemaValueException:
        return [_explain(entity, row)]
    return []


def _explain(entity: Entity, row: dict) -> str:
    """A precise message for a row the fast validator refused (rare, so the slow library is fine)."""
    from jsonschema import Draft7Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft7Validator(entity.json_schema()).iter_errors(row))
    while error.context:  # "not valid under any of the given schemas": say why, skipping the null branch
        relevant = [e for e in error.context if e.schema != {"type": "null"}]
        error = best_match(relevant or error.context)
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    return f"{where or 'row'}: {error.message}"


def _readable_problems(entity: Entity, row: dict) -> list[str]:
    """The common faults, named the way an engineer reading the quarantine wants them named."""
    problems = [f"missing required field {name}" for name in entity.required if row.get(name) in (None, "")]
    for name, allowed in entity.code_lists.items():
        value = row.get(name)
        if value is not None and (isinstance(value, (bool, list, dict, float)) or value not in allowed):
            problems.append(f"{name}={value!r} is not in the code list")
    for name in entity.datetime_fields:
        value = row.get(name)
        if value not in (None, "") and not is_portal_datetime(value):
            problems.append(f"{name}={value!r} is not a yyyyMMddHHmmss date")
    for list_name, name in entity.nested_datetime_fields:
        items = row.get(list_name)
        for item in items if isinstance(items, list) else ():
            value = item.get(name) if isinstance(item, dict) else None
            if value not in (None, "") and not is_portal_datetime(value):
                problems.append(f"{list_name}[].{name}={value!r} is not a yyyyMMddHHmmss date")
    return problems
