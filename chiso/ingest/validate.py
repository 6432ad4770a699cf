"""Row-level checks against the extract contract. A failing row is quarantined, never dropped."""

from __future__ import annotations

from datetime import datetime

from chiso.contract.entities import PORTAL_DATETIME_FORMAT, Entity


class ContractError(RuntimeError):
    """The extract's shape differs from the contract: the whole load stops."""


def check_columns(entity: Entity, columns: set[str]) -> None:
    unknown = sorted(columns - set(entity.fields))
    if unknown:
        raise ContractError(
            f"{entity.name}: the extract has columns the contract does not know: {', '.join(unknown)}"
        )


def row_problems(entity: Entity, row: dict) -> list[str]:
    problems = [f"missing required field {name}" for name in entity.required if row.get(name) in (None, "")]
    for name, allowed in entity.code_lists.items():
        if name in row and row[name] not in allowed:
            problems.append(f"{name}={row[name]!r} is not in the code list")
    for name in entity.datetime_fields:
        value = row.get(name)
        if value in (None, ""):
            continue
        try:
            datetime.strptime(str(value), PORTAL_DATETIME_FORMAT)
        except ValueError:
            problems.append(f"{name}={value!r} is not a yyyyMMddHHmmss date")
    return problems
