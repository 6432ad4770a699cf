"""The immutable landing zone.

    <root>/portal/<entity>/business_date=<YYYY-MM-DD>/sha256=<first 16 hex>/{manifest.json,page-*.json}
    <root>/portal/<entity>/tinh=<code>/business_date=<YYYY-MM-DD>/sha256=<first 16 hex>/...   (a province's slice)

or, when the day was downloaded as one whole-day file (CHISO_PORTAL_TRANSFER=files, see docs/ingest.md),
``{manifest.json, file-manifest.json, day.ndjson.gz}``. Either way the directory is named by the
checksum of the day's rows, which the pages and the file share, so one day lands in one place.

A landed directory is never modified: a corrected extract for the same day has another checksum and
so lands beside the first. Files carry applicants' personal data: owner-only permissions.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import unicodedata
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from chiso.core import settings
from chiso.contract import canonical_line
from chiso.contract.canonical import UndecodableRow

SOURCE = "portal"
FILE_MODE = 0o600
DIR_MODE = 0o700


class LandingError(RuntimeError):
    pass


def _entity_dir(entity: str, source: str) -> Path:
    """``portal/<entity>``, with a ``tinh=<code>`` folder for a province's slice (chiso.ingest.sources):
    two slices of the same day (two empty ones, say) share a checksum, never a directory."""
    from chiso.ingest.sources import NATIONAL

    return Path(SOURCE) / entity if source == NATIONAL else Path(SOURCE) / entity / f"tinh={source}"


def _day_dir(root: Path, entity: str, day: date, source: str) -> Path:
    return root / _entity_dir(entity, source) / f"business_date={day.isoformat()}"


def landed_dir(root: Path, entity: str, day: date, sha256: str, source: str = "national") -> Path:
    return _day_dir(root, entity, day, source) / f"sha256={sha256[:16]}"


def incoming_dir(root: Path, entity: str, day: date, sha256: str, source: str = "national") -> Path:
    return root / "_incoming" / _entity_dir(entity, source) / f"business_date={day.isoformat()}" / \
        f"sha256={sha256[:16]}"


def write_file_once(path: Path, data: bytes) -> None:
    """Write atomically (temp file + rename) with owner-only permissions."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    tmp = path.with_suffix(path.suffix + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True)
class PageRow:
    source_file: str  # page file name, relative to the landed directory
    line_number: int  # 1-based position of the row in the whole day's extract
    row: dict


def read_manifest(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text(encoding="utf-8"))


UTF8_BOM = b"\xef\xbb\xbf"


def decode_page(data: bytes, source: str) -> dict:
    """A page as the portal sent it: UTF-8 (a BOM is dropped), or Windows-1258, which some provincial
    systems still emit; anything else is refused with the file named."""
    return _parse_page(_page_text(data, source), source)


def _page_text(data: bytes, source: str) -> str:
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1258", errors="strict")
        except UnicodeDecodeError as exc:
            raise LandingError(f"{source} is neither UTF-8 nor Windows-1258 text: {exc}") from exc


def _parse_page(text: str, source: str) -> dict:
    """The page as a dict. A page that ``json.loads`` refuses whole (a row nested too deep, an integer
    too long, a row that is not JSON) is split into its rows, so that only those rows become
    ``UndecodableRow``s and the rest of the page is kept; a page that cannot be split is refused."""
    try:
        page = json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError) as exc:
        page = _split_page(text, source, exc)
    if not isinstance(page, dict) or not isinstance(page.get("items"), list):
        raise LandingError(f"{source} is not a page of the portal's API (no list of items)")
    if any(type(row) in (dict, list) and _too_deep(row) for row in page["items"]):
        page = _split_page(text, source, None)  # the deep rows, by their text, as UndecodableRows
    return page


def _too_deep(value) -> bool:
    """Whether a decoded row nests more than MAX_DEPTH arrays and objects (the row itself is one): the
    Python that checks, normalises and pseudonymises rows recurses, and would fail on it."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        for child in (item.values() if type(item) is dict else item):
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))
    return False


MAX_DEPTH = 64  # arrays and objects inside a row; the contract needs 3
# A JSON string (escapes and all), or one of the characters that give a page its structure.
_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},:]', re.DOTALL)


def _split_page(text: str, source: str, cause: Exception) -> dict:
    """A page whose rows are decoded one by one: ``{"items": [...]}`` plus its other top-level keys.

    The text is scanned for its strings and brackets only (no recursion, whatever the nesting), the
    items array found among the top-level keys and cut into each row's text."""
    refused = LandingError(f"{source} is not a JSON page (truncated, or not JSON)"
                           + (f": {type(cause).__name__}: {str(cause)[:200]}" if cause else ""))
    depth, key, expect_key = 0, None, False
    items_start = items_end = None
    item_bounds: list[tuple[int, int, int]] = []  # (start, end, deepest level) of each row's text
    start, deepest = None, 0
    for match in _STRUCTURE.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth == 1:
                expect_key = token == "{"
            elif depth == 2 and key == "items" and token == "[" and items_start is None:
                items_start, start, deepest = match.end(), match.end(), 0
            elif items_start is not None and items_end is None:
                deepest = max(deepest, depth - 2)
        elif token in "]}":
            if items_start is not None and items_end is None and depth == 2:
                items_end = match.start()
                if text[start:items_end].strip():
                    item_bounds.append((start, items_end, deepest))
            depth -= 1
            if depth < 0:
                raise refused
        elif token == ",":
            if depth == 1:
                expect_key, key = True, None
            elif depth == 2 and items_start is not None and items_end is None:
                item_bounds.append((start, match.start(), deepest))
                start, deepest = match.end(), 0
        elif token == ":":
            expect_key = False
        elif depth == 1 and expect_key:  # a top-level key
            try:
                key = json.loads(token)
            except json.JSONDecodeError:
                raise refused from cause
    if depth != 0 or items_start is None or items_end is None:
        raise refused from cause
    try:
        page = json.loads(text[:items_start] + text[items_end:])  # the page without its rows
    except (json.JSONDecodeError, RecursionError, ValueError):
        raise refused from cause
    page["items"] = [_parse_row(text[a:b], deepest) for a, b, deepest in item_bounds]
    return page


def _parse_row(text: str, deepest: int | None = None):
    """A row's value, or an ``UndecodableRow`` saying why it has none (naming none of its content)."""
    if deepest is not None and deepest > MAX_DEPTH:
        return UndecodableRow(text, f"nested {deepest} levels deep, more than {MAX_DEPTH}", _canonical_of(text))
    try:
        value = json.loads(text)
        if type(value) in (dict, list) and _too_deep(value):
            return UndecodableRow(text, f"nested more than {MAX_DEPTH} levels deep", _canonical_of(text))
        return value
    except RecursionError:
        return UndecodableRow(text, f"nested more than {MAX_DEPTH} levels deep")
    except json.JSONDecodeError as exc:
        return UndecodableRow(text, f"not JSON ({exc.msg} at character {exc.pos})")
    except ValueError as exc:  # an integer longer than Python converts (sys.get_int_max_str_digits)
        return UndecodableRow(text, f"holds a number too long to decode ({str(exc).split(':')[0]})")


def nfc(value):
    """Vietnamese text in one normal form (NFC), however it was composed, inside any JSON value."""
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, dict):
        return {key: nfc(item) for key, item in value.items()}
    if isinstance(value, list):
        return [nfc(item) for item in value]
    return value


def iter_rows(directory: Path, overlong_sink=None) -> Iterator[PageRow]:
    if is_day_file_extract(directory):
        yield from iter_day_file_rows(directory, overlong_sink)
        return
    line_number = 0
    for page_path in sorted(directory.glob("page-*.json")):
        for row in decode_page(page_path.read_bytes(), str(page_path))["items"]:
            line_number += 1
            yield PageRow(page_path.name, line_number, row)


@dataclass(frozen=True)
class RawPage:
    """A page of a paged extract, or a batch of a whole-day file's lines, as text, not yet parsed:
    the loader decodes it typed when it can (``chiso.ingest.typed_decode``), else parses ``rows()``."""

    source_file: str  # page file name, relative to the landed directory
    text: str | None = None  # a page's whole text (paged extracts)
    # (text, where) of each line (whole-day files); an over-long line's text is its ``OverlongLine``
    lines: tuple[tuple[str | OverlongLine, str], ...] | None = None

    def already_nfc(self) -> bool:
        """Whether every text in the rows is already NFC, so that ``nfc`` would return them unchanged.

        A text that is NFC and holds no ``\\u`` escape has only NFC strings: the text between two JSON
        quotes is a string's text, and a quote or the ASCII character of an escape such as ``\\n``
        neither composes with nor reorders around a combining mark."""
        texts = (self.text,) if self.lines is None else (text for text, _ in self.lines)
        return all(type(text) is str and "\\u" not in text and unicodedata.is_normalized("NFC", text)
                   for text in texts)

    def rows(self) -> list:
        if self.lines is None:
            return _parse_page(self.text, self.source_file)["items"]
        return [_parse_line(text, where) for text, where in self.lines]


def iter_raw_pages(directory: Path) -> Iterator[RawPage]:
    """The extract page by page, in order, as text: one page in memory at a time. Whole-day files
    come in batches of ``DAY_FILE_BATCH`` lines."""
    if is_day_file_extract(directory):
        batch: list[tuple[str, str]] = []
        size = 0
        for _, text, where in _day_file_lines(directory):
            batch.append((text, where))
            size += len(text) if type(text) is str else 0
            if len(batch) == DAY_FILE_BATCH or size >= DAY_FILE_BATCH_CHARACTERS:
                yield RawPage(DAY_FILE, lines=tuple(batch))
                batch, size = [], 0
        if batch:
            yield RawPage(DAY_FILE, lines=tuple(batch))
        return
    for page_path in sorted(directory.glob("page-*.json")):
        yield RawPage(page_path.name, text=_page_text(page_path.read_bytes(), str(page_path)))


# ----------------------------------------------------------------------------- whole-day files

DAY_FILE = "day.ndjson.gz"  # the portal's whole-day export, as downloaded
FILE_MANIFEST = "file-manifest.json"  # the file's manifest, as the portal sent it
DAY_FILE_BATCH = 500  # rows per batch when the loader asks for the file page by page
DAY_FILE_BATCH_CHARACTERS = 4 << 20  # and no more text than a page may hold (CHISO_PORTAL_MAX_PAGE_BYTES)


def is_day_file_extract(directory: Path) -> bool:
    """Whether ``directory`` holds a whole-day file rather than pages."""
    return (directory / DAY_FILE).exists()


def _line_text(data: bytes, source: str) -> str | UndecodableRow:
    """One NDJSON line's text: UTF-8, or Windows-1258 like a page. A line that is neither is a row that
    cannot be decoded (the loader quarantines it by reference); its canonical line is its bytes as sent,
    without surrounding ASCII whitespace."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1258", errors="strict")
        except UnicodeDecodeError as exc:
            return UndecodableRow(data.decode("utf-8", "replace"),
                                  f"neither UTF-8 nor Windows-1258 text (byte {exc.start + 1} of the line)",
                                  data.strip() + b"\n")


def _canonical_of(text: str) -> bytes | None:
    """The canonical line of a row too deep to use, if it is JSON at all and can be written back: what a
    portal computes its checksum over. (Otherwise the row's text as sent stands for it.)"""
    try:
        return canonical_line(json.loads(text))
    except (RecursionError, ValueError):
        return None


def _parse_line(text: str | OverlongLine, source: str):
    """A row as sent, whatever its JSON type (the loader quarantines rows that are not objects), or an
    ``UndecodableRow`` or ``OverlongLine`` (the loader quarantines them by reference)."""
    if isinstance(text, (OverlongLine, UndecodableRow)):
        return text
    return _parse_row(text)


GZIP_RATIO_FLOOR = 64 << 20  # a file may always expand to this many bytes, whatever its own size


@dataclass(frozen=True)
class OverlongLine:
    """A line of a whole-day file longer than CHISO_MAX_LINE_BYTES once decompressed: it was read in
    bounded chunks and never held whole, so all that is known of it is its length and the SHA-256 of
    its bytes as sent (without its line ending), which is also what it counts as in the day's row
    checksum. The loader quarantines it by reference (file, line number, a keyed hash of that SHA-256)."""

    size: int  # its bytes, without its line ending
    sha256: bytes  # digest of those bytes
    limit: int  # the CHISO_MAX_LINE_BYTES it exceeded

    @property
    def problem(self) -> str:
        return f"a line of {self.size} bytes, longer than {self.limit} (CHISO_MAX_LINE_BYTES), read but not kept"


def _day_file_lines(directory: Path, overlong_sink=None) -> Iterator[tuple[int, str | OverlongLine, str]]:
    """(line number, text, where) of each line of a landed whole-day file, streamed: a national day
    never sits in memory, nor does one line longer than CHISO_MAX_LINE_BYTES (it is read on in chunks
    of at most that size, hashed and given as an ``OverlongLine``; ``overlong_sink``, when given, is
    handed each chunk of its bytes too), and a file expanding more than CHISO_MAX_GZIP_RATIO times its
    size (a decompression bomb) is refused as soon as it does."""
    path = directory / DAY_FILE
    max_line = int(settings.require("CHISO_MAX_LINE_BYTES"))
    ratio = int(settings.require("CHISO_MAX_GZIP_RATIO"))
    max_total = max(GZIP_RATIO_FLOOR, ratio * path.stat().st_size)
    line_number = total = 0

    def count(size: int) -> None:
        nonlocal total
        total += size
        if total > max_total:
            raise LandingError(f"{path} expands to more than {max_total} bytes, {ratio} times its "
                               f"{path.stat().st_size} (CHISO_MAX_GZIP_RATIO), by line {line_number}: "
                               f"refused as a decompression bomb")

    try:
        with gzip.open(path, "rb") as lines:
            while line := lines.readline(max_line + 1):
                line_number += 1
                count(len(line))
                goes_on = len(line) > max_line and not line.endswith(b"\n")  # the line is longer than that
                if line_number == 1:
                    line = line.removeprefix(UTF8_BOM)
                where = f"{path}, line {line_number}"
                if goes_on:
                    yield line_number, _overlong_line(lines, line, max_line, count, overlong_sink), where
                    continue
                yield line_number, _line_text(line, where), where
    except (EOFError, OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise LandingError(f"{path} is not a whole gzip file (truncated?) after line {line_number}: {exc}") from exc


def _overlong_line(lines, start: bytes, max_line: int, count, sink) -> OverlongLine:
    """Read the rest of a line that began with ``start`` (already over ``max_line``), a chunk of at most
    ``max_line`` bytes at a time, hashing it; never the whole line in memory. Its line ending (trailing
    CR and LF bytes) is not part of it."""
    digest, size = hashlib.sha256(), 0
    held_cr = 0  # CR bytes that ended a chunk: part of the line only if something other than CR/LF follows

    def take(data: bytes) -> None:
        nonlocal size
        digest.update(data)
        size += len(data)
        if sink is not None:
            sink(data)

    chunk = start
    while True:
        ended = chunk.endswith(b"\n")
        kept = chunk.rstrip(b"\r\n") if ended else chunk.rstrip(b"\r")
        if kept:
            while held_cr:  # (in pieces: a portal could send any number of them)
                piece = min(held_cr, max_line)
                take(b"\r" * piece)
                held_cr -= piece
            take(kept)
        if ended:
            break
        held_cr += len(chunk) - len(kept)
        chunk = lines.readline(max_line)
        if not chunk:
            break
        count(len(chunk))
    return OverlongLine(size, digest.digest(), max_line)


def iter_day_file_rows(directory: Path, overlong_sink=None) -> Iterator[PageRow]:
    """The rows of a landed whole-day file, as ``iter_rows`` gives a paged extract's (an over-long
    line as its ``OverlongLine``)."""
    for line_number, text, where in _day_file_lines(directory, overlong_sink):
        yield PageRow(DAY_FILE, line_number, _parse_line(text, where))


def verify(directory: Path) -> dict:
    """Check the pages against the manifest (row count and sha256); return the manifest.

    The checksum is over the rows as sent, or over their NFC form: Windows-1258 cannot carry
    precomposed Vietnamese letters, so a page the portal encoded that way decodes decomposed.
    """
    manifest = read_manifest(directory)
    as_sent, normalised, count = hashlib.sha256(), hashlib.sha256(), 0

    def overlong(chunk: bytes) -> None:  # an over-long line counts as its bytes as sent, in both
        as_sent.update(chunk)
        normalised.update(chunk)

    for page_row in iter_rows(directory, overlong):  # one streaming pass, two checksums
        if isinstance(page_row.row, OverlongLine):
            as_sent.update(b"\n")
            normalised.update(b"\n")
            count += 1
            continue
        as_sent.update(canonical_line(page_row.row))
        normalised.update(canonical_line(nfc(page_row.row)))
        count += 1
    expected = (manifest["sha256"], manifest["row_count"])
    if expected not in ((as_sent.hexdigest(), count), (normalised.hexdigest(), count)):
        raise LandingError(
            f"{directory}: payload has {count} rows, sha256 {as_sent.hexdigest()}; manifest says "
            f"{manifest['row_count']} rows, sha256 {manifest['sha256']}"
        )
    return manifest


def land(fetched: Path, root: Path, entity: str, day: date, source: str = "national") -> Path:
    """Verify a fetched extract and move it, whole, into its immutable place (``source``: the slice)."""
    manifest = verify(fetched)
    target = landed_dir(root, entity, day, manifest["sha256"], source)
    if fetched == target:
        return target
    if target.exists():  # the same extract was landed before: keep the first copy
        shutil.rmtree(fetched)
        return target
    target.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.replace(fetched, target)  # atomic on one filesystem: readers see all pages or none
    return target
