"""The portal's CSV export, as officials download it: one whole day of one entity, streamed both ways.

The layout, which ``write_csv`` produces and ``read_csv`` expects:

* UTF-8 starting with a byte order mark (the portal adds it so that Excel shows Vietnamese text
  correctly); ``read_csv`` accepts the file with or without it.
* First row: the fields' Vietnamese labels (``Field.label_vi``, NFC) in the contract's field order.
  ``read_csv`` finds columns by label, so it accepts them in any order, but every label must be
  known and none may be missing or repeated.
* Comma-separated, ``\\r\\n`` line endings, quotes only where needed (the ``csv`` module's excel
  dialect). Text may contain commas, quotes and line breaks; those cells are quoted.
* Cells: datetimes as ``dd/mm/yyyy HH:MM:SS`` (portal local time, as the portal's screens show
  them) in place of the API's ``yyyyMMddHHmmss``; integers and 0/1 flags as plain digits; text as
  is; a missing value (None) as an empty cell.
* Arrays (the nested lists of a dossier) as one cell of compact JSON (UTF-8, no spaces): a JSON
  list of the nested records with the contract's item names as keys, in the contract's item
  order. Datetimes inside nested records are written ``dd/mm/yyyy HH:MM:SS`` too, so one date
  reads the same wherever it appears in the file. An empty list is ``[]``, a missing one an empty
  cell.

What the format cannot carry: an empty cell reads back as None, so an empty text ("") and a field
absent from the row both come back as None. Every other valid row (all the entity's fields
present, as the portal sends them) survives ``read_csv(write_csv(rows))`` unchanged.

``read_csv`` parses types only; whether a value is allowed (required fields, code lists, flags
being 0 or 1) is the row validation's business, which reports it per row instead of failing the
file.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, BinaryIO

from chiso.contract.model import Entity, Field

BOM = b"\xef\xbb\xbf"
CSV_DATETIME_FORMAT = "dd/mm/yyyy HH:MM:SS"
ROWS_PER_CHUNK = 1000
_READ_SIZE = 64 * 1024

_PORTAL_DATETIME = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})")
_CSV_DATETIME = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")
_INTEGER = re.compile(r"-?[0-9]+")  # int() alone would also take " 7", "+7", "1_000" and non-ASCII digits


class CsvFormatError(ValueError):
    """A CSV export that does not follow the layout; names the line (1 = header) and the column."""

    def __init__(self, line: int, message: str, column: str | None = None):
        where = f"line {line}" if column is None else f"line {line}, column {column}"
        super().__init__(f"{where}: {message}")
        self.line = line
        self.column = column


# ----------------------------------------------------------------------------- writing

def write_csv(entity: Entity, rows: Iterable[Mapping[str, Any]], *,
              rows_per_chunk: int = ROWS_PER_CHUNK) -> Iterator[bytes]:
    """Yield the CSV export of ``rows``: the BOM and header first, then one chunk per ``rows_per_chunk`` rows.

    Raises ValueError on a row that the contract cannot describe (unknown field, wrong type,
    malformed datetime): the writer never produces a file the reader would reject.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header_labels(entity))
    yield BOM + _drain(buffer)
    row_cells = _row_writer(entity)
    written = 0
    for row in rows:
        writer.writerow(row_cells(row))
        written += 1
        if written % rows_per_chunk == 0:
            yield _drain(buffer)
    if buffer.tell():
        yield _drain(buffer)


def header_labels(entity: Entity) -> list[str]:
    return [_nfc(f.label_vi) for f in entity.field_list]


def _drain(buffer: io.StringIO) -> bytes:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text.encode("utf-8")


def _row_writer(entity: Entity) -> Callable[[Mapping[str, Any]], list[str]]:
    """The function turning a row into its cells; each field's conversion is chosen once per file."""
    known = frozenset(entity.fields)
    converters = [(f.name, _cell_converter(f)) for f in entity.field_list]

    def row_cells(row: Mapping[str, Any]) -> list[str]:
        unknown = row.keys() - known
        if unknown:
            raise ValueError(f"{entity.name}: the row has fields outside the contract: {sorted(unknown)}")
        return ["" if (value := row.get(name)) is None else convert(value) for name, convert in converters]

    return row_cells


def _cell_converter(field: Field) -> Callable[[Any], str]:
    if field.type == "array":
        return lambda records: _array_cell(field, records)
    if field.type == "string":
        return lambda value: _scalar_to_csv(field, value, field.name)  # already text
    return lambda value: str(_scalar_to_csv(field, value, field.name))


def _scalar_to_csv(field: Field, value: Any, where: str) -> Any:
    """The CSV form of one non-null scalar; also used inside nested records' JSON, hence not always a str."""
    if field.type == "string":
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected text, got {value!r}")
        return value
    if field.type == "datetime":
        return _portal_to_csv_datetime(value, where)
    if field.type in ("integer", "flag"):
        if not _is_int(value):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        return value
    if not (_is_int(value) or isinstance(value, float)) or not math.isfinite(value):  # "number"
        raise ValueError(f"{where}: expected a finite number, got {value!r}")
    return value


def _array_cell(field: Field, records: Any) -> str:
    if not isinstance(records, list):
        raise ValueError(f"{field.name}: expected a list of records, got {records!r}")
    converted = [_nested_record_to_csv(field, index, record) for index, record in enumerate(records)]
    return json.dumps(converted, ensure_ascii=False, separators=(",", ":"))


def _nested_record_to_csv(field: Field, index: int, record: Any) -> dict:
    where = f"{field.name}[{index}]"
    if not isinstance(record, Mapping):
        raise ValueError(f"{where}: expected a record, got {record!r}")
    unknown = record.keys() - {item.name for item in field.items}
    if unknown:
        raise ValueError(f"{where}: fields outside the contract: {sorted(unknown)}")
    # Keys keep the contract's item order; an item absent from the record stays absent.
    return {item.name: (None if record[item.name] is None
                        else _scalar_to_csv(item, record[item.name], f"{where}.{item.name}"))
            for item in field.items if item.name in record}


def _portal_to_csv_datetime(value: Any, where: str) -> str:
    match = _PORTAL_DATETIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{where}: expected a portal datetime yyyyMMddHHmmss, got {value!r}")
    year, month, day, hour, minute, second = match.groups()
    try:
        _check_calendar(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise ValueError(f"{where}: {value!r} is not a valid datetime ({exc})") from None
    return f"{day}/{month}/{year} {hour}:{minute}:{second}"


# ----------------------------------------------------------------------------- reading

def read_csv(entity: Entity, source: Iterable[bytes] | BinaryIO | bytes) -> Iterator[dict]:
    """Yield the rows of a CSV export, given as byte chunks, a binary file or (small files) bytes.

    Rows have the portal's field names as keys, in contract order, with the API's types
    (datetimes as yyyyMMddHHmmss, integers as int, arrays as lists). Raises CsvFormatError, naming
    the line and the column, on a header or cell that does not follow the layout.
    """
    reader = csv.reader(_text_lines(source), strict=True)
    columns = _header_fields(entity, _next_record(reader))
    while True:
        record = _next_record(reader)
        if record is None:
            return
        line, cells = record
        if cells:  # a blank line carries no row (every entity has several columns)
            yield _parse_row(entity, columns, line, cells)


def _text_lines(source: Iterable[bytes] | BinaryIO | bytes) -> io.TextIOWrapper:
    if isinstance(source, (bytes, bytearray)):
        chunks = [source]  # a whole small file given at once
    elif hasattr(source, "read"):
        chunks = iter(lambda: source.read(_READ_SIZE), b"")
    else:
        chunks = source
    # utf-8-sig drops a leading BOM if there is one; newline="" leaves line breaks inside quoted
    # cells to the csv module, as its documentation requires.
    return io.TextIOWrapper(io.BufferedReader(_ChunkStream(chunks)), encoding="utf-8-sig", newline="")


class _ChunkStream(io.RawIOBase):
    """An iterable of byte chunks seen as a readable binary stream, so that io can decode it lazily."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _next_record(reader) -> tuple[int, list[str]] | None:
    """The next record and the file line it starts on, or None at the end of the file."""
    line = reader.line_num + 1
    try:
        return line, next(reader)
    except StopIteration:
        return None
    except csv.Error as exc:
        raise CsvFormatError(line, f"malformed CSV: {exc}") from None
    except UnicodeDecodeError as exc:
        raise CsvFormatError(line, f"not UTF-8 text: {exc}") from None


def _header_fields(entity: Entity, record: tuple[int, list[str]] | None) -> list[Field]:
    if record is None:
        raise CsvFormatError(1, f"the file is empty; expected the {entity.name} header")
    _, labels = record
    by_label = {_nfc(f.label_vi): f for f in entity.field_list}
    labels = [_nfc(label) for label in labels]  # a tool may have saved the labels decomposed (NFD)
    unknown = [label for label in labels if label not in by_label]
    if unknown:
        raise CsvFormatError(1, f"unknown column(s) in the {entity.name} header: {_quoted(unknown)}")
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise CsvFormatError(1, f"repeated column(s) in the {entity.name} header: {_quoted(repeated)}")
    missing = [label for label in by_label if label not in labels]
    if missing:
        raise CsvFormatError(1, f"missing column(s) in the {entity.name} header: {_quoted(missing)}")
    return [by_label[label] for label in labels]


def _parse_row(entity: Entity, columns: list[Field], line: int, cells: list[str]) -> dict:
    if len(cells) != len(columns):
        raise CsvFormatError(line, f"expected {len(columns)} cells as in the header, found {len(cells)}")
    parsed = {}
    for field, cell in zip(columns, cells):
        try:
            parsed[field.name] = _parse_cell(field, cell)
        except ValueError as exc:
            raise CsvFormatError(line, str(exc), column=f'"{field.label_vi}" ({field.name})') from None
    return {name: parsed[name] for name in entity.fields}


def _parse_cell(field: Field, cell: str) -> Any:
    if cell == "":
        return None
    if field.type == "array":
        return _parse_array(field, cell)
    if field.type == "datetime":
        return _csv_to_portal_datetime(cell)
    if field.type in ("integer", "flag"):
        if not _INTEGER.fullmatch(cell):
            raise ValueError(f"{cell!r} is not an integer")
        return int(cell)
    if field.type == "number":
        return _parse_number(cell)
    return cell


def _parse_number(cell: str) -> int | float:
    if _INTEGER.fullmatch(cell):
        return int(cell)
    try:
        number = float(cell)
    except ValueError:
        raise ValueError(f"{cell!r} is not a number") from None
    if not math.isfinite(number) or cell.strip() != cell:
        raise ValueError(f"{cell!r} is not a number")
    return number


def _csv_to_portal_datetime(cell: str) -> str:
    match = _CSV_DATETIME.fullmatch(cell)
    if match is None:
        raise ValueError(f"{cell!r} is not a datetime {CSV_DATETIME_FORMAT}")
    day, month, year, hour, minute, second = match.groups()
    try:
        _check_calendar(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise ValueError(f"{cell!r} is not a valid datetime ({exc})") from None
    return f"{year}{month}{day}{hour}{minute}{second}"


def _parse_array(field: Field, cell: str) -> list[dict]:
    try:
        records = json.loads(cell)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not a JSON list: {exc}") from None
    if not isinstance(records, list):
        raise ValueError(f"expected a JSON list, found {type(records).__name__}")
    return [_parse_nested_record(field, index, record) for index, record in enumerate(records)]


def _parse_nested_record(field: Field, index: int, record: Any) -> dict:
    where = f"[{index}]"
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a record, got {record!r}")
    items = {item.name: item for item in field.items}
    unknown = record.keys() - items.keys()
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
    return {name: _parse_nested_value(items[name], value, f"{where}.{name}") for name, value in record.items()}


def _parse_nested_value(item: Field, value: Any, where: str) -> Any:
    if value is None:
        return None
    if item.type != "datetime":
        return _scalar_to_csv(item, value, where)  # JSON already gives the API's type; only check it
    try:
        return _csv_to_portal_datetime(value if isinstance(value, str) else repr(value))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


# ----------------------------------------------------------------------------- shared

def _check_calendar(year: str, month: str, day: str, hour: str, minute: str, second: str) -> None:
    datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not the flag 1


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _quoted(labels: Iterable[str]) -> str:
    return ", ".join(f'"{label}"' for label in labels)
