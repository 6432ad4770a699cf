"""Property: whatever random corruption an extract suffers, the loader never crashes and never loses
a row. Either the load stops cleanly with a contract or landing error and writes nothing, or every
row of the manifest is accounted for: loaded + quarantined = manifest."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import psycopg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from chiso.ingest.landing import LandingError
from chiso.ingest.load import load_extract
from chiso.ingest.pseudonymise import Pseudonymiser
from chiso.ingest.validate import ContractError
from chiso.simulator.scenarios import get_scenario
from chiso.simulator.server import PortalSimulator
from chiso.contract import canonical_line, get_entity, sha256_of_rows
from chiso.core.warehouse import ensure_schema

DAY = date(2024, 11, 15)
ROWS = list(PortalSimulator(5, get_scenario("single_commune")).stream("dossiers", DAY))[:25]
FIELDS = get_entity("dossiers").fields
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.text(max_size=20)
                           | st.floats(allow_nan=False, allow_infinity=False),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                      max_size=3), max_leaves=6)
CORRUPTION = st.one_of(
    st.tuples(st.just("set"), st.integers(0, len(ROWS) - 1), st.sampled_from(FIELDS), JSON_VALUES),
    st.tuples(st.just("drop"), st.integers(0, len(ROWS) - 1), st.sampled_from(FIELDS), st.none()),
    st.tuples(st.just("replace_row"), st.integers(0, len(ROWS) - 1), st.none(), JSON_VALUES),
    st.tuples(st.just("add_field"), st.integers(0, len(ROWS) - 1), st.text(min_size=1, max_size=8), JSON_VALUES),
    st.tuples(st.just("garble_page"), st.integers(0, 10_000), st.none(), st.binary(min_size=1, max_size=8)),
)


@pytest.fixture(scope="module")
def database(make_database):
    url = make_database("chiso_props")
    ensure_schema(url)
    return url


def _write_extract(directory, rows, garble=None):
    directory.mkdir(parents=True)
    page = json.dumps({"items": rows, "total_pages": 1}, ensure_ascii=False).encode()
    if garble is not None:
        position, junk = garble
        position %= len(page)
        page = page[:position] + junk + page[position + len(junk):]
    (directory / "page-00001.json").write_bytes(page)
    sha256, count = sha256_of_rows(r for r in rows if isinstance(r, dict))
    (directory / "manifest.json").write_text(json.dumps({"row_count": len(rows), "sha256": sha256}))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(corruptions=st.lists(CORRUPTION, min_size=1, max_size=6))
def test_random_corruption_never_crashes_the_loader_nor_loses_a_row(database, tmp_path_factory, corruptions):
    rows = [dict(r) for r in ROWS]
    garble = None
    for kind, index, name, value in corruptions:
        if kind == "set" and isinstance(rows[index], dict):
            rows[index][name] = value
        elif kind == "drop" and isinstance(rows[index], dict):
            rows[index].pop(name, None)
        elif kind == "replace_row":
            rows[index] = value
        elif kind == "add_field" and isinstance(rows[index], dict):
            rows[index][name] = value
        elif kind == "garble_page":
            garble = (index, value)
    directory = tmp_path_factory.mktemp("extract") / "landed"
    _write_extract(directory, rows, garble)
    with psycopg.connect(database) as conn:
        conn.execute("truncate raw.quarantine, raw.portal__dossiers, raw.portal__evaluations, raw.load_ledger cascade")
        conn.commit()
        try:
            result = load_extract(conn, "dossiers", DAY, directory, Pseudonymiser("k"), allow_new_columns=False)
        except (ContractError, LandingError) as stopped:
            assert str(stopped)
            assert conn.execute("select count(*) from raw.portal__dossiers").fetchone() == (0,)
            assert conn.execute("select count(*) from raw.load_ledger").fetchone() == (0,)
            return
        loaded = conn.execute("select count(*) from raw.portal__dossiers").fetchone()[0]
        quarantined = conn.execute("select count(*) from raw.quarantine").fetchone()[0]
    assert result.rows_loaded + result.rows_quarantined == len(rows)
    assert (loaded, quarantined) == (result.rows_loaded, result.rows_quarantined)
    assert all(canonical_line(r) for r in rows if isinstance(r, dict))


# ----------------------------------------------------------------------------- byte-level corruption
#
# The simulator's own pages and whole-day file for a day, spoilt byte by byte (flips, truncation,
# deletions, insertions of NUL, 0xFF, lone UTF-8 continuation bytes, CR and LF), then fetched, landed
# and loaded for real from a local portal. Either the portal spoilt them itself ("at source": its
# manifests agree with what it sent, as far as chiso can decode it) or they were spoilt on the way ("in
# transit": the manifests are the simulator's). Whatever happens: the day loads with its ledger
# balanced, or it stops with one sentence naming where, the entity and the day; no clear personal value
# reaches a message or the quarantine; and a second run changes nothing.

import gzip
import re
from pathlib import Path
from unittest import mock

from chiso.ingest.fetch import Portal, PortalError, fetch_day
from chiso.ingest.landing import DAY_FILE, decode_page, iter_day_file_rows, land
from chiso.simulator import hostile

BYTES_PAGE_SIZE = 10
SIMULATOR = PortalSimulator(5, get_scenario("single_commune"))
SIMULATED_ROWS = SIMULATOR.rows("dossiers", DAY)
SIMULATED_PAGES = [json.dumps(SIMULATOR.page("dossiers", DAY, number, BYTES_PAGE_SIZE), ensure_ascii=False).encode()
                   for number in range(1, -(-len(SIMULATED_ROWS) // BYTES_PAGE_SIZE) + 1)]
SIMULATED_FILE = b"".join(SIMULATOR.file_chunks("dossiers", DAY, "ndjson.gz"))
PERSONAL_FIELDS = ("ChuHoSo", "SoGiayToChuHoSo", "SoDienThoai", "Email", "DiaChiChuHoSo")
CLEAR_VALUES = sorted({row[field] for row in SIMULATED_ROWS for field in PERSONAL_FIELDS
                       if isinstance(row.get(field), str) and len(row[field]) >= 6})
NASTY_BYTES = (b"\x00", b"\xff", b"\x80", b"\xbf", b"\r", b"\n", b"\r\n", b"\xc3", b"\xe1\xba")
BYTE_EDIT = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.sampled_from(NASTY_BYTES) | st.binary(min_size=1, max_size=3)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 40)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.none()),
)
# What is spoilt: a page (its number), the day file's NDJSON before compression, or the compressed file.
TARGET = st.sampled_from([("pages", 0), ("pages", 1), ("pages", 2), ("files", "ndjson"), ("files", "gzip")])


def _spoil(data: bytes, edits) -> bytes:
    for kind, position, value in edits:
        position %= len(data) + 1
        if kind == "flip" and position < len(data):
            data = data[:position] + bytes([data[position] ^ value]) + data[position + 1:]
        elif kind == "insert":
            data = data[:position] + value + data[position:]
        elif kind == "delete":
            data = data[:position] + data[position + value:]
        elif kind == "truncate":
            data = data[:position]
        if not data:
            data = b"\n"
    return data


def _decodable_rows(pages: list[bytes]) -> list | None:
    try:
        return [row for body in pages for row in decode_page(body, "portal")["items"]]
    except (LandingError, KeyError, TypeError):
        return None


def _file_rows(body: bytes, scratch: Path) -> list | None:
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / DAY_FILE).write_bytes(body)
    try:
        return [page_row.row for page_row in iter_day_file_rows(scratch)]
    except LandingError:
        return None


def _serve_spoilt(portal: hostile.HostilePortal, target, edits, at_source: bool, scratch: Path) -> None:
    portal.routes.clear()
    transfer, which = target
    if transfer == "pages":
        pages = list(SIMULATED_PAGES)
        pages[which] = _spoil(pages[which], edits)
        for number, body in enumerate(pages, 1):
            portal.routes[f"/api/v1/dossiers?page={number}"] = (200, {"Content-Type": "application/json"}, body)
        rows = _decodable_rows(pages) if at_source else None
        manifest = hostile.rows_manifest("dossiers", DAY, SIMULATED_ROWS if rows is None else rows)
        portal.routes["/api/v1/dossiers/manifest"] = (200, {}, json.dumps(manifest).encode())
        return
    if which == "ndjson":
        body = gzip.compress(_spoil(gzip.decompress(SIMULATED_FILE), edits), mtime=0)
    else:
        body = _spoil(SIMULATED_FILE, edits)
    rows = _file_rows(body, scratch) if at_source else None
    rows_manifest = hostile.rows_manifest("dossiers", DAY, SIMULATED_ROWS if rows is None else rows)
    sent = body if at_source else SIMULATED_FILE
    manifest = hostile.file_manifest("dossiers", DAY, rows_manifest, len(sent), hashlib.sha256(sent).hexdigest())
    path = hostile.file_path("dossiers", DAY)
    portal.routes[path] = (200, {"Content-Type": "application/gzip"}, body)
    portal.routes[path + ".manifest"] = (200, {}, json.dumps(manifest).encode())


def _ingest_bytes(portal: hostile.HostilePortal, url: str, root: Path, transfer: str):
    with mock.patch("chiso.ingest.fetch.time.sleep"):  # (the fetch's pauses between tries: no need to wait)
        fetched = fetch_day(Portal(portal.url, "token", page_size=BYTES_PAGE_SIZE, transfer=transfer), "dossiers",
                            DAY, root)
    landed = land(fetched, root, "dossiers", DAY)
    with psycopg.connect(url) as conn:
        return load_extract(conn, "dossiers", DAY, landed, Pseudonymiser("k"), allow_new_columns=False)


def _raw_state(url: str) -> tuple:
    with psycopg.connect(url) as conn:
        return (conn.execute("select load_id, rows_in_manifest, rows_loaded, rows_quarantined, status "
                             "from raw.load_ledger order by load_id").fetchall(),
                conn.execute("select count(*) from raw.portal__dossiers").fetchone()[0],
                conn.execute("select line_number, source_file, reason, original_text from raw.quarantine "
                             "order by line_number").fetchall())


def _assert_clear_failure(message: str, root: Path, portal_url: str) -> None:
    assert message and "\n" not in message, message
    assert not re.match(r"[\w.]*(Error|Exception)\b", message), f"a bare exception as the message: {message}"
    assert "dossiers" in message and "2024-11-15" in message, f"the entity or day is not named: {message}"
    assert portal_url in message or str(root) in message, f"neither the URL nor the file is named: {message}"
    for value in CLEAR_VALUES:
        assert value not in message, f"{value!r} is quoted in {message!r}"


@pytest.fixture(scope="module")
def spoilt_portal():
    with hostile.HostilePortal() as portal:
        yield portal


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=TARGET, edits=st.lists(BYTE_EDIT, min_size=1, max_size=4),
       at_source=st.sampled_from([True, True, False]))
def test_byte_level_corruption_loads_with_the_ledger_balanced_or_stops_in_one_clear_sentence(
        database, spoilt_portal, tmp_path_factory, target, edits, at_source):
    root = tmp_path_factory.mktemp("bytes")
    _serve_spoilt(spoilt_portal, target, edits, at_source, root / "scratch")
    with psycopg.connect(database) as conn:
        conn.execute("truncate raw.quarantine, raw.portal__dossiers, raw.portal__evaluations, raw.load_ledger cascade")
        conn.commit()
    outcomes = []
    for run in (1, 2):
        try:
            result = _ingest_bytes(spoilt_portal, database, root / "landing", target[0])
        except (PortalError, LandingError, ContractError) as stopped:
            _assert_clear_failure(str(stopped), root / "landing", spoilt_portal.url)
            assert _raw_state(database) == ([], 0, [])  # nothing of the day, not even a ledger row
            outcomes.append(type(stopped).__name__)
            event(f"{target[0]}, {'at source' if at_source else 'in transit'}: {type(stopped).__name__}")
            continue
        outcomes.append("loaded")
        event(f"{target[0]}, {'at source' if at_source else 'in transit'}: loaded"
              + (", some quarantined" if result.rows_quarantined else ""))
        ledger, loaded, quarantine = _raw_state(database)
        assert ledger == [(result.load_id, result.rows_in_manifest, result.rows_loaded, result.rows_quarantined,
                           "loaded")]
        assert result.rows_in_manifest == result.rows_loaded + result.rows_quarantined
        assert (loaded, len(quarantine)) == (result.rows_loaded, result.rows_quarantined)
        for _, _, reason, original in quarantine:
            for value in CLEAR_VALUES:
                assert value not in reason and value not in original, f"{value!r} is in the quarantine: {reason}"
        if run == 1:
            first = (ledger, loaded, quarantine)
        else:  # a re-run changes nothing
            assert result.skipped and (ledger, loaded, quarantine) == first
    assert outcomes[0] == outcomes[1], outcomes  # and ends the same way
