"""Whole-day export files of the simulated portal, streamed, with the manifests that describe them.

Besides the paged JSON API, the portal offers one file per entity and day: gzip-compressed
canonical NDJSON (what a machine should download) and the CSV export officials use
(``chiso.contract.csv_format``). A day may hold hundreds of thousands of rows, so rows come in as
an iterator and files go out as byte chunks; nothing here holds a whole day in memory.

A file's manifest carries two checksums: ``sha256`` of the file's bytes (to check the download)
and ``rows_sha256``, the canonical NDJSON checksum of its rows, which equals the paged JSON API's
manifest ``sha256`` for the same day, whatever the file format.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, BinaryIO

from chiso.contract.canonical import canonical_line
from chiso.contract.csv_format import ROWS_PER_CHUNK, write_csv
from chiso.contract.entities import Entity, get_entity

# Format name (as in manifests and file names) -> HTTP Content-Type.
EXPORT_FORMATS = {"ndjson.gz": "application/gzip", "csv": "text/csv; charset=utf-8"}
_GZIP_LEVEL = 6  # zlib's default: nearly the size of 9 at a fraction of the time


def ndjson_gz_chunks(rows: Iterable[Mapping[str, Any]], *,
                     rows_per_chunk: int = ROWS_PER_CHUNK) -> Iterator[bytes]:
    """Yield a gzip stream of the rows' canonical NDJSON lines.

    The bytes depend on the rows only: the gzip header carries no file name and mtime 0, so
    two exports of the same day are byte-identical and their sha256 can be published.
    """
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=_GZIP_LEVEL) as stream:
        batch = []
        for row in rows:
            batch.append(canonical_line(row))
            if len(batch) == rows_per_chunk:
                stream.write(b"".join(batch))
                batch.clear()
                # zlib holds back output until it has enough; yield only what it released.
                if buffer.tell():
                    yield _drain(buffer)
        stream.write(b"".join(batch))
    yield _drain(buffer)  # closing the stream flushed zlib and wrote the gzip trailer


def csv_chunks(entity: Entity | str, rows: Iterable[Mapping[str, Any]]) -> Iterator[bytes]:
    """Yield the portal's CSV export of the rows (layout: chiso.contract.csv_format)."""
    return write_csv(_entity(entity), rows)


def export_chunks(entity: Entity | str, fmt: str, rows: Iterable[Mapping[str, Any]]) -> Iterator[bytes]:
    """Yield the day file of ``rows`` in format ``fmt`` (a key of EXPORT_FORMATS)."""
    if fmt == "ndjson.gz":
        return ndjson_gz_chunks(rows)
    if fmt == "csv":
        return csv_chunks(entity, rows)
    raise ValueError(f"Unknown export format {fmt!r}; known: {', '.join(EXPORT_FORMATS)}")


def export_filename(entity_name: str, business_date: date | str, fmt: str) -> str:
    """The file name the portal gives a day file, e.g. dossiers_20241115.csv."""
    return f"{entity_name}_{_iso(business_date).replace('-', '')}.{fmt}"


def stream_with_manifest(chunks: Iterable[bytes], sink: BinaryIO | None = None) -> dict:
    """Write the chunks to ``sink`` (anything with ``write(bytes)``; None discards them) as they come.

    Returns {"sha256", "bytes"} of everything written.
    """
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        if sink is not None:
            sink.write(chunk)
    return {"sha256": digest.hexdigest(), "bytes": size}


class RowTally:
    """Passes rows through unchanged while counting them and hashing their canonical NDJSON.

    This gives the manifest's row_count and rows_sha256 in the same single pass that writes the
    file, since an iterator of rows cannot be read twice.
    """

    def __init__(self, rows: Iterable[Mapping[str, Any]]):
        self._rows = rows
        self._digest = hashlib.sha256()
        self.count = 0

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        for row in self._rows:
            self._digest.update(canonical_line(row))
            self.count += 1
            yield row

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


@dataclass(frozen=True)
class FileManifest:
    entity: str
    business_date: str  # ISO yyyy-mm-dd
    format: str  # a key of EXPORT_FORMATS
    row_count: int
    sha256: str  # of the file's bytes
    bytes: int  # size of the file
    rows_sha256: str  # canonical NDJSON sha256 of the rows, as in the paged API's manifest

    def as_dict(self) -> dict:
        return asdict(self)


def file_manifest(entity_name: str, business_date: date | str, fmt: str,
                  rows: Iterable[Mapping[str, Any]], sink: BinaryIO | None = None) -> dict:
    """Build the day file of ``rows`` in one streaming pass and return its manifest as a dict.

    With a ``sink`` the file's bytes are written to it as they are produced (e.g. an HTTP
    response); without one they are discarded, which computes the manifest of a file that is
    never held in memory.
    """
    entity = get_entity(entity_name)
    tally = RowTally(rows)
    file_stats = stream_with_manifest(export_chunks(entity, fmt, tally), sink)
    return FileManifest(entity=entity.name, business_date=_iso(business_date), format=fmt,
                        row_count=tally.count, sha256=file_stats["sha256"], bytes=file_stats["bytes"],
                        rows_sha256=tally.sha256).as_dict()


def _drain(buffer: io.BytesIO) -> bytes:
    data = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return data


def _entity(entity: Entity | str) -> Entity:
    return get_entity(entity) if isinstance(entity, str) else entity


def _iso(business_date: date | str) -> str:
    if isinstance(business_date, str):
        business_date = date.fromisoformat(business_date)  # rejects anything but a real yyyy-mm-dd
    return business_date.isoformat()
