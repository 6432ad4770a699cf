"""The building blocks of the extract contract: fields, entities, and the JSON Schema they imply.

An entity is declared once, as a list of ``Field``s in the portal's own names; its JSON Schema
(what the loader validates each row against), its CSV header (the Vietnamese labels officials see
in the portal's export) and its documentation page are all derived from that declaration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

CONTRACT_VERSION = "2.0.0"
PORTAL_DATETIME_FORMAT = "%Y%m%d%H%M%S"
PORTAL_TIMEZONE = "Asia/Ho_Chi_Minh"

# Field types. "datetime" is the portal's yyyyMMddHHmmss text (Asia/Ho_Chi_Minh); "flag" is the
# portal's 0/1 integer; "array" holds nested records described by ``items``.
TYPES = ("string", "integer", "number", "flag", "datetime", "array")


@dataclass(frozen=True)
class Field:
    name: str  # the portal's field name, e.g. MaHoSo
    type: str
    label_vi: str  # column header of the portal's CSV export
    description: str  # meaning, in English
    required: bool = False
    codes: dict | None = None  # allowed values -> meaning (Vietnamese), for code lists
    personal: bool = False  # applicant's personal data: pseudonymised at load time
    items: tuple[Field, ...] = ()  # for arrays: the fields of each nested record

    def __post_init__(self):
        if self.type not in TYPES:
            raise ValueError(f"{self.name}: unknown field type {self.type!r}")
        if (self.type == "array") != bool(self.items):
            raise ValueError(f"{self.name}: arrays, and only arrays, declare items")

    def json_schema(self) -> dict:
        if self.type == "array":
            schema = {"type": "array", "items": _record_schema(self.items)}
        elif self.type == "datetime":
            schema = {"type": "string", "pattern": r"^[0-9]{14}$"}
        elif self.type == "flag":
            schema = {"type": "integer", "enum": [0, 1]}
        else:
            schema = {"type": self.type}
        if self.codes is not None:
            schema["enum"] = sorted(self.codes, key=str)
        if not self.required:
            schema = {"anyOf": [schema, {"type": "null"}]}
        schema["description"] = self.description
        return schema


def _record_schema(fields: tuple[Field, ...]) -> dict:
    return {
        "type": "object",
        "properties": {f.name: f.json_schema() for f in fields},
        "required": [f.name for f in fields if f.required],
        "additionalProperties": False,
    }


@dataclass(frozen=True)
class Entity:
    name: str  # in URLs, landing paths and raw table names
    title_vi: str
    description: str
    key: tuple[str, ...]  # identifies one record; a record may reappear, the latest version wins
    field_list: tuple[Field, ...]
    change_feed: bool = True  # daily extracts carry what changed that day (else: a full snapshot)
    # The field naming the unit a row belongs to, when the portal can serve the entity one province at
    # a time (CHISO_PORTAL_SOURCES, docs/ingest.md "Sources"): every row of a day lies in exactly one
    # province's slice. None: the entity is national (catalogues, the national TTHC database).
    province_field: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.field_list)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.field_list if f.required)

    @property
    def datetime_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.field_list if f.type == "datetime")

    @property
    def nested_datetime_fields(self) -> tuple[tuple[str, str], ...]:
        return tuple((f.name, item.name) for f in self.field_list if f.type == "array"
                     for item in f.items if item.type == "datetime")

    @property
    def personal_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.field_list if f.personal)

    @property
    def code_lists(self) -> dict[str, frozenset]:
        return {f.name: frozenset(f.codes) for f in self.field_list if f.codes is not None}

    @property
    def raw_table(self) -> str:
        return f"portal__{self.name}"

    def field(self, name: str) -> Field:
        for candidate in self.field_list:
            if candidate.name == name:
                return candidate
        raise KeyError(f"{self.name} has no field {name}")

    def json_schema(self) -> dict:
        return {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "$id": f"urn:chiso:contract:{CONTRACT_VERSION}:{self.name}",
            "title": f"{self.name} ({self.title_vi}), contract {CONTRACT_VERSION}",
            "description": self.description,
            **_record_schema(self.field_list),
        }


def is_portal_datetime(value: str) -> bool:
    try:
        datetime.strptime(value, PORTAL_DATETIME_FORMAT)
    except (TypeError, ValueError):
        return False
    return True
