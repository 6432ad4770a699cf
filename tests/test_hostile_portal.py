"""A hostile portal against fetch_day → land → load_extract on the real Postgres (issue 15).

A small local server plays the portal: it serves whatever pages, day files, manifests, redirects or
endless bodies a test gives it. Every test checks what the issue asks of its kind of bad input: the
rest of the day loads, the ledger balances (received = loaded + quarantined), the error names the
place, no clear personal value reaches the warehouse, and a re-run changes nothing.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import psycopg
import pytest

from chiso.ingest.fetch import Portal, PortalError, fetch_day
from chiso.ingest.landing import land
from chiso.ingest.load import load_extract
from chiso.ingest.pseudonymise import Pseudonymiser
from chiso.simulator.hostile import HostilePortal
from chiso.simulator.scenarios import get_scenario
from chiso.simulator.server import PortalSimulator
from chiso.core.warehouse import ensure_schema

DAY = date(2024, 11, 15)
TOKEN = "hostile-test-token"
KEY = Pseudonymiser("hostile-test-key")
PAGE_SIZE = 10


@pytest.fixture(scope="module")
def dossiers() -> list[dict]:
    return PortalSimulator(11, get_scenario("cu_kuin_2024")).rows("dossiers", DAY)[:30]


@pytest.fixture
def hostile():
    with HostilePortal() as portal:
        yield portal


def _texts(rows) -> list[str]:
    return [json.dumps(row, ensure_ascii=False) for row in rows]


def _ingest(portal: HostilePortal, root: Path, url: str, transfer: str = "pages", entity: str = "dossiers"):
    fetched = fetch_day(Portal(portal.url, TOKEN, page_size=PAGE_SIZE, transfer=transfer), entity, DAY, root)
    landed = land(fetched, root, entity, DAY)
    with psycopg.connect(url) as conn:
        return load_extract(conn, entity, DAY, landed, KEY)


def _query(url: str, sql: str, params=()):
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def _warehouse_text(url: str) -> str:
    """Everything a person could read in raw (records, quarantine reasons and texts, ledger), as text."""
    parts = []
    for sql in ("select record::text from raw.portal__dossiers",
                "select reason || ' ' || original_text || ' ' || source_file from raw.quarantine",
                "select l::text from raw.load_ledger l"):
        parts += [row[0] for row in _query(url, sql)]
    return "\n".join(parts)


# ----------------------------------------------------------------------------- rows no decoder or database takes

NESTED = "[" * 10_000 + "]" * 10_000
HUGE_INTEGER = "7" * 5_000

HOSTILE_ROWS = {
    # kind: (how the row's text is spoilt, what the reason must say)
    "nul_in_text": (lambda row: _texts([{**row, "TenTTHC": "Khai sinh\u0000"}])[0], "TenTTHC: a text holding a NUL"),
    "nul_in_nested_text": (lambda row: _texts([{**row, "TaiLieuNop": [{**row["TaiLieuNop"][0], "TenGiayTo": "Tờ\u0000"}]}])[0],
                           "TaiLieuNop[0].TenGiayTo: a text holding a NUL"),
    "lone_surrogate": (lambda row: json.dumps({**row, "TenTTHC": "\ud800x"}), "TenTTHC: a text holding a lone"),
    "deep_nesting": (lambda row: _texts([row])[0][:-1] + ', "TaiLieuNop": ' + NESTED + "}",
                     "the row cannot be decoded: nested"),
    # Deep, yet within what json.loads takes (the Python that checks and pseudonymises rows would not be).
    "nesting_500": (lambda row: _texts([row])[0][:-1] + ', "TaiLieuNop": [' + "[" * 500 + "]" * 500 + "]}",
                    "the row cannot be decoded: nested"),
    "nesting_960": (lambda row: _texts([row])[0][:-1] + ', "TaiLieuNop": [' + "[" * 960 + "]" * 960 + "]}",
                    "the row cannot be decoded: nested"),
    "huge_integer": (lambda row: _texts([row])[0][:-1] + ', "KenhThucHien": ' + HUGE_INTEGER + "}",
                     "the row cannot be decoded: holds a number too long"),
    "phone_as_number": (lambda row: _texts([{**row, "SoDienThoai": 790794718}])[0], "SoDienThoai: an integer is not"),
    "email_as_list": (lambda row: _texts([{**row, "Email": ["an.nguyen@example.vn"]}])[0], "Email: a list"),
    "name_as_object": (lambda row: _texts([{**row, "ChuHoSo": {"ho": "Nguyễn", "ten": "Văn Ẩn"}}])[0], "ChuHoSo: an object"),
    "bare_string": (lambda row: json.dumps("Nguyễn Văn Ẩn 0912345678", ensure_ascii=False),
                    "a row must be a JSON object, got a string"),
    "not_json": (lambda row: "{'ChuHoSo': 'Nguyễn Văn Ẩn'}", "the row cannot be decoded: not JSON"),
}
# Values that must not be readable anywhere in the warehouse.
CLEAR_VALUES = ("790794718", "an.nguyen@example.vn", "Văn Ẩn", "Nguyễn Văn Ẩn", "0912345678")


@pytest.mark.parametrize("transfer", ["pages", "files"])
@pytest.mark.parametrize("kind", sorted(HOSTILE_ROWS))
def test_a_row_no_decoder_or_database_takes_is_quarantined_and_the_day_loads(warehouse_url, hostile, dossiers,
                                                                            tmp_path, kind, transfer):
    spoil, reason = HOSTILE_ROWS[kind]
    texts = _texts(dossiers)
    texts[12] = spoil(dossiers[12])  # line 13, on page 2 of 3
    if transfer == "pages":
        hostile.serve_pages("dossiers", DAY, texts, PAGE_SIZE)
    else:
        hostile.serve_file("dossiers", DAY, texts)
    ensure_schema(warehouse_url)

    result = _ingest(hostile, tmp_path, warehouse_url, transfer)

    assert (result.rows_in_manifest, result.rows_loaded, result.rows_quarantined) == (30, 29, 1)
    ledger = _query(warehouse_url, "select rows_in_manifest, rows_loaded, rows_quarantined, status "
                                   "from raw.load_ledger")
    assert ledger == [(30, 29, 1, "loaded")]
    assert _query(warehouse_url, "select count(*) from raw.portal__dossiers")[0][0] == 29
    [(entity, day, source_file, line, text_reason, original)] = _query(
        warehouse_url, "select entity, business_date, source_file, line_number, reason, original_text "
                       "from raw.quarantine")
    assert (entity, day, line) == ("dossiers", DAY, 13)
    assert source_file == ("page-00002.json" if transfer == "pages" else "day.ndjson.gz")
    if reason:
        assert text_reason.startswith(reason), text_reason
    json.loads(original)  # kept as JSON text, whatever the row held
    stored = _warehouse_text(warehouse_url)
    for value in CLEAR_VALUES:
        assert value not in stored, f"{value!r} is readable in the warehouse"
    if kind in ("bare_string", "not_json", "deep_nesting", "nesting_500", "nesting_960", "huge_integer"):
        # kept by reference, not its text
        reference = json.loads(original)
        assert reference["kept"] == "reference" and reference["line_number"] == 13
        assert Path(reference["landed"]).is_dir() and len(reference["hmac_sha256"]) == 64
        assert NESTED not in original and HUGE_INTEGER not in original

    again = _ingest(hostile, tmp_path, warehouse_url, transfer)  # a re-run changes nothing
    assert again.skipped and again.load_id == result.load_id
    assert _query(warehouse_url, "select count(*) from raw.load_ledger")[0][0] == 1
    assert _query(warehouse_url, "select count(*) from raw.quarantine")[0][0] == 1


def test_a_day_file_line_that_is_no_text_is_quarantined_by_reference_and_the_day_loads(warehouse_url, hostile,
                                                                                       dossiers, tmp_path):
    import gzip
    import hashlib

    from chiso.contract import canonical_line
    from chiso.simulator.hostile import file_manifest, file_path

    lines = [text.encode() for text in _texts(dossiers)]
    # Line 13: a name's UTF-8 spoilt by bytes neither UTF-8 nor Windows-1258 can read (0x9d is not in cp1258).
    lines[12] = lines[12].replace("Ẩ".encode(), b"\x9d\xff") if "Ẩ".encode() in lines[12] else \
        lines[12][:40] + b"\x9d\xff" + lines[12][40:]
    body = gzip.compress(b"".join(line + b"\n" for line in lines), mtime=0)
    digest = hashlib.sha256()  # the rows' checksum as the portal computes it: the spoilt line as sent
    for number, line in enumerate(lines):
        digest.update(line + b"\n" if number == 12 else canonical_line(json.loads(line)))
    manifest = file_manifest("dossiers", DAY, {"row_count": 30, "sha256": digest.hexdigest()}, len(body),
                             hashlib.sha256(body).hexdigest())
    hostile.routes[file_path("dossiers", DAY)] = (200, {}, body)
    hostile.routes[file_path("dossiers", DAY) + ".manifest"] = (200, {}, json.dumps(manifest).encode())
    ensure_schema(warehouse_url)

    result = _ingest(hostile, tmp_path, warehouse_url, "files")

    assert (result.rows_in_manifest, result.rows_loaded, result.rows_quarantined) == (30, 29, 1)
    [(line, reason, original)] = _query(warehouse_url, "select line_number, reason, original_text from raw.quarantine")
    assert line == 13 and reason.startswith("the row cannot be decoded: neither UTF-8 nor Windows-1258 text (byte ")
    reference = json.loads(original)
    assert reference["kept"] == "reference" and reference["hmac_sha256"] == KEY.digest(lines[12] + b"\n")
    assert dossiers[12]["ChuHoSo"] not in _warehouse_text(warehouse_url)
    again = _ingest(hostile, tmp_path, warehouse_url, "files")
    assert again.skipped and again.load_id == result.load_id


def test_a_personal_text_holding_a_nul_loads_as_its_pseudonym(warehouse_url, hostile, dossiers, tmp_path):
    texts = _texts(dossiers)
    texts[3] = _texts([{**dossiers[3], "ChuHoSo": "Nguyễn\u0000Văn Ẩn"}])[0]
    hostile.serve_pages("dossiers", DAY, texts, PAGE_SIZE)
    ensure_schema(warehouse_url)
    result = _ingest(hostile, tmp_path, warehouse_url)
    assert (result.rows_loaded, result.rows_quarantined) == (30, 0)  # the pseudonym holds no NUL
    [(name,)] = _query(warehouse_url, "select record->>'ChuHoSo' from raw.portal__dossiers where line_number = 4")
    assert name == KEY.pseudonym("ChuHoSo", "Nguyễn\u0000Văn Ẩn")
    assert "Văn Ẩn" not in _warehouse_text(warehouse_url)


# ----------------------------------------------------------------------------- pages that cannot be used


def _page_body(items: list[str], **fields) -> bytes:
    page = {"entity": "dossiers", "business_date": DAY.isoformat(), "page": 1, **fields}
    return (json.dumps(page)[:-1] + ', "items": [' + ", ".join(items) + "]}").encode()


PAGE_FAULTS = {
    # kind: (the first page's body, what the error says after the URL)
    "html_page": (b"<!DOCTYPE html><html><body>Bao tri he thong</body></html>",
                  "did not give a page of dossiers of 2024-11-15: an HTML page of 57 bytes (3 tries)"),
    "truncated_page": (lambda items: _page_body(items, total_pages=1)[:-40],
                       "did not give a page of dossiers of 2024-11-15: "),
    "no_items": (lambda items: b'{"page": 1, "total_pages": 1}', "did not give a page of dossiers of 2024-11-15: "
                 "it has no list of items"),
    "total_pages_missing": (lambda items: _page_body(items),
                            "gave a page of dossiers of 2024-11-15 with no total_pages: the day cannot be paged"),
    "total_pages_text": (lambda items: _page_body(items, total_pages="3"),
                         "gave a page of dossiers of 2024-11-15 with a total_pages that is a text, not a whole number"),
    "endless_empty_pages": (lambda items: _page_body([], total_pages=10**9),
                            "gave page 1 of 1000000000 of dossiers of 2024-11-15 without rows"),
}


@pytest.mark.parametrize("kind", sorted(PAGE_FAULTS))
def test_a_page_that_cannot_be_used_fails_naming_the_url_entity_and_day(warehouse_url, hostile, dossiers, tmp_path,
                                                                       kind):
    hostile.serve_pages("dossiers", DAY, _texts(dossiers), page_size=30)
    body, message = PAGE_FAULTS[kind]
    hostile.routes["/api/v1/dossiers?page=1"] = (200, {}, body if isinstance(body, bytes) else body(_texts(dossiers)))
    url = f"{hostile.url}/api/v1/dossiers?ngay=2024-11-15&page=1&page_size={PAGE_SIZE}"
    with pytest.raises(PortalError) as failure:
        _ingest(hostile, tmp_path, warehouse_url)
    assert str(failure.value).startswith(f"GET {url} {message}"), str(failure.value)
    assert "\n" not in str(failure.value) and dossiers[0]["ChuHoSo"] not in str(failure.value)
    assert not list(tmp_path.rglob("page-00001.json")), "a page that cannot be used is not kept"


@pytest.mark.parametrize("transfer", ["pages", "files"])
def test_a_manifest_that_is_an_html_page_fails_naming_the_url_entity_and_day(hostile, tmp_path, transfer):
    html = (200, {"Content-Type": "text/html"}, b"<html><body>Dang bao tri</body></html>")
    hostile.routes["/api/v1/dossiers/manifest"] = html
    hostile.routes["/api/v1/dossiers/files/2024-11-15.ndjson.gz.manifest"] = html
    with pytest.raises(PortalError, match=r"^GET http://[^ ]+/api/v1/dossiers/.*manifest.* did not give the (file )?"
                                          r"manifest of dossiers of 2024-11-15: an HTML page of 38 bytes$"):
        fetch_day(Portal(hostile.url, TOKEN, transfer=transfer), "dossiers", DAY, tmp_path)


# ----------------------------------------------------------------------------- the token stays home


@pytest.mark.parametrize("transfer", ["pages", "files"])
def test_a_redirect_to_another_origin_is_refused_and_the_token_never_leaves(hostile, dossiers, tmp_path, transfer):
    with HostilePortal() as elsewhere:
        elsewhere.serve_pages("dossiers", DAY, _texts(dossiers), PAGE_SIZE)
        elsewhere.serve_file("dossiers", DAY, _texts(dossiers))
        for path in list(elsewhere.routes):
            bare = path.split("?")[0]
            hostile.routes[path] = (302, {"Location": f"{elsewhere.url}{bare}?ngay=2024-11-15"}, b"")
        with pytest.raises(PortalError, match=r"redirected to http://127\.0\.0\.1:\d+, which is not the portal's "
                                              r"origin http://127\.0\.0\.1:\d+: the redirect is refused"):
            fetch_day(Portal(hostile.url, TOKEN, transfer=transfer), "dossiers", DAY, tmp_path)
    assert hostile.requests, "the portal was asked"
    assert elsewhere.requests == [], "nothing, and so no token, was sent to the other origin"


def test_a_redirect_within_the_portal_is_followed_with_the_token(hostile, dossiers, tmp_path):
    hostile.serve_pages("dossiers", DAY, _texts(dossiers), PAGE_SIZE)
    hostile.routes["/moved/manifest"] = hostile.routes["/api/v1/dossiers/manifest"]
    hostile.routes["/api/v1/dossiers/manifest"] = (301, {"Location": "/moved/manifest"}, b"")
    fetched = fetch_day(Portal(hostile.url, TOKEN, page_size=PAGE_SIZE), "dossiers", DAY, tmp_path)
    assert land(fetched, tmp_path, "dossiers", DAY).exists()
    assert all(headers.get("X-Api-Token") == TOKEN for _, headers in hostile.requests)


# ----------------------------------------------------------------------------- bounded fetch and load


def _bench():
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "scripts" / "bench_hostile_portal.py"
    spec = importlib.util.spec_from_file_location("bench_hostile_portal", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _bench()
GIB = 1 << 30


@pytest.mark.parametrize("kind", [kind for kind in BENCH.KINDS if kind not in ("dense_page", "overlong_line")])
def test_no_body_the_portal_sends_exhausts_memory_disk_or_time(warehouse_url, tmp_path, kind):
    """GB-sized pages and files, gzip bombs (1.5 GB expanded) and endless slow bodies, generated on the fly:
    each fails in one sentence naming where and which bound, with the whole child process (Python and
    all) under 300 MB and no more than a few MiB left in the landing zone; the ledger is untouched, and
    a second run ends the same way."""
    expected_type, words = BENCH.KINDS[kind][1]
    for _ in range(2 if kind in ("huge_page", "gzip_bomb_line") else 1):
        outcome = BENCH.run_kind(kind, 3 * GIB // 2, warehouse_url, tmp_path)
        assert outcome["error_type"] == expected_type and words in outcome["message"], outcome
        assert "\n" not in outcome["message"] and "Hoàng Văn Bảo" not in outcome["message"]
        assert outcome["peak_mb"] < 300, outcome
        assert outcome["disk_bytes"] < 4 << 20, outcome  # the gzip bombs' 1.5 MB files, at most
        assert _query(warehouse_url, "select count(*) from raw.load_ledger") == [(0,)]


def test_a_line_of_hundreds_of_mb_is_quarantined_by_reference_in_bounded_memory(warehouse_url, tmp_path):
    """A whole-day file with one line of 400 MiB (generated on the fly) between two real dossiers: the line
    is read on in chunks, hashed and quarantined by reference; the other two load; the child process
    stays under 300 MB; a second run changes nothing."""
    import hashlib

    from chiso.ingest.pseudonymise import Pseudonymiser as Keyed

    first = BENCH.run_kind("overlong_line", 3 * GIB // 2, warehouse_url, tmp_path)
    assert first["error_type"] is None, first
    assert (first["result"]["rows_in_manifest"], first["result"]["rows_loaded"],
            first["result"]["rows_quarantined"]) == (3, 2, 1)
    assert first["peak_mb"] < 300, first
    [(line, reason, original)] = _query(warehouse_url, "select line_number, reason, original_text from raw.quarantine")
    prefix, suffix = b'{"MaHoSo": "', '", "ChuHoSo": "Hoàng Văn Bảo"}'.encode()
    digest = hashlib.sha256(prefix)
    for _ in range(BENCH.OVERLONG_BYTES // BENCH.MIB):
        digest.update(b"0" * BENCH.MIB)
    digest.update(suffix)
    size = BENCH.OVERLONG_BYTES + len(prefix) + len(suffix)
    assert line == 2 and reason == (f"the row cannot be decoded: a line of {size} bytes, longer than 1048576 "
                                    f"(CHISO_MAX_LINE_BYTES), read but not kept")
    reference = json.loads(original)
    assert reference["bytes"] == size and reference["source_file"] == "day.ndjson.gz"
    assert reference["hmac_of_sha256"] == Keyed("hostile-key").digest(digest.digest())
    assert "Hoàng Văn Bảo" not in _warehouse_text(warehouse_url)
    again = BENCH.run_kind("overlong_line", 3 * GIB // 2, warehouse_url, tmp_path)
    assert again["result"]["skipped"] and again["result"]["load_id"] == first["result"]["load_id"], again
    assert _query(warehouse_url, "select count(*), sum(rows_loaded), sum(rows_quarantined) from raw.load_ledger") == [
        (1, 2, 1)]


def test_a_line_over_the_limit_is_quarantined_by_reference_and_the_rest_of_the_day_loads(
        warehouse_url, hostile, dossiers, tmp_path, monkeypatch):
    import hashlib

    monkeypatch.setenv("CHISO_MAX_LINE_BYTES", "4096")
    texts = _texts(dossiers)
    # Line 13: over 4096 bytes, holding personal values, with CRs inside and before its line ending.
    long_text = _texts([{**dossiers[12], "ChuHoSo": "Nguyễn Văn Ẩn 0912345678", "GhiChu": "x" * 5000}])[0]
    texts[12] = long_text[:4095] + "\r\r\r" + long_text[4095:] + "\r"
    hostile.serve_file("dossiers", DAY, texts)
    ensure_schema(warehouse_url)

    result = _ingest(hostile, tmp_path, warehouse_url, "files")

    assert (result.rows_in_manifest, result.rows_loaded, result.rows_quarantined) == (30, 29, 1)
    assert _query(warehouse_url, "select rows_in_manifest, rows_loaded, rows_quarantined, status "
                                 "from raw.load_ledger") == [(30, 29, 1, "loaded")]
    [(line, reason, original)] = _query(warehouse_url, "select line_number, reason, original_text from raw.quarantine")
    line_bytes = texts[12].encode().rstrip(b"\r")  # CRs inside are the line's, those ending it are not
    assert line == 13 and reason.startswith(f"the row cannot be decoded: a line of {len(line_bytes)} bytes, longer "
                                            f"than 4096 (CHISO_MAX_LINE_BYTES)")
    reference = json.loads(original)
    assert reference["hmac_of_sha256"] == KEY.digest(hashlib.sha256(line_bytes).digest())
    assert reference["kept"] == "reference" and Path(reference["landed"]).is_dir()
    stored = _warehouse_text(warehouse_url)
    for value in CLEAR_VALUES:
        assert value not in stored, f"{value!r} is readable in the warehouse"
    again = _ingest(hostile, tmp_path, warehouse_url, "files")  # a re-run changes nothing
    assert again.skipped and again.load_id == result.load_id
    assert _query(warehouse_url, "select count(*) from raw.quarantine") == [(1,)]


@pytest.mark.parametrize("line", [b"0123456789" + b"\r" * 20 + b"ab", b"0123456789ABCDEFGHIJ", b"\r" * 40 + b"x"])
@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r\r\n", b""])
def test_an_over_long_line_is_hashed_chunk_by_chunk_without_its_line_ending(tmp_path, monkeypatch, line, ending):
    import gzip
    import hashlib

    from chiso.ingest.landing import DAY_FILE, OverlongLine, _day_file_lines

    monkeypatch.setenv("CHISO_MAX_LINE_BYTES", "8")
    (tmp_path / DAY_FILE).write_bytes(gzip.compress(b"[1]\n" + line + ending + (b"[2]\n" if ending else b"")))
    lines = list(_day_file_lines(tmp_path))
    assert [number for number, _, _ in lines] == ([1, 2, 3] if ending else [1, 2])
    overlong = lines[1][1]
    assert isinstance(overlong, OverlongLine)
    assert (overlong.size, overlong.sha256) == (len(line), hashlib.sha256(line).digest())
    if ending:
        assert lines[2][1] == "[2]\n"


# ----------------------------------------------------------------------------- pseudonym keys


@pytest.mark.parametrize("key, problem", [
    ("demo-only-pseudonym-key-do-not-use-with-real-data", "a key published in chiso's repository"),
    ("our-demo-key-for-the-province-2026-abcdefgh", "a demo or test key"),
    ("short-but-random-9f8a", "only 21 bytes long, fewer than 32"),
    ("", "empty"),
])
def test_a_known_demo_or_short_key_is_refused_outside_the_demo(key, problem):
    from chiso.ingest.pseudonymise import KeyRefused, check_key

    with pytest.raises(KeyRefused) as refused:
        check_key(key, demo=False)
    assert problem in str(refused.value) and (not key or key not in str(refused.value))
    if key:
        check_key(key, demo=True)  # the demo takes any non-empty key
    check_key("kT3v9QpX2mW8zR5nB7yC4hL6dF1gJ0sA", demo=False)  # 32 random bytes are fine


def test_the_pipeline_refuses_the_key_before_loading_anything(monkeypatch):
    from airflow.sdk import Connection

    from chiso.orchestration import pipeline
    from chiso.ingest.pseudonymise import KeyRefused

    monkeypatch.setattr(Connection, "get", classmethod(lambda cls, conn_id: Connection(
        conn_id=conn_id, conn_type="generic", password="demo-only-pseudonym-key-do-not-use-with-real-data")))
    monkeypatch.delenv("CHISO_DEMO_MODE", raising=False)
    with pytest.raises(KeyRefused, match="a key published in chiso's repository"):
        pipeline.pseudonymiser_from_connection("chiso_pseudonym_key")
    monkeypatch.setenv("CHISO_DEMO_MODE", "true")
    assert pipeline.pseudonymiser_from_connection("chiso_pseudonym_key").key_id


def test_each_load_records_which_key_made_its_pseudonyms_and_a_new_key_reloads_the_day(
        warehouse_url, hostile, dossiers, tmp_path):
    hostile.serve_pages("dossiers", DAY, _texts(dossiers), PAGE_SIZE)
    ensure_schema(warehouse_url)
    ensure_schema(warehouse_url)  # idempotent, column and all
    fetched = fetch_day(Portal(hostile.url, TOKEN, page_size=PAGE_SIZE), "dossiers", DAY, tmp_path)
    landed = land(fetched, tmp_path, "dossiers", DAY)
    new_key = Pseudonymiser("a-rotated-key-of-forty-random-bytes-0x7f3a9c")
    with psycopg.connect(warehouse_url) as conn:
        first = load_extract(conn, "dossiers", DAY, landed, KEY)
        assert load_extract(conn, "dossiers", DAY, landed, KEY).skipped  # same extract, same key
        rotated = load_extract(conn, "dossiers", DAY, landed, new_key)
        assert not rotated.skipped and load_extract(conn, "dossiers", DAY, landed, new_key).skipped
    ledger = _query(warehouse_url, "select load_id, status, pseudonym_key_id from raw.load_ledger order by load_id")
    assert ledger == [(first.load_id, "superseded", KEY.key_id), (rotated.load_id, "loaded", new_key.key_id)]
    assert KEY.key_id != new_key.key_id and "hostile-test-key" not in KEY.key_id
    names = {name for (name,) in _query(warehouse_url, "select record->>'ChuHoSo' from raw.portal__dossiers")}
    assert names == {new_key.pseudonym("ChuHoSo", row["ChuHoSo"]) for row in dossiers}  # no old key's left


def test_a_warehouse_from_before_key_ids_gets_the_column_and_keeps_its_loads(warehouse_url, hostile, dossiers,
                                                                            tmp_path):
    ensure_schema(warehouse_url)
    hostile.serve_pages("dossiers", DAY, _texts(dossiers), PAGE_SIZE)
    landed = land(fetch_day(Portal(hostile.url, TOKEN, page_size=PAGE_SIZE), "dossiers", DAY, tmp_path),
                  tmp_path, "dossiers", DAY)
    with psycopg.connect(warehouse_url) as conn:
        first = load_extract(conn, "dossiers", DAY, landed, KEY)
        conn.execute("alter table raw.load_ledger drop column pseudonym_key_id")  # as an older chiso left it
    ensure_schema(warehouse_url)
    assert _query(warehouse_url, "select load_id, status, pseudonym_key_id from raw.load_ledger") == [
        (first.load_id, "loaded", None)]
    with psycopg.connect(warehouse_url) as conn:  # a load from before key ids is not redone for that alone
        assert load_extract(conn, "dossiers", DAY, landed, KEY).skipped


# ----------------------------------------------------------------------------- the newer extract wins


def _landed_extract(hostile, root: Path, rows: list[dict], generated_at: str | None) -> Path:
    manifest = hostile.serve_pages("dossiers", DAY, _texts(rows), PAGE_SIZE)
    if generated_at:
        manifest["generated_at"] = generated_at
    hostile.routes["/api/v1/dossiers/manifest"] = (200, {}, json.dumps(manifest).encode())
    return land(fetch_day(Portal(hostile.url, TOKEN, page_size=PAGE_SIZE), "dossiers", DAY, root),
                root, "dossiers", DAY)


def _two_extracts(hostile, dossiers, root, older_at="2024-11-16T01:00:00+07:00",
                  newer_at="2024-11-16T05:00:00+07:00"):
    older = _landed_extract(hostile, root, dossiers[:20], older_at)
    newer = _landed_extract(hostile, root, dossiers[:25], newer_at)
    return older, newer


def _loaded(url):
    return _query(url, "select checksum, rows_loaded from raw.load_ledger where status = 'loaded'")


@pytest.mark.parametrize("order", ["older_first", "newer_first", "concurrently"])
def test_the_newer_extract_wins_whatever_order_the_loads_finish_in(warehouse_url, hostile, dossiers, tmp_path,
                                                                   order):
    import threading

    older, newer = _two_extracts(hostile, dossiers, tmp_path)
    ensure_schema(warehouse_url)

    def load(landed):
        with psycopg.connect(warehouse_url) as conn:
            return load_extract(conn, "dossiers", DAY, landed, KEY)

    if order == "concurrently":
        threads = [threading.Thread(target=load, args=(landed,)) for landed in (older, newer)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        for landed in ((older, newer) if order == "older_first" else (newer, older)):
            load(landed)

    newer_checksum = json.loads((newer / "manifest.json").read_text())["sha256"]
    assert _loaded(warehouse_url) == [(newer_checksum, 25)]
    assert _query(warehouse_url, "select count(*) from raw.portal__dossiers") == [(25,)]
    statuses = sorted(s for (s,) in _query(warehouse_url, "select status from raw.load_ledger"))
    assert statuses in (["loaded", "stale"], ["loaded", "superseded"])  # the older one: recorded either way
    ledger = _query(warehouse_url, "select count(*) from raw.load_ledger")
    again = load(older)  # a re-run of the older extract changes nothing
    assert again.skipped and again.stale
    assert _loaded(warehouse_url) == [(newer_checksum, 25)]
    assert _query(warehouse_url, "select count(*) from raw.load_ledger") == ledger


def test_the_same_generation_time_is_settled_by_checksum_and_no_time_means_the_later_load(warehouse_url, hostile,
                                                                                         dossiers, tmp_path):
    same = "2024-11-16T05:00:00+07:00"
    first, second = _two_extracts(hostile, dossiers, tmp_path / "same", same, same)
    winner = max((first, second), key=lambda landed: json.loads((landed / "manifest.json").read_text())["sha256"])
    ensure_schema(warehouse_url)
    for order in ((first, second), (second, first)):
        for landed in order:
            with psycopg.connect(warehouse_url) as conn:
                load_extract(conn, "dossiers", DAY, landed, KEY)
        assert _loaded(warehouse_url)[0][0] == json.loads((winner / "manifest.json").read_text())["sha256"]
    # Extracts that do not say when they were generated: the later load wins, as before.
    undated_old, undated_new = _two_extracts(hostile, dossiers, tmp_path / "undated", None, None)
    url = warehouse_url
    with psycopg.connect(url) as conn:
        conn.execute("delete from raw.quarantine; delete from raw.portal__dossiers; delete from raw.load_ledger")
        conn.commit()
        load_extract(conn, "dossiers", DAY, undated_new, KEY)
        load_extract(conn, "dossiers", DAY, undated_old, KEY)
    assert _loaded(url)[0][1] == 20


def test_a_generation_time_without_its_offset_fails_the_fetch(hostile, dossiers, tmp_path):
    manifest = hostile.serve_pages("dossiers", DAY, _texts(dossiers), PAGE_SIZE)
    hostile.routes["/api/v1/dossiers/manifest"] = (200, {}, json.dumps({**manifest,
                                                                         "generated_at": "2024-11-16 05:00"}).encode())
    with pytest.raises(PortalError, match="with a generated_at that is not an ISO 8601 time with its offset"):
        fetch_day(Portal(hostile.url, TOKEN, page_size=PAGE_SIZE), "dossiers", DAY, tmp_path)


# ----------------------------------------------------------------------------- what already held, and must keep holding


def test_a_backend_killed_mid_copy_loses_and_duplicates_nothing_on_the_re_run(warehouse_url, hostile, dossiers,
                                                                              tmp_path, monkeypatch):
    from chiso.ingest import load as load_module

    texts = _texts(dossiers)
    texts[5] = HOSTILE_ROWS["nul_in_text"][0](dossiers[5])  # a quarantined row too
    hostile.serve_pages("dossiers", DAY, texts, PAGE_SIZE)
    ensure_schema(warehouse_url)
    landed = land(fetch_day(Portal(hostile.url, TOKEN, page_size=PAGE_SIZE), "dossiers", DAY, tmp_path),
                  tmp_path, "dossiers", DAY)
    page = load_module._RowWriter.page
    pages_seen = []

    def killed_on_the_second_page(self, raw_page):
        pages_seen.append(raw_page.source_file)
        if len(pages_seen) == 2:  # the first page's rows are already in the COPY
            with psycopg.connect(warehouse_url, autocommit=True) as admin:
                admin.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                              "where datname = current_database() and pid <> pg_backend_pid() "
                              "and query ilike 'copy %%'")
        return page(self, raw_page)

    monkeypatch.setattr(load_module._RowWriter, "page", killed_on_the_second_page)
    with pytest.raises(psycopg.OperationalError), psycopg.connect(warehouse_url) as conn:
        load_extract(conn, "dossiers", DAY, landed, KEY)
    assert _query(warehouse_url, "select count(*) from raw.portal__dossiers") == [(0,)]
    assert _query(warehouse_url, "select count(*) from raw.load_ledger") == [(0,)]
    monkeypatch.setattr(load_module._RowWriter, "page", page)
    with psycopg.connect(warehouse_url) as conn:
        result = load_extract(conn, "dossiers", DAY, landed, KEY)
    assert (result.rows_loaded, result.rows_quarantined) == (29, 1)
    assert _query(warehouse_url, "select count(*), count(distinct line_number) from raw.portal__dossiers") == [
        (29, 29)]


def test_concurrent_identical_loads_load_once(warehouse_url, hostile, dossiers, tmp_path):
    import threading

    hostile.serve_pages("dossiers", DAY, _texts(dossiers), PAGE_SIZE)
    ensure_schema(warehouse_url)
    landed = land(fetch_day(Portal(hostile.url, TOKEN, page_size=PAGE_SIZE), "dossiers", DAY, tmp_path),
                  tmp_path, "dossiers", DAY)
    results = []

    def load():
        with psycopg.connect(warehouse_url) as conn:
            results.append(load_extract(conn, "dossiers", DAY, landed, KEY))

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.skipped for r in results) == [False, True, True]
    assert _query(warehouse_url, "select count(*), status from raw.load_ledger group by status") == [(1, "loaded")]
    assert _query(warehouse_url, "select count(*) from raw.portal__dossiers") == [(30,)]


def test_an_unknown_column_named_like_a_person_is_counted_not_named(warehouse_url, hostile, dossiers, tmp_path):
    from chiso.ingest.validate import ContractError

    texts = _texts(dossiers)
    texts[2] = _texts([{**dossiers[2], "Nguyễn Văn Ẩn": 1, "TrangThai": 4}])[0]
    hostile.serve_pages("dossiers", DAY, texts, PAGE_SIZE)
    ensure_schema(warehouse_url)
    with pytest.raises(ContractError) as stopped:
        _ingest(hostile, tmp_path, warehouse_url)
    landed = next(tmp_path.glob("portal/dossiers/business_date=2024-11-15/sha256=*"))
    assert str(stopped.value) == ("dossiers: the extract has columns the contract does not know: TrangThai, "
                                  f"1 more whose names are not identifiers (line 3 of 2024-11-15, in "
                                  f"{landed}/page-00001.json)")


def test_a_retry_after_of_a_day_is_not_waited_out():
    from urllib3 import HTTPResponse

    from chiso.ingest.fetch import MAX_RETRY_AFTER_SECONDS, _Retry

    retry = _Retry(total=5, respect_retry_after_header=True)
    asks_for_a_day = HTTPResponse(body=b"", headers={"Retry-After": "86400"}, status=503)
    asks_for_a_second = HTTPResponse(body=b"", headers={"Retry-After": "1"}, status=503)
    assert retry.get_retry_after(asks_for_a_day) == MAX_RETRY_AFTER_SECONDS == 120
    assert retry.get_retry_after(asks_for_a_second) == 1


@pytest.mark.parametrize("transfer", ["pages", "files"])
@pytest.mark.parametrize("retry_after", ["100", None])
def test_retries_do_not_outlast_the_requests_deadline(hostile, tmp_path, transfer, retry_after):
    """A portal answering 503 for ever, asking for 100 s between tries (or leaving urllib3 to back off:
    0.5, 1, 2, 4, 8 s): without the deadline counting the waits, 5 retries would take 500 s (or 15 s).
    The request is abandoned as soon as the next wait would pass its deadline (3 s here)."""
    import time

    from chiso.simulator.hostile import file_path

    headers = {"Retry-After": retry_after} if retry_after else {}
    unavailable = (503, headers, b"Service Unavailable")
    hostile.routes["/api/v1/dossiers/manifest"] = unavailable
    hostile.routes[file_path("dossiers", DAY) + ".manifest"] = unavailable
    portal = Portal(hostile.url, TOKEN, transfer=transfer, request_deadline=3.0, day_deadline=60.0)
    started = time.monotonic()
    with pytest.raises(PortalError) as abandoned:
        fetch_day(portal, "dossiers", DAY, tmp_path)
    message = str(abandoned.value)
    assert message.startswith(f"GET {hostile.url}/api/v1/dossiers/"), message
    assert "(HTTP 503), past the request's deadline of 3 s (CHISO_PORTAL_REQUEST_DEADLINE_SECONDS, dossiers of " \
           "2024-11-15): the request is abandoned" in message, message
    if retry_after:
        assert "the next retry would come after 100.0 s" in message and len(hostile.requests) == 1
    else:
        assert 2 <= len(hostile.requests) <= 4, hostile.requests  # 0.5 + 1 s waited, not the 2 s after them
    assert time.monotonic() - started < 60  # (generous: the point is 500 s or 15 s without the deadline)


@pytest.mark.parametrize("body, content_type, quoted", [
    (b'{"error": "khong tim thay ho so cua Nguyen Van An, 0912345678"}', "application/json",
     "a JSON body (not quoted)"),
    (b"<html><body>Nguyen Van An 0912345678</body></html>", "text/html", "an HTML page (not quoted)"),
    ("Lỗi:\nhồ sơ của an.nguyen@example.vn, số 0912345678, không tìm thấy. ".encode() * 40, "text/plain",
     "'Lỗi: hồ sơ của [e-mail] số [number], không tìm thấy. Lỗi: hồ sơ của [e-mail] số [number], "),
])
def test_an_error_body_is_quoted_short_on_one_line_and_never_as_json(hostile, tmp_path, body, content_type, quoted):
    hostile.routes["/api/v1/dossiers/manifest"] = (404, {"Content-Type": content_type}, body)
    with pytest.raises(PortalError) as failed:
        fetch_day(Portal(hostile.url, TOKEN), "dossiers", DAY, tmp_path)
    message = str(failed.value)
    assert message.startswith(f"GET {hostile.url}/api/v1/dossiers/manifest?ngay=2024-11-15 answered HTTP 404: "
                              f"{quoted}"), message
    assert "\n" not in message and len(message) < 400, message
    for value in ("0912345678", "an.nguyen@example.vn"):
        assert value not in message


@pytest.mark.parametrize("fault", ["malformed_dates", "malformed_codes", "unknown_status"])
def test_the_simulators_bad_rows_are_still_quarantined_with_reasons_that_hold_no_value(warehouse_url, tmp_path,
                                                                                        fault):
    from chiso.simulator.faults import FaultSchedule
    from chiso.simulator.server import RunningSimulator

    portal = PortalSimulator(11, get_scenario("cu_kuin_2024"), FaultSchedule.parse(f"*={fault}"))
    ensure_schema(warehouse_url)
    with RunningSimulator(portal, TOKEN) as running:
        fetched = fetch_day(Portal(running.url, TOKEN, page_size=100), "dossiers", DAY, tmp_path)
    landed = land(fetched, tmp_path, "dossiers", DAY)
    with psycopg.connect(warehouse_url) as conn:
        result = load_extract(conn, "dossiers", DAY, landed, KEY)
    assert result.rows_quarantined > 0
    assert result.rows_loaded + result.rows_quarantined == result.rows_in_manifest
    sent = {row["MaHoSo"]: row for row in portal.rows("dossiers", DAY)}
    for reason, original in _query(warehouse_url, "select reason, original_text from raw.quarantine"):
        row = sent[json.loads(original)["MaHoSo"]]
        assert reason and "'" not in reason and "=" not in reason, reason  # "Field: a text of 10 characters …"
        for field in ("ChuHoSo", "SoGiayToChuHoSo", "SoDienThoai", "Email"):
            assert not row.get(field) or row[field] not in original + reason


def test_a_body_retried_for_being_unreadable_stops_before_a_wait_past_the_entity_days_deadline(hostile, tmp_path,
                                                                                               dossiers):
    """A page that is always an HTML page is tried again after 1 s, then would be after 2 s: with the
    entity-day's deadline 2.5 s away, the second wait is not taken (tenacity's tries count against it too)."""
    import time

    hostile.serve_pages("dossiers", DAY, _texts(dossiers), PAGE_SIZE)
    hostile.routes["/api/v1/dossiers?page=1"] = (200, {"Content-Type": "text/html"}, b"<html>Bao tri</html>")
    portal = Portal(hostile.url, TOKEN, page_size=PAGE_SIZE, request_deadline=60.0, day_deadline=2.5)
    started = time.monotonic()
    with pytest.raises(PortalError) as abandoned:
        fetch_day(portal, "dossiers", DAY, tmp_path)
    message = str(abandoned.value)
    assert message == (f"GET {hostile.url}/api/v1/dossiers?ngay=2024-11-15&page=1&page_size={PAGE_SIZE}: the next "
                       f"retry would come "
                       f"after 2.0 s (the body was cut short or unreadable), past its entity-day's deadline of "
                       f"2.5 s (CHISO_PORTAL_DAY_DEADLINE_SECONDS, dossiers of 2024-11-15): the request is "
                       f"abandoned"), message
    assert len(hostile.requests) == 3  # the manifest, then page 1 twice
    assert time.monotonic() - started < 2.5
