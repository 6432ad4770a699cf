"""The loader's fast lane: a whole page decoded *and* checked against the contract in one C pass.

Most pages of an extract are clean. For them, parsing JSON into dicts (``json.loads``), checking each
dict in Python (``chiso.ingest.validate``) and writing it back as JSON cost the loader three times
what the server spends storing the row. Here each entity's JSON Schema is translated once into
msgspec ``Struct`` types, so that decoding a page *is* the contract check and re-encoding a row is
one C call.

The translation is deliberately stricter than the contract, never looser: a page it decodes holds
only rows for which ``row_problems`` is empty, and encoding a decoded row gives the same JSON value
(the same jsonb) as the slow lane's encoding of the parsed dict. Anything in doubt raises, and the
loader then takes the page through the slow lane, which quarantines and explains exactly as before:

- unknown columns, wrong types, values outside a code list, empty required fields: msgspec refuses
  the page (``forbid_unknown_fields``, exact types, ``Literal``, ``min_length``);
- portal date-times must be real moments of the years 1900–2099 (a regex that knows month lengths
  and leap years), which is narrower than ``is_portal_datetime``;
- a field absent from the row stays absent (``UNSET`` is never encoded), a null stays null;
- integers stay integers (a float where the contract says integer is refused, not converted);
  numbers are ``int | float`` with finite bounds, so nothing decodes to infinity;
- schemas using a keyword this module does not translate give no fast lane for the entity at all.

``tests/test_typed_decode.py`` checks soundness on random rows (hypothesis) against the slow lane.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal, Union

import msgspec
from fastjsonschema.draft04 import DOLLAR_FINDER
from msgspec import UNSET, Meta, UnsetType

from chiso.contract.entities import get_entity
from chiso.contract.model import Entity


class Unsupported(Exception):
    """The schema uses something this module does not translate: no fast lane for the entity."""


_YEAR = r"(?:19|20)[0-9]{2}"
_LEAP_YEAR = r"(?:(?:19|20)(?:0[48]|[2468][048]|[13579][26])|2000)"
_MONTH_DAY = (r"(?:(?:0[1-9]|1[0-2])(?:0[1-9]|1[0-9]|2[0-8])"  # every month has days 1-28
              r"|(?:0[13-9]|1[0-2])(?:29|30)"  # all but February have 29 and 30
              r"|(?:0[13578]|1[02])31)")  # the long months have 31
# yyyyMMddHHmmss of a real moment (1900-2099): everything it matches, is_portal_datetime accepts.
PORTAL_MOMENT = (rf"^(?:{_YEAR}{_MONTH_DAY}|{_LEAP_YEAR}0229)"
                 r"(?:[01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]\Z")
_PORTAL_DATETIME_PATTERN = "^[0-9]{14}$"  # the contract's pattern for portal date-times
_LARGEST_FLOAT = 1.7976931348623157e308
_ANNOTATIONS = frozenset({"$schema", "$id", "title", "description"})
_KEYWORDS = frozenset({"type", "anyOf", "enum", "pattern", "properties", "required", "additionalProperties",
                       "items"})


@dataclass(frozen=True)
class TypedDecoders:
    """An entity's fast lane: ``page`` decodes a portal page (``{"items": [...], …}``), ``row`` one
    NDJSON line; ``attribute`` maps a top-level column to its Struct attribute (for pseudonyms)."""

    page: msgspec.json.Decoder
    row: msgspec.json.Decoder
    attribute: dict[str, str]


@lru_cache(maxsize=None)
def typed_decoders(entity_name: str) -> TypedDecoders | None:
    """The entity's fast lane, or None when its schema cannot be translated soundly."""
    try:
        row_type, attribute = _Translator(get_entity(entity_name)).row_struct()
        page_type = msgspec.defstruct(f"{entity_name}_page", [("items", list[row_type])])
        return TypedDecoders(msgspec.json.Decoder(page_type), msgspec.json.Decoder(row_type), attribute)
    except (Unsupported, TypeError, ValueError):  # msgspec refuses some unions (TypeError)
        return None


def encoder() -> msgspec.json.Encoder:
    return msgspec.json.Encoder()


class _Translator:
    """JSON Schema (as fastjsonschema reads it) plus ``_readable_problems``' checks → msgspec types."""

    def __init__(self, entity: Entity):
        self.entity = entity
        self.structs = 0

    def row_struct(self) -> tuple[type, dict[str, str]]:
        schema = self.entity.json_schema()
        entity = self.entity
        nested_datetimes: dict[str, set[str]] = {}
        for list_name, name in entity.nested_datetime_fields:
            nested_datetimes.setdefault(list_name, set()).add(name)
        return self.struct(schema, required_nonempty=set(entity.required), datetimes=set(entity.datetime_fields),
                           code_lists=dict(entity.code_lists), nested_datetimes=nested_datetimes)

    def struct(self, schema: dict, required_nonempty=frozenset(), datetimes=frozenset(), code_lists=None,
               nested_datetimes=None) -> tuple[type, dict[str, str]]:
        self.check_keywords(schema)
        if schema.get("type") != "object" or schema.get("additionalProperties") is not False:
            raise Unsupported(schema)  # other keys' values could be anything
        properties, required = schema.get("properties", {}), set(schema.get("required", []))
        if not isinstance(properties, dict) or not required <= set(properties) \
                or not set(required_nonempty) <= set(properties):
            raise Unsupported(schema)
        fields, rename, attribute = [], {}, {}
        for number, (key, subschema) in enumerate(properties.items()):
            name = key if key.isidentifier() and not keyword.iskeyword(key) and not key.startswith("_") \
                else f"field_{number}"
            if name != key:
                rename[name] = key
            attribute[key] = name
            field_type = self.type_of(subschema, nonempty=key in required_nonempty, datetime=key in datetimes,
                                      code_list=(code_lists or {}).get(key),
                                      item_datetimes=(nested_datetimes or {}).get(key, frozenset()))
            if key in required or key in required_nonempty:  # (absent counts as empty)
                fields.append((name, field_type))
            else:
                fields.append((name, Union[field_type, UnsetType], UNSET))
        self.structs += 1
        struct = msgspec.defstruct(f"{self.entity.name}_{self.structs}", fields, kw_only=True,
                                   forbid_unknown_fields=True, rename=rename or None)
        return struct, attribute

    @staticmethod
    def check_keywords(schema) -> None:
        if not isinstance(schema, dict) or not set(schema) <= _KEYWORDS | _ANNOTATIONS:
            raise Unsupported(schema)

    def type_of(self, schema: dict, nonempty=False, datetime=False, code_list=None, item_datetimes=frozenset()):
        """The msgspec type of a value. ``nonempty``: a required column (neither null nor ""),
        ``datetime``: a portal date-time, ``code_list``: the allowed values, ``item_datetimes``: the
        date-time keys of the objects in this list."""
        self.check_keywords(schema)
        if "anyOf" in schema:
            if set(schema) - _ANNOTATIONS - {"anyOf"}:
                raise Unsupported(schema)  # anyOf beside other keywords: keep it simple
            branches = [b for b in schema["anyOf"] if not (nonempty and b == {"type": "null"})]
            if not branches:
                raise Unsupported(schema)
            types = [self.type_of(b, nonempty, datetime, code_list, item_datetimes) for b in branches]
            return Union[tuple(types)] if len(types) > 1 else types[0]
        kind = schema.get("type")
        if kind == "null":
            return type(None)
        allowed = None
        if "enum" in schema:
            allowed = list(schema["enum"])
        if code_list is not None:
            allowed = [v for v in (allowed if allowed is not None else code_list) if v in code_list]
        if allowed is not None:
            allowed = [v for v in allowed if type(v) in (int, str) and not (nonempty and v == "")]
            if kind == "integer":
                allowed = [v for v in allowed if type(v) is int]
            elif kind == "string":
                allowed = [v for v in allowed if type(v) is str]
            elif kind is not None:
                raise Unsupported(schema)
            if not allowed or "pattern" in schema:
                raise Unsupported(schema)
            return Literal[tuple(allowed)]
        if kind == "string":
            constraints: dict[str, Any] = {}
            if datetime:
                if schema.get("pattern") not in (None, _PORTAL_DATETIME_PATTERN):
                    raise Unsupported(schema)
                constraints["pattern"] = PORTAL_MOMENT
            elif "pattern" in schema:
                constraints["pattern"] = DOLLAR_FINDER.sub(r"\\Z", schema["pattern"])
            if nonempty:
                constraints["min_length"] = 1
            return Annotated[str, Meta(**constraints)] if constraints else str
        if datetime:
            raise Unsupported(schema)  # a date-time column that is not a string
        if kind == "integer":
            return int
        if kind == "number":
            return Union[int, Annotated[float, Meta(ge=-_LARGEST_FLOAT, le=_LARGEST_FLOAT)]]
        if kind == "boolean":
            return bool
        if kind == "array":
            if "items" not in schema:
                raise Unsupported(schema)
            return list[self.type_of(schema["items"], item_datetimes=item_datetimes)]
        if kind == "object":
            return self.struct(schema, datetimes=set(item_datetimes))[0]
        raise Unsupported(schema)

