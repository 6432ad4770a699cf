"""Faults on demand for the portal simulator, so tests can prove the pipeline survives them.

A ``FaultPlan`` names the faults in effect for one answer, with their parameters; it is written as
text such as ``"http_429:attempts=2:retry_after=1,duplicate_rows:rate=0.05"``. A ``FaultSchedule``
says which plan applies to which business day and entity; a per-request override (query parameter
``fault=`` or header ``X-Simulator-Fault``) replaces it for one request.

Everything here is pure and deterministic: the same plan applied to the same input gives the same
output on every call, because randomness comes from ``random.Random`` streams seeded by the plan's
seed, the fault, the entity and the day (never the global generator). Input rows are never
modified: a fault that changes a row yields a copy, since the server caches the day's rows.

The server applies the four levels in this order:
``plan_for`` → ``http_fault_for`` (before serving) → ``apply_row_faults`` (the day's rows, before
paging) → ``apply_byte_faults`` (the encoded body) and ``apply_manifest_faults`` (manifests).
"""

from __future__ import annotations

import copy
import hashlib
import math
import random
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from chiso.contract.entities import ENTITIES, PORTAL_DATETIME_FORMAT, Entity, get_entity

REQUEST_OVERRIDE_PARAM = "fault"
REQUEST_OVERRIDE_HEADER = "X-Simulator-Fault"

LEVELS = ("http", "rows", "bytes", "manifest")

# ----------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class ValueKind:
    """How a parameter's text becomes a value, and which values are allowed."""

    expected: str  # for error messages and the docs table
    convert: Callable[[str], Any]
    accept: Callable[[Any], bool]

    def parse(self, text: str) -> Any:
        try:
            value = self.convert(text)
        except ValueError:
            raise ValueError(self.expected) from None
        if not self.accepts(value):
            raise ValueError(self.expected)
        return value

    def accepts(self, value: Any) -> bool:
        try:
            return bool(self.accept(value))
        except TypeError:  # e.g. a string given where a number is expected
            return False


RATE = ValueKind("a share in (0, 1]", float, lambda v: 0 < v <= 1)
FRACTION = ValueKind("a share in (0, 1)", float, lambda v: 0 < v < 1)
ATTEMPTS = ValueKind("a whole number >= 1", int, lambda v: v >= 1)
SECONDS = ValueKind("seconds >= 0", float, lambda v: math.isfinite(v) and v >= 0)
WHOLE_SECONDS = ValueKind("whole seconds >= 0", int, lambda v: v >= 0)
FIELD_NAME = ValueKind("a field name (letters, digits, _)", str, str.isidentifier)
TEXT = ValueKind("text", str, lambda v: True)
MANIFEST_PART = ValueKind("row_count, sha256 or both", str, lambda v: v in ("row_count", "sha256", "both"))


@dataclass(frozen=True)
class Param:
    name: str
    kind: ValueKind
    default: Any  # None: unset (the fault picks a value per entity, or leaves the feature out)
    help: str


def _rate(default: float) -> Param:
    return Param("rate", RATE, default, "share of eligible rows affected (at least one row always is)")


def _attempts(default: int) -> Param:
    return Param("attempts", ATTEMPTS, default, "failing attempts of the same request before it succeeds")


@dataclass(frozen=True)
class FaultSpec:
    name: str
    level: str  # one of LEVELS
    description: str  # one line, English
    params: tuple[Param, ...] = ()

    def param(self, name: str) -> Param:
        for candidate in self.params:
            if candidate.name == name:
                return candidate
        known = ", ".join(p.name for p in self.params) or "none"
        raise ValueError(f"fault {self.name!r} has no parameter {name!r} (known: {known})")


# Within a level, the registry's order is the order the faults are applied in.
FAULTS: dict[str, FaultSpec] = {spec.name: spec for spec in (
    FaultSpec("http_429", "http", "Answer 429 Too Many Requests with a Retry-After header for the first attempts.",
              (_attempts(2), Param("retry_after", WHOLE_SECONDS, 1, "seconds in the Retry-After header"))),
    FaultSpec("http_500", "http", "Answer 500 Internal Server Error for the first attempts.", (_attempts(2),)),
    FaultSpec("http_503", "http", "Answer 503 Service Unavailable for the first attempts.",
              (_attempts(2), Param("retry_after", WHOLE_SECONDS, None, "seconds in a Retry-After header"))),
    FaultSpec("drop_connection", "http",
              "Send the headers and part of the body, then close the connection, for the first attempts.",
              (_attempts(1), Param("fraction", FRACTION, 0.5, "share of the body sent before closing"))),
    FaultSpec("timeout", "http", "Stay silent longer than the client's read timeout, for the first attempts.",
              (_attempts(1), Param("seconds", SECONDS, 65.0, "delay; chiso.ingest reads with a 60 s timeout"))),
    FaultSpec("slow", "http", "Delay every answer, failing or not.",
              (Param("seconds", SECONDS, 2.0, "delay before each answer"),)),
    FaultSpec("empty_day", "rows", "The day has no rows at all.", ()),
    FaultSpec("update_before_create", "rows",
              "Emit a later version of a record (later NgayCapNhat, next status) before the record itself.",
              (_rate(0.05),)),
    FaultSpec("malformed_dates", "rows",
              "One datetime field of a row becomes e.g. '15/11/2024' or '2024-13-45 25:61'.", (_rate(0.05),)),
    FaultSpec("malformed_codes", "rows",
              "A code-list field (not the status) gets a value outside its list, e.g. 9 or 'hai'.", (_rate(0.05),)),
    FaultSpec("unknown_status", "rows", "The status field (TrangThai...) gets 0 or one past its last code.",
              (_rate(0.05),)),
    FaultSpec("nfd_text", "rows", "Every string value is Unicode NFD-decomposed.", ()),
    FaultSpec("duplicate_rows", "rows", "Some rows are sent twice, the copy right after the original.",
              (_rate(0.05),)),
    FaultSpec("extra_column", "rows", "A field the contract does not declare is added to every row.",
              (Param("name", FIELD_NAME, "GhiChuNoiBo", "name of the added field"),
               Param("value", TEXT, "ghi chú", "its value (a string)"))),
    FaultSpec("renamed_column", "rows", "One field is renamed in every row.",
              (Param("field", FIELD_NAME, None, "field to rename (unset: the status field, else the first "
                                                 "non-key field)"),
               Param("to", FIELD_NAME, None, "new name (unset: TrangThai for a status field when free, "
                                              "else the camelCase spelling)"))),
    FaultSpec("cp1258_text", "bytes",
              "The body is encoded Windows-1258 (tone marks as combining characters) instead of UTF-8.", ()),
    FaultSpec("truncated_file", "bytes", "The body is cut short.",
              (Param("fraction", FRACTION, 0.6, "share of the bytes kept"),)),
    FaultSpec("manifest_mismatch", "manifest", "The manifest's row_count and/or sha256 disagree with the payload.",
              (Param("what", MANIFEST_PART, "both", "row_count, sha256 or both"),)),
)}

# ----------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class ActiveFault:
    """One fault of a plan with every parameter set (defaults filled in, unknown names refused)."""

    name: str
    params: tuple[tuple[str, Any], ...] | Mapping[str, Any] = ()

    def __post_init__(self):
        if self.name not in FAULTS:
            raise ValueError(f"unknown fault {self.name!r} (known: {', '.join(FAULTS)})")
        spec = FAULTS[self.name]
        given = dict(self.params)
        for name, value in given.items():
            param = spec.param(name)
            if value is not None and not param.kind.accepts(value):
                raise ValueError(f"{self.name}:{name}={value!r}: expected {param.kind.expected}")
        # Normalised to every parameter in declaration order, so equal plans compare equal.
        object.__setattr__(self, "params", tuple((p.name, given.get(p.name, p.default)) for p in spec.params))

    @property
    def spec(self) -> FaultSpec:
        return FAULTS[self.name]

    def __getitem__(self, param: str) -> Any:
        return dict(self.params)[param]

    def get(self, param: str, default: Any = None) -> Any:
        return dict(self.params).get(param, default)

    @classmethod
    def parse(cls, token: str) -> ActiveFault:
        name, *assignments = (part.strip() for part in token.split(":"))
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r} in {token!r} (known: {', '.join(FAULTS)})")
        values = {}
        for assignment in assignments:
            key, sep, raw = assignment.partition("=")
            if not sep:
                raise ValueError(f"{assignment!r} in {token!r} is not parameter=value")
            param = FAULTS[name].param(key)
            if key in values:
                raise ValueError(f"parameter {key!r} given twice in {token!r}")
            try:
                values[key] = param.kind.parse(raw)
            except ValueError as exc:
                raise ValueError(f"{name}:{key}={raw!r} in {token!r}: expected {exc}") from None
        return cls(name, values)

    def to_text(self) -> str:
        defaults = {p.name: p.default for p in self.spec.params}
        changed = [f"{key}={value}" for key, value in self.params if value != defaults[key]]
        return ":".join([self.name, *changed])


@dataclass(frozen=True)
class FaultPlan:
    """The faults in effect for one answer. ``seed`` varies which rows are hit (None: 0)."""

    faults: tuple[ActiveFault, ...] = ()
    seed: int | None = None

    def __post_init__(self):
        names = [f.name for f in self.faults]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"fault {repeated[0]!r} given twice")
        order = list(FAULTS)
        object.__setattr__(self, "faults", tuple(sorted(self.faults, key=lambda f: order.index(f.name))))

    @classmethod
    def none(cls) -> FaultPlan:
        return cls()

    @classmethod
    def parse(cls, text: str | None) -> FaultPlan:
        """Parse ``"name:param=value:...,name,...,seed=N"``; "" or "none" is the empty plan."""
        if text is None or text.strip() in ("", "none"):
            return cls.none()
        faults, seed = [], None
        for token in (t.strip() for t in text.split(",")):
            if token.startswith("seed="):
                seed = _parse_seed(token)
            elif token:
                faults.append(ActiveFault.parse(token))
        return cls(tuple(faults), seed)

    def to_text(self) -> str:
        tokens = [f.to_text() for f in self.faults]
        if self.seed is not None:
            tokens.append(f"seed={self.seed}")
        return ",".join(tokens) or "none"

    @property
    def is_empty(self) -> bool:
        return not self.faults

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def get(self, name: str) -> ActiveFault | None:
        return next((f for f in self.faults if f.name == name), None)

    def at_level(self, level: str) -> tuple[ActiveFault, ...]:
        return tuple(f for f in self.faults if f.spec.level == level)

    def merged_with(self, more_specific: FaultPlan) -> FaultPlan:
        """Both plans' faults; where both name a fault, ``more_specific``'s parameters win."""
        faults = {f.name: f for f in self.faults} | {f.name: f for f in more_specific.faults}
        seed = more_specific.seed if more_specific.seed is not None else self.seed
        return FaultPlan(tuple(faults.values()), seed)

    def rng(self, fault: str, *scope: object) -> random.Random:
        return random.Random(":".join(str(part) for part in (self.seed or 0, fault, *scope)))


def _parse_seed(token: str) -> int:
    try:
        return int(token.removeprefix("seed="))
    except ValueError:
        raise ValueError(f"{token!r}: the seed must be an integer") from None


# ----------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class ScheduleKey:
    """Which answers an entry applies to: a day, an entity, both, or (neither) everything."""

    day: date | None = None
    entity: str | None = None

    @classmethod
    def parse(cls, text: str) -> ScheduleKey:
        if text == "*":
            return cls()
        day_text, _, entity = text.partition("/")
        if not entity and day_text in ENTITIES:
            return cls(entity=day_text)
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            raise ValueError(f"schedule key {text!r}: expected *, YYYY-MM-DD, an entity or "
                             f"YYYY-MM-DD/entity") from None
        if entity and entity not in ENTITIES:
            raise ValueError(f"schedule key {text!r}: unknown entity {entity!r} (known: {', '.join(ENTITIES)})")
        return cls(day, entity or None)

    def matches(self, entity: str, day: date) -> bool:
        return self.day in (None, day) and self.entity in (None, entity)

    @property
    def specificity(self) -> int:
        return (self.day is not None) * 2 + (self.entity is not None)

    def to_text(self) -> str:
        if self.day and self.entity:
            return f"{self.day.isoformat()}/{self.entity}"
        return self.day.isoformat() if self.day else (self.entity or "*")


@dataclass(frozen=True)
class FaultSchedule:
    """Fault plans per business day and/or entity, e.g. from the simulator's ``--faults`` option."""

    entries: tuple[tuple[ScheduleKey, FaultPlan], ...] = ()

    @classmethod
    def none(cls) -> FaultSchedule:
        return cls()

    @classmethod
    def parse(cls, text: str | None) -> FaultSchedule:
        """Parse ``"KEY=PLAN;KEY=PLAN"`` with KEY one of ``*``, ``YYYY-MM-DD``, ``entity``,
        ``YYYY-MM-DD/entity``, e.g. ``"2024-11-15=http_503:attempts=2;2024-11-16/dossiers=duplicate_rows"``."""
        entries: dict[ScheduleKey, FaultPlan] = {}
        for entry in (e.strip() for e in (text or "").split(";")):
            if not entry:
                continue
            key_text, sep, plan_text = entry.partition("=")
            if not sep:
                raise ValueError(f"schedule entry {entry!r} is not KEY=FAULTS")
            key = ScheduleKey.parse(key_text.strip())
            if key in entries:
                raise ValueError(f"schedule key {key_text.strip()!r} given twice")
            entries[key] = FaultPlan.parse(plan_text)
        return cls(tuple(entries.items()))

    def to_text(self) -> str:
        return ";".join(f"{key.to_text()}={plan.to_text()}" for key, plan in self.entries)

    def plan_for(self, entity: str, day: date, request_override: str | None = None) -> FaultPlan:
        """The plan of one answer. A request's override (even "" or "none") replaces the schedule;
        otherwise every matching entry applies, the more specific ones' parameters winning."""
        if request_override is not None:
            return FaultPlan.parse(request_override)
        matching = sorted((key.specificity, plan) for key, plan in self.entries if key.matches(entity, day))
        plan = FaultPlan.none()
        for _, more_specific in matching:
            plan = plan.merged_with(more_specific)
        return plan


# ----------------------------------------------------------------------------- HTTP faults


class AttemptCounter:
    """Counts the attempts of each request, across the server's threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: dict[Any, int] = {}

    def next_attempt(self, key: Any) -> int:
        """Record one more attempt of ``key`` and return its number, from 1."""
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._counts[key]

    def attempts(self, key: Any) -> int:
        with self._lock:
            return self._counts.get(key, 0)

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


@dataclass(frozen=True)
class HttpFault:
    """What the server does instead of (or before) answering normally."""

    faults: tuple[str, ...]  # names of the faults in effect, for logs
    status: int | None = None  # answer this status with ``error_body()`` instead of the payload
    headers: tuple[tuple[str, str], ...] = ()  # extra headers of that answer (Retry-After)
    delay_seconds: float = 0.0  # sleep this long before answering
    drop_after_fraction: float | None = None  # send headers and this share of the body, then close

    def bytes_before_drop(self, body_length: int) -> int | None:
        """How many body bytes to send before closing the connection (always fewer than all)."""
        if self.drop_after_fraction is None:
            return None
        return max(0, min(body_length - 1, int(body_length * self.drop_after_fraction)))

    def error_body(self) -> dict:
        return {"error": f"simulated fault: {', '.join(self.faults)}", "faults": list(self.faults)}


# The faults that hit only the first attempts of a request; "slow" hits every answer.
_FAILING_STATUS = {"http_429": 429, "http_500": 500, "http_503": 503}
_ATTEMPT_BOUND = ("http_429", "http_500", "http_503", "drop_connection", "timeout")


def http_fault_for(plan: FaultPlan, request_key: str, counter: AttemptCounter) -> HttpFault | None:
    """What to do with this attempt of the request ``request_key`` (e.g. "dossiers/2024-11-15/p3/s500").

    Attempt-bound faults take turns in registry order: with ``http_429:attempts=2,http_503``,
    attempts 1-2 get 429, attempts 3-4 get 503, attempt 5 is served. Attempts are counted per
    request key and per set of attempt-bound faults, so two plans never share a count.
    """
    bound = tuple(f for f in plan.faults if f.name in _ATTEMPT_BOUND)
    slow = plan.get("slow")
    delay = slow["seconds"] if slow else 0.0
    if bound:
        attempt = counter.next_attempt((request_key, ",".join(f.to_text() for f in bound)))
        failing = _fault_of_attempt(bound, attempt)
        if failing is not None:
            return _failure(failing, delay, slowed=slow is not None)
    return HttpFault(("slow",), delay_seconds=delay) if slow else None


def _fault_of_attempt(bound: tuple[ActiveFault, ...], attempt: int) -> ActiveFault | None:
    last_attempt = 0
    for fault in bound:
        last_attempt += fault["attempts"]
        if attempt <= last_attempt:
            return fault
    return None


def _failure(fault: ActiveFault, delay: float, slowed: bool) -> HttpFault:
    names = (fault.name, "slow") if slowed else (fault.name,)
    if fault.name in _FAILING_STATUS:
        retry_after = fault.get("retry_after")
        headers = (("Retry-After", str(retry_after)),) if retry_after is not None else ()
        return HttpFault(names, status=_FAILING_STATUS[fault.name], headers=headers, delay_seconds=delay)
    if fault.name == "timeout":
        return HttpFault(names, delay_seconds=delay + fault["seconds"])
    return HttpFault(names, delay_seconds=delay, drop_after_fraction=fault["fraction"])  # drop_connection


# ----------------------------------------------------------------------------- row faults

Rows = Iterator[dict]


def apply_row_faults(plan: FaultPlan, entity: Entity | str, day: date, rows: Iterable[Mapping[str, Any]]) -> Rows:
    """The day's rows of ``entity`` as the faulty portal sends them (streamed; input never modified).

    Apply it to the whole day before paging, so every page and the manifest see the same rows.
    """
    entity = get_entity(entity) if isinstance(entity, str) else entity
    stream: Rows = iter(rows)  # type: ignore[arg-type]
    for fault in plan.at_level("rows"):
        stream = _ROW_FAULTS[fault.name](fault, entity, day, plan.rng(fault.name, entity.name, day), stream)
    return stream


def _choose_rows(rows: Iterable[dict], rng: random.Random, rate: float,
                 eligible: Callable[[dict], bool] = lambda row: True) -> Iterator[tuple[dict, bool]]:
    """Pair each row with whether the fault hits it (eligible rows only, each with chance ``rate``).

    If the draw hits no row, the last eligible one is hit, so a fault that is switched on always
    shows, even on a small day. Until the first hit, rows after the latest eligible row are held back.
    """
    held: list[dict] = []  # the latest eligible row not hit and the rows after it, while none was hit
    hit_any = False
    for row in rows:
        if hit_any:
            yield row, eligible(row) and rng.random() < rate
        elif not eligible(row):
            if held:
                held.append(row)
            else:
                yield row, False
        else:
            yield from ((r, False) for r in held)
            held = []
            if rng.random() < rate:
                hit_any = True
                yield row, True
            else:
                held = [row]
    if held:
        yield held[0], True
        yield from ((r, False) for r in held[1:])


def _empty_day(fault: ActiveFault, entity: Entity, day: date, rng: random.Random, rows: Rows) -> Rows:
    return iter(())


def _duplicate_rows(fault: ActiveFault, entity: Entity, day: date, rng: random.Random, rows: Rows) -> Rows:
    for row, hit in _choose_rows(rows, rng, fault["rate"]):
        yield row
        if hit:
            yield copy.deepcopy(row)


def _update_before_create(fault: ActiveFault, entity: Entity, day: date, rng: random.Random, rows: Rows) -> Rows:
    # Only change feeds carry versions, and only a version timestamp tells versions apart.
    if not entity.change_feed or "NgayCapNhat" not in entity.fields:
        yield from rows
        return
    def has_version_moment(row: dict) -> bool:
        return _version_moment(entity, row) is not None

    for row, hit in _choose_rows(rows, rng, fault["rate"], has_version_moment):
        if hit:
            yield _later_version(entity, day, row, rng)
        yield row


def _version_moment(entity: Entity, row: Mapping[str, Any]) -> datetime | None:
    """When this version was recorded: NgayCapNhat, else the row's latest valid datetime."""
    moments = [_parse_portal_datetime(row.get(name)) for name in ("NgayCapNhat", *entity.datetime_fields)]
    if moments[0] is not None:
        return moments[0]
    return max((m for m in moments if m is not None), default=None)


def _later_version(entity: Entity, day: date, row: dict, rng: random.Random) -> dict:
    earlier = _version_moment(entity, row)
    later = earlier + timedelta(seconds=rng.randint(60, 3600))
    end_of_day = datetime.combine(day, time(23, 59, 59))
    if earlier < end_of_day < later:  # stay within the business day when there is room
        later = end_of_day
    version = copy.deepcopy(row)
    version["NgayCapNhat"] = later.strftime(PORTAL_DATETIME_FORMAT)
    for status in _status_fields(entity):
        version[status] = _next_code(entity.field(status).codes, row.get(status))
    return version


def _next_code(codes: Mapping, current: Any) -> Any:
    """The code after ``current`` in the list's order (unchanged at the end or off the list)."""
    if current not in codes:
        return current
    ordered = sorted(codes, key=str) if any(isinstance(c, str) for c in codes) else sorted(codes)
    after = ordered[ordered.index(current) + 1:]
    return after[0] if after else current


def _malformed_dates(fault: ActiveFault, entity: Entity, day: date, rng: random.Random, rows: Rows) -> Rows:
    def filled(row: dict) -> list[str]:
        return [name for name in entity.datetime_fields if row.get(name)]

    for row, hit in _choose_rows(rows, rng, fault["rate"], lambda row: bool(filled(row))):
        if hit:
            row = copy.deepcopy(row)
            name = rng.choice(filled(row))
            row[name] = _malformed_datetime(row[name], rng)
        yield row


def _malformed_datetime(value: str, rng: random.Random) -> str:
    """A date a careless system might write: real but in another layout, or impossible."""
    moment = _parse_portal_datetime(value) or datetime(2024, 11, 15, 8, 30)
    return rng.choice((
        moment.strftime("%d/%m/%Y"),  # 15/11/2024
        moment.strftime("%Y-%m-%d %H:%M:%S"),  # 2024-11-15 08:30:00
        f"{moment.year}-13-45 25:61",  # no such moment
    ))


def _malformed_codes(fault: ActiveFault, entity: Entity, day: date, rng: random.Random, rows: Rows) -> Rows:
    # The status has its own fault (unknown_status); fall back to it only when it is the only list.
    fields = [name for name in entity.code_lists if name not in _status_fields(entity)] or list(entity.code_lists)
    if not fields:
        yield from rows
        return
    for row, hit in _choose_rows(rows, rng, fault["rate"]):
        if hit:
            row = copy.deepcopy(row)
            name = rng.choice(fields)
            row[name] = _code_outside(entity.field(name).codes, rng)
        yield row


def _code_outside(codes: Mapping, rng: random.Random) -> Any:
    """A value not in ``codes``: a number past the list, a number spelled out, or a code's label."""
    numbers = [c for c in codes if isinstance(c, int)]
    candidates = [max(numbers, default=0) + rng.randint(1, 6), rng.choice(("hai", "ba", "mười")),
                  rng.choice(sorted(codes.values()))]
    return rng.choice([c for c in candidates if c not in codes])


def _unknown_status(fault: ActiveFault, entity: Entity, day: date, rng: random.Random, rows: Rows) -> Rows:
    statuses = _status_fields(entity)
    if not statuses:
        yield from rows
        return
    for row, hit in _choose_rows(rows, rng, fault["rate"]):
        if hit:
            row = copy.deepcopy(row)
            name = rng.choice(statuses)
            codes = entity.field(name).codes
            numbers = [c for c in codes if isinstance(c, int)]
            row[name] = rng.choice([c for c in (0, max(numbers, default=0) + 1) if c not in codes])
        yield row


def _status_fields(entity: Entity) -> list[str]:
    return [name for name in entity.code_lists if name.startswith("TrangThai")]


def _nfd_text(fault: ActiveFault, entity: Entity, day: date, rng: random.Random, rows: Rows) -> Rows:
    return (_nfd(row) for row in rows)


def _nfd(value: Any) -> Any:
    if isinstance(value, str):
        return unicodedata.normalize("NFD", value)
    if isinstance(value, list):
        return [_nfd(item) for item in value]
    if isinstance(value, dict):
        return {key: _nfd(item) for key, item in value.items()}
    return value


def _extra_column(fault: ActiveFault, entity: Entity, day: date, rng: random.Random, rows: Rows) -> Rows:
    if fault["name"] in entity.fields:
        raise ValueError(f"extra_column: {fault['name']} is a field of {entity.name}, not an extra one")
    return ({**row, fault["name"]: fault["value"]} for row in rows)


def _renamed_column(fault: ActiveFault, entity: Entity, day: date, rng: random.Random, rows: Rows) -> Rows:
    old = fault["field"] or _default_field_to_rename(entity)
    new = fault["to"] or _default_new_name(entity, old)
    # Rebuilt key by key so the renamed field keeps its place, as a renamed export column would.
    return ({(new if key == old else key): value for key, value in row.items()} for row in rows)


def _default_field_to_rename(entity: Entity) -> str:
    statuses = _status_fields(entity)
    return statuses[0] if statuses else next(name for name in entity.fields if name not in entity.key)


def _default_new_name(entity: Entity, old: str) -> str:
    if old.startswith("TrangThai") and "TrangThai" not in entity.fields:
        return "TrangThai"  # TrangThaiHoSo -> TrangThai, the portal's generic word
    return old[0].lower() + old[1:]  # a release switching to camelCase JSON


_ROW_FAULTS: dict[str, Callable[[ActiveFault, Entity, date, random.Random, Rows], Rows]] = {
    "empty_day": _empty_day,
    "update_before_create": _update_before_create,
    "malformed_dates": _malformed_dates,
    "malformed_codes": _malformed_codes,
    "unknown_status": _unknown_status,
    "nfd_text": _nfd_text,
    "duplicate_rows": _duplicate_rows,
    "extra_column": _extra_column,
    "renamed_column": _renamed_column,
}


def _parse_portal_datetime(value: Any) -> datetime | None:
    try:
        return datetime.strptime(value, PORTAL_DATETIME_FORMAT)
    except (TypeError, ValueError):
        return None


# ----------------------------------------------------------------------------- byte and manifest faults


def apply_byte_faults(plan: FaultPlan, body: bytes) -> bytes:
    """The encoded (UTF-8) body of a page or a whole-day file as the faulty portal sends it."""
    if "cp1258_text" in plan:
        body = encode_cp1258(body.decode("utf-8"))
    truncation = plan.get("truncated_file")
    if truncation is not None and body:
        # Strictly shorter, whatever the fraction, so the cut is always visible.
        body = body[:max(0, min(len(body) - 1, int(len(body) * truncation["fraction"])))]
    return body


# Vietnamese tone marks: Windows-1258 keeps them as separate combining characters.
_TONE_MARKS = frozenset("\u0300\u0301\u0303\u0309\u0323")


def encode_cp1258(text: str) -> bytes:
    """Encode as Vietnamese Windows-1258: base letters precomposed where the code page has them
    (â ă ê ô ơ ư đ), tone marks as combining characters; anything else it lacks becomes '?'.
    ``data.decode("cp1258")`` followed by NFC normalisation gives the original text back."""
    return "".join(_cp1258_form(char) for char in text).encode("cp1258", errors="replace")


@lru_cache(maxsize=4096)
def _cp1258_form(char: str) -> str:
    base, *marks = unicodedata.normalize("NFD", char)
    kept = []
    for mark in marks:
        composed = unicodedata.normalize("NFC", base + mark)
        if mark not in _TONE_MARKS and len(composed) == 1 and _in_cp1258(composed):
            base = composed  # e.g. e + circumflex -> ê, which the code page has
        else:
            kept.append(mark)
    return base + "".join(kept)


def _in_cp1258(char: str) -> bool:
    try:
        char.encode("cp1258")
    except UnicodeEncodeError:
        return False
    return True


def apply_manifest_faults(plan: FaultPlan, manifest: Mapping[str, Any]) -> dict:
    """The manifest as the faulty portal sends it (a new dict; the input is not modified)."""
    manifest = dict(manifest)
    mismatch = plan.get("manifest_mismatch")
    if mismatch is not None:
        if mismatch["what"] in ("row_count", "both"):
            manifest["row_count"] = manifest["row_count"] + 1
        if mismatch["what"] in ("sha256", "both"):
            manifest["sha256"] = hashlib.sha256(f"{manifest['sha256']}:mismatch".encode()).hexdigest()
    return manifest


# ----------------------------------------------------------------------------- documentation


def describe_faults() -> str:
    """The faults as a Markdown table (docs/simulator-faults.md carries it verbatim)."""
    lines = ["| Fault | Level | What it does | Parameters (default) |", "|---|---|---|---|"]
    for spec in FAULTS.values():
        params = "; ".join(f"`{p.name}` ({'unset' if p.default is None else p.default}): {p.help}"
                           for p in spec.params) or "none"
        lines.append(f"| `{spec.name}` | {spec.level} | {spec.description} | {params} |")
    return "\n".join(lines) + "\n"


__all__ = [
    "FAULTS", "LEVELS", "REQUEST_OVERRIDE_HEADER", "REQUEST_OVERRIDE_PARAM", "ActiveFault",
    "AttemptCounter", "FaultPlan", "FaultSchedule", "FaultSpec", "HttpFault", "Param", "ScheduleKey",
    "apply_byte_faults", "apply_manifest_faults", "apply_row_faults", "describe_faults", "encode_cp1258",
    "http_fault_for",
]
