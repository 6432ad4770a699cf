"""Exactly-once loads of a landed extract into the raw layer.

One transaction per (entity, business date): the previous load of that day is superseded, the new
rows are COPYed in, bad rows go to quarantine, and the ledger records the accounting. Loading the
same checksum again is a no-op; a crash leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
import math
import re
import tempfile
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path

import msgspec
import psycopg
from msgspec import UNSET

from chiso.core import settings
from chiso.contract import get_entity
from chiso.contract.canonical import UndecodableRow, canonical_line
from chiso.ingest import typed_decode
from chiso.ingest.landing import OverlongLine, RawPage, iter_raw_pages, nfc, read_manifest
from chiso.ingest.pseudonymise import Pseudonymiser
from chiso.ingest.sources import NATIONAL
from chiso.ingest.validate import check_columns, row_problems, surely_valid
from chiso.core.warehouse import RAW_SCHEMA, ensure_raw_partitions

log = logging.getLogger(__name__)


class LoadAccountingError(RuntimeError):
    pass


# json.dumps(record, ensure_ascii=False), without building an encoder for every row (a record decoded
# from JSON cannot refer to itself, so there is no cycle to look for).
_encode_record = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode
# Four times quicker, for records that ``surely_valid`` vouched for: only strings, integers, finite
# floats, booleans, nulls, lists and objects, which both encoders write as the same JSON value (so
# the same jsonb; msgspec leaves out the spaces). json.dumps would write NaN where msgspec writes null.
_encode_valid_record = typed_decode.encoder().encode
# COPY's text format: a backslash starts an escape, tab and newline end a field and a row. JSON text
# never holds a raw tab, newline or other control character, so a record needs at most its backslashes
# doubled; the other columns are escaped in full (page file names come from a directory listing).
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r",
                               "\b": "\\b", "\f": "\\f", "\v": "\\v"})


def _copy_field(text: str) -> str:
    return text.translate(_COPY_ESCAPES)


# What jsonb (or the UTF-8 the COPY is sent in) cannot take, as it appears in a record's JSON text: a
# NUL escape, a lone surrogate, a non-finite number (json.dumps writes NaN and Infinity). A match is
# only a suspicion (the text of a string may spell "NaN"); ``_unstorable`` looks at the values.
_SUSPECT = re.compile(r"\\u0000|[\ud800-\udfff]|NaN|Infinity")


def _unstorable(value, where: str = "") -> str | None:
    """Why the warehouse cannot store ``value`` (naming the field, never the value), or None."""
    if isinstance(value, str):
        if "\x00" in value:
            return f"{where or 'row'}: a text holding a NUL character, which the warehouse cannot store"
        if _LONE_SURROGATE.search(value):
            return f"{where or 'row'}: a text holding a lone UTF-16 surrogate, which is not Unicode text"
    elif isinstance(value, float) and not math.isfinite(value):
        return f"{where or 'row'}: a non-finite number, which JSON cannot hold"
    elif isinstance(value, dict):
        for key, item in value.items():
            if _unstorable(key) is not None:
                return f"{where or 'row'}: a field name holding a NUL character or a lone surrogate"
            problem = _unstorable(item, f"{where}.{key}" if where else key)
            if problem:
                return problem
    elif isinstance(value, list):
        for number, item in enumerate(value):
            problem = _unstorable(item, f"{where}[{number}]")
            if problem:
                return problem
    return None


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")


def _printable(value):
    """``value`` with NUL characters and lone surrogates replaced by U+FFFD, in keys and texts alike."""
    if isinstance(value, str):
        return _NOT_TEXT.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_printable(key): _printable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_printable(item) for item in value]
    return value


class _RowWriter:
    """Turns pages into COPY text for the raw table, and bad rows into quarantine rows, numbering
    the rows of the day in order. Clean pages take the fast lane (``typed_decode``: decoded, checked
    and re-encoded in C); a page it refuses, or that needs NFC, takes the slow lane row by row, which
    quarantines and explains."""

    def __init__(self, entity, day: date, load_id: int, pseudonymiser: Pseudonymiser, allow_new_columns: bool,
                 fast_lane: bool, landed: Path | None = None, source: str = NATIONAL):
        self.entity, self.day, self.load_id, self.landed = entity, day, load_id, landed
        self.source = source
        self.pseudonymiser, self.allow_new_columns = pseudonymiser, allow_new_columns
        self.known = set(entity.fields)
        self.personal = entity.personal_fields
        self.typed = typed_decode.typed_decoders(entity.name) if fast_lane else None
        # The fast lane's pages are NFC (else they would not be there): pseudonym functions that skip
        # the normal-form check, one per personal column, with the column's Struct attribute.
        self.typed_personal = [] if self.typed is None else [
            (self.typed.attribute[field], field, pseudonymiser.for_nfc_text(field))
            for field in self.personal if field in self.typed.attribute]
        self.line_number = self.loaded = 0
        # Quarantined rows wait for the raw COPY to end in an owner-only temporary file, as COPY text (they
        # hold pseudonyms only): a day the portal spoilt row by row must not pile up in memory.
        self.quarantine_spool = tempfile.TemporaryFile()
        self.quarantined = 0
        self.columns_seen: set[str] = set()
        self.all_known = True  # columns_seen <= known

    def page(self, page: RawPage) -> bytes | str:
        already_nfc = page.already_nfc()
        records = self._typed_records(page) if already_nfc and self.typed is not None else None
        if records is not None:
            return self._fast_lane(page.source_file, records)
        return self._slow_lane(page.source_file, page.rows(), already_nfc)

    def _typed_records(self, page: RawPage) -> list | None:
        """The page's rows as contract-checked Structs, or None if any row is in doubt."""
        try:
            if page.lines is None:
                return self.typed.page.decode(page.text).items
            return [self.typed.row.decode(text) for text, _ in page.lines]
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            return None

    def _fast_lane(self, source_file: str, records: list) -> bytes:
        prefix = f"{self.load_id}\t{self.day.isoformat()}\t{_copy_field(source_file)}\t".encode()
        personal, encode = self.typed_personal, _encode_valid_record
        number = self.line_number
        lines = []
        for record in records:
            number += 1
            for attribute, field, pseudonym in personal:
                value = getattr(record, attribute)
                if type(value) is str:
                    setattr(record, attribute, pseudonym(value) if value else None)
                elif value is not None and value is not UNSET:  # absent stays absent, as in the slow lane
                    setattr(record, attribute, self.pseudonymiser.pseudonym(field, value))
            text = encode(record)
            if b"\\" in text:
                text = text.replace(b"\\", b"\\\\")
            lines.append(b"%s%d\t%s\n" % (prefix, number, text))
        self.line_number = number
        self.loaded += len(records)
        return b"".join(lines)

    def _slow_lane(self, source_file: str, page_rows: list, already_nfc: bool) -> str:
        entity, day, load_id = self.entity, self.day, self.load_id
        known = self.known
        # Rows go to COPY a page at a time, as lines of its text format: the same bytes write_row
        # would send, without its per-value adaptation.
        prefix = f"{load_id}\t{day.isoformat()}\t{_copy_field(source_file)}\t"
        lines = []
        for row in page_rows:
            self.line_number += 1
            line_number = self.line_number
            if not already_nfc:
                row = nfc(row)  # NFD, Windows-1258 and clean UTF-8 inputs load to the same bytes
            if isinstance(row, OverlongLine):
                self._quarantine_by_reference(source_file, line_number, f"the row cannot be decoded: {row.problem}",
                                              row)
                continue
            if isinstance(row, UndecodableRow):
                self._quarantine_by_reference(source_file, line_number, f"the row cannot be decoded: {row.problem}",
                                              row)
                continue
            if not isinstance(row, dict):
                self._quarantine_by_reference(source_file, line_number,
                                              f"a row must be a JSON object, got {_json_type(row)}", row)
                continue
            if not self.columns_seen.issuperset(row):
                self.columns_seen |= row.keys()
                self.all_known = self.columns_seen <= known
                if not self.allow_new_columns:
                    check_columns(entity, self.columns_seen, f"line {line_number} of {day}, in "
                                                             f"{self.landed / source_file if self.landed else source_file}")
                elif self.columns_seen - known:
                    log.warning("%s %s: keeping columns the contract does not know: %s", entity.name,
                                day, ", ".join(sorted(self.columns_seen - known)))
            # Checked without the columns the contract does not know (kept only when allowed).
            checked = row if self.all_known or known.issuperset(row) else \
                {k: v for k, v in row.items() if k in known}
            sure = surely_valid(entity, checked)
            problems = None if sure else row_problems(entity, checked)
            # Quarantined rows are pseudonymised too: personal data never enters in clear.
            record = self.pseudonymiser.apply(row, self.personal)
            if problems:
                self._quarantine(source_file, line_number, "; ".join(problems), row)
                continue
            text = None
            if sure and checked is row:  # (columns kept unchecked could hold anything)
                try:
                    text = _encode_valid_record(record).decode()
                except (UnicodeError, msgspec.MsgspecError, TypeError, ValueError, OverflowError):
                    pass  # e.g. a lone surrogate: json.dumps below, and the check after it
            if text is None:
                text = _encode_record(record)
            if _SUSPECT.search(text):  # valid by the contract, yet jsonb or UTF-8 may refuse it
                problem = _unstorable(record)
                if problem:
                    self._quarantine(source_file, line_number, problem, row)
                    continue
            if "\\" in text:
                text = text.replace("\\", "\\\\")
            lines.append(f"{prefix}{line_number}\t{text}\n")
            self.loaded += 1
        return "".join(lines)


    def _quarantine(self, source_file: str, line_number: int, reason: str, row: dict) -> None:
        """A row that is an object: kept with its personal fields pseudonymised wherever they are."""
        record = self.pseudonymiser.apply_everywhere(row, self.personal)
        text = canonical_line(record).decode().rstrip("\n")
        if _SUSPECT.search(text):  # kept as text jsonb can read: NULs and lone surrogates become U+FFFD
            text = canonical_line(_printable(record)).decode().rstrip("\n")
        self._spool(source_file, line_number, reason, text)

    def _quarantine_by_reference(self, source_file: str, line_number: int, reason: str, row) -> None:
        """A row that is not an object, or not JSON: no field says what in it is personal (a bare
        string may be a name), so its text is not kept. The quarantine holds where it is in the landed
        extract (owner-only) and a keyed hash of its canonical line, which tells two such rows apart
        and can be checked against the landed file by whoever holds the key. A line too long to hold
        (``OverlongLine``) was only ever hashed: its reference has its size and the HMAC of its SHA-256."""
        reference = {"kept": "reference", "landed": str(self.landed) if self.landed else None,
                     "source_file": source_file, "line_number": line_number}
        if isinstance(row, OverlongLine):
            reference.update(bytes=row.size, hmac_of_sha256=self.pseudonymiser.digest(row.sha256))
        else:
            reference["hmac_sha256"] = self.pseudonymiser.digest(canonical_line(row))
        self._spool(source_file, line_number, reason, json.dumps(reference, ensure_ascii=False))

    def _spool(self, source_file: str, line_number: int, reason: str, text: str) -> None:
        self.quarantine_spool.write(
            f"{self.load_id}\t{_copy_field(self.entity.name)}\t{_copy_field(self.source)}\t{self.day.isoformat()}\t"
            f"{_copy_field(source_file)}\t"
            f"{line_number}\t{_copy_field(reason)}\t{_copy_field(text)}\n".encode())
        self.quarantined += 1


def _json_type(value) -> str:
    for kind, name in ((bool, "a boolean"), (str, "a string"), (int, "a number"), (float, "a number"),
                       (list, "an array")):
        if isinstance(value, kind):
            return name
    return "null" if value is None else type(value).__name__


@dataclass(frozen=True)
class LoadResult:
    entity: str
    business_date: str
    load_id: int
    checksum: str
    rows_in_manifest: int
    rows_loaded: int
    rows_quarantined: int
    skipped: bool  # the same extract was already loaded, or a newer one was (stale)
    stale: bool = False  # older than the extract loaded (the portal's generated_at): recorded, not applied
    source: str = NATIONAL  # the slice (chiso.ingest.sources)

    def as_dict(self) -> dict:
        return asdict(self)


def generated_at_of(manifest: dict, where) -> datetime | None:
    """When the portal generated the extract (the manifest's optional ``generated_at``, ISO 8601 with
    its offset), or None if it does not say."""
    value = manifest.get("generated_at")
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise LoadAccountingError(f"{where}: the manifest's generated_at is not an ISO 8601 time with its offset")
    return moment


def _older(generated_at: datetime | None, checksum: str, current_generated_at: datetime | None,
           current_checksum: str) -> bool:
    """Whether an extract is older than the one loaded: by the portal's generation times when both say,
    then by checksum, so that whichever order loads finish in, the same extract ends up loaded. An
    extract that does not say when it was generated is not older (the later load wins, as it always has)."""
    if generated_at is None or current_generated_at is None:
        return False
    return (generated_at, checksum) < (current_generated_at, current_checksum)


def _record_stale(conn, entity: str, day: date, checksum: str, landed: Path, manifest: dict,
                  generated_at: datetime, current: tuple, source: str) -> LoadResult:
    """Record that an older extract arrived after a newer one was loaded, unless the ledger already has
    it (stale, or loaded once and superseded since); apply nothing."""
    recorded = conn.execute(
        f"select load_id from {RAW_SCHEMA}.load_ledger where entity = %s and source = %s and business_date = %s "
        f"and checksum = %s and status in ('stale', 'superseded') order by load_id desc limit 1",
        (entity, source, day, checksum)).fetchone()
    if recorded is None:
        recorded = conn.execute(
            f"insert into {RAW_SCHEMA}.load_ledger (entity, source, business_date, checksum, source_path, "
            f"rows_in_manifest, rows_loaded, rows_quarantined, status, generated_at, finished_at) "
            f"values (%s, %s, %s, %s, %s, %s, 0, 0, 'stale', %s, now()) returning load_id",
            (entity, source, day, checksum, str(landed), manifest["row_count"], generated_at)).fetchone()
    log.warning("%s %s: extract %s generated at %s is older than the loaded one (load %s, %s generated at %s): "
                "recorded as stale (load %s), not applied", entity, day, checksum[:16], generated_at.isoformat(),
                current[0], current[1][:16], current[6].isoformat(), recorded[0])
    return LoadResult(entity, day.isoformat(), recorded[0], checksum, manifest["row_count"], 0, 0, skipped=True,
                      stale=True, source=source)


def _delete_rows_of(conn, entity, day: date, load_id: int) -> None:
    """The raw and quarantined rows of one superseded load (its slice only; the day's business_date
    index finds them within the month's partition)."""
    conn.execute(f"delete from {RAW_SCHEMA}.{entity.raw_table} where business_date = %s and load_id = %s",
                 (day, load_id))
    conn.execute(f"delete from {RAW_SCHEMA}.quarantine where entity = %s and business_date = %s and load_id = %s",
                 (entity.name, day, load_id))


def _retire_other_slices(conn, entity, day: date, sources: tuple[str, ...]) -> None:
    """Supersede the day's current loads of slices no longer configured, rows and all."""
    retired = conn.execute(
        f"update {RAW_SCHEMA}.load_ledger set status = 'superseded' where entity = %s and business_date = %s "
        f"and status = 'loaded' and source <> all(%s) returning load_id, source",
        (entity.name, day, list(sources))).fetchall()
    for load_id, old_source in retired:
        _delete_rows_of(conn, entity, day, load_id)
        log.warning("%s %s: the current load %s of source %s is superseded: the day now comes as %s",
                    entity.name, day, load_id, old_source, ", ".join(sources))


def load_extract(conn: psycopg.Connection, entity_name: str, day: date, landed: Path,
                 pseudonymiser: Pseudonymiser, allow_new_columns: bool | None = None, source: str = NATIONAL,
                 sources: tuple[str, ...] | None = None) -> LoadResult:
    """Load a landed extract: the day's ``source`` slice of the entity (chiso.ingest.sources), exactly
    once; the other slices' loads are not touched. Columns the contract does not know stop the load,
    naming them, unless ``allow_new_columns`` (default: CHISO_ALLOW_NEW_COLUMNS) keeps them in the raw
    record.

    ``sources``, when given, are every slice the day of this entity now comes in: a current load of
    another slice (the day was loaded whole before CHISO_PORTAL_SOURCES sliced it, or the other way
    round) is superseded and its rows deleted, so that no row is counted twice."""
    entity = get_entity(entity_name)
    if allow_new_columns is None:
        allow_new_columns = settings.get("CHISO_ALLOW_NEW_COLUMNS") == "true"
    manifest = read_manifest(landed)
    checksum = manifest["sha256"]
    generated_at = generated_at_of(manifest, landed)
    # The day's month partitions, committed before the load's transaction (creating one locks the
    # ledger against other loads' inserts; see ensure_raw_partitions). Usually they exist already
    # (chiso_housekeeping creates the next month's ahead) and this costs one catalog look-up.
    ensure_raw_partitions(conn, [entity.raw_table, "quarantine"], day)
    with conn.transaction():
        # Two runs of the same day must not interleave their delete/insert.
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"load:{entity.name}:{source}:{day}",))
        if sources is not None:
            _retire_other_slices(conn, entity, day, sources)
        current = conn.execute(
            f"select load_id, checksum, rows_in_manifest, rows_loaded, rows_quarantined, pseudonym_key_id, "
            f"generated_at from {RAW_SCHEMA}.load_ledger "
            f"where entity = %s and source = %s and business_date = %s and status = 'loaded'",
            (entity.name, source, day),
        ).fetchone()
        if current and current[1] != checksum and _older(generated_at, checksum, current[6], current[1]):
            return _record_stale(conn, entity.name, day, checksum, landed, manifest, generated_at, current, source)
        # The same extract pseudonymised with the same key (or by a load from before key ids were kept) is
        # already there; under a new key it is loaded again, so that a day never mixes two keys' pseudonyms.
        if current and current[1] == checksum and current[5] in (None, pseudonymiser.key_id):
            log.info("%s %s with checksum %s is already loaded (load %s): nothing to do",
                     entity.name, day, checksum[:16], current[0])
            return LoadResult(entity.name, day.isoformat(), current[0], checksum, current[2], current[3],
                              current[4], skipped=True, source=source)
        if current:
            # The ledger first, then the raw rows: the order a partition's creator locks them in.
            conn.execute(f"update {RAW_SCHEMA}.load_ledger set status = 'superseded' where load_id = %s",
                         (current[0],))
            _delete_rows_of(conn, entity, day, current[0])
        (load_id,) = conn.execute(
            f"insert into {RAW_SCHEMA}.load_ledger (entity, source, business_date, checksum, source_path, "
            f"rows_in_manifest, status, pseudonym_key_id, generated_at) "
            f"values (%s, %s, %s, %s, %s, %s, 'loading', %s, %s) returning load_id",
            (entity.name, source, day, checksum, str(landed), manifest["row_count"], pseudonymiser.key_id,
             generated_at),
        ).fetchone()

        rows = _RowWriter(entity, day, load_id, pseudonymiser, allow_new_columns,
                          fast_lane=conn.info.encoding == "utf-8", landed=landed, source=source)
        copy_sql = (f"copy {RAW_SCHEMA}.{entity.raw_table} "
                    f"(load_id, business_date, source_file, line_number, record) from stdin")
        with rows.quarantine_spool as spool:
            with conn.cursor().copy(copy_sql) as copy:
                for page in iter_raw_pages(landed):
                    chunk = rows.page(page)
                    if chunk:
                        copy.write(chunk)
            loaded, quarantined = rows.loaded, rows.quarantined
            if quarantined:
                spool.seek(0)
                with conn.cursor().copy(
                    f"copy {RAW_SCHEMA}.quarantine (load_id, entity, source, business_date, source_file, line_number, "
                    f"reason, original_text) from stdin"
                ) as copy:
                    while chunk := spool.read(1 << 20):
                        copy.write(chunk)
        if loaded + quarantined != manifest["row_count"]:
            raise LoadAccountingError(
                f"{entity.name} {day}: manifest has {manifest['row_count']} rows but {loaded} were loaded "
                f"and {quarantined} quarantined"
            )
        conn.execute(
            f"update {RAW_SCHEMA}.load_ledger set rows_loaded = %s, rows_quarantined = %s, status = 'loaded', "
            f"finished_at = now() where load_id = %s",
            (loaded, quarantined, load_id),
        )
    log.info("loaded %s %s%s: %d rows, %d quarantined (load %s)", entity.name, day,
             "" if source == NATIONAL else f" ({source})", loaded, quarantined, load_id)
    return LoadResult(entity.name, day.isoformat(), load_id, checksum, manifest["row_count"], loaded,
                      quarantined, skipped=False, source=source)
