"""The loader's fast lane (chiso.ingest.typed_decode) is sound: it accepts only rows the contract
accepts, and re-encodes them to the same JSON value the slow lane would store; clean simulator pages
of every entity take it; the raw layer is the same whichever lane a page took."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from itertools import cycle, islice

import msgspec
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chiso.contract import get_entity
from chiso.contract.entities import ENTITIES
from chiso.contract.model import is_portal_datetime
from chiso.ingest import typed_decode
from chiso.ingest.load import load_extract
from chiso.ingest.pseudonymise import Pseudonymiser
from chiso.ingest.validate import row_problems
from chiso.simulator.scenarios import get_scenario
from chiso.simulator.server import PortalSimulator
from chiso.contract import sha256_of_rows
from chiso.core.warehouse import ensure_schema

PSEUDONYMISER = Pseudonymiser("typed-decode-test")


def _sample_rows(entity: str, wanted: int = 25) -> list[dict]:
    """Up to ``wanted`` simulated rows of ``entity``, from the first days that have any."""
    portal = PortalSimulator(5, get_scenario("reorg_2025" if entity == "unit_crosswalk" else "cu_kuin_2024"))
    start = date(2025, 6, 25) if entity == "unit_crosswalk" else date(2024, 1, 1)
    rows: list[dict] = []
    for offset in range(60):
        rows += portal.rows(entity, start + timedelta(days=offset)) or ()
        if len(rows) >= wanted:
            break
    return rows[:wanted]


SAMPLES = {entity: _sample_rows(entity) for entity in ENTITIES}


def _page(rows) -> str:
    return json.dumps({"page": 1, "total_pages": 1, "items": rows}, ensure_ascii=False)


@pytest.mark.parametrize("entity", ENTITIES)
def test_every_entity_has_a_fast_lane_and_clean_pages_take_it(entity):
    typed = typed_decode.typed_decoders(entity)
    assert typed is not None, f"{entity}: the contract's schema no longer translates; every page would go slowly"
    rows = SAMPLES[entity]
    assert rows, f"the simulator gave no {entity} rows"
    records = typed.page.decode(_page(rows)).items
    assert [json.loads(typed_decode.encoder().encode(r)) for r in records] == rows
    lines = [typed.row.decode(json.dumps(row, ensure_ascii=False) + "\n") for row in rows]  # whole-day files
    assert [json.loads(typed_decode.encoder().encode(r)) for r in lines] == rows


def test_portal_moments_are_exactly_the_real_ones():
    """Every yyyyMMdd of 1900-2099 (and impossible months and days), at edge times: the fast lane's
    pattern matches exactly the strings is_portal_datetime accepts."""
    moment = re.compile(typed_decode.PORTAL_MOMENT)
    checked = 0
    for year in range(1900, 2100):
        for month in range(0, 14):
            for day in range(0, 33):
                for time in ("000000", "235959", "240000", "126000", "120060"):
                    text = f"{year:04d}{month:02d}{day:02d}{time}"
                    assert bool(moment.search(text)) == is_portal_datetime(text), text
                    checked += 1
    assert checked == 200 * 14 * 33 * 5
    for text in ("2024022912000", "202402291200000", "2024-02-29 1200", "２０２４０２２９１２００００", "20240229120000\n"):
        assert not moment.search(text)  # too short or long, not ASCII digits, a newline after


def _near_values(entity_name: str):
    """Values that look almost right for a column: the contract's own codes, neighbours of them,
    date-times that are nearly real, empty strings, and any JSON value."""
    entity = get_entity(entity_name)
    codes = sorted({value for allowed in entity.code_lists.values() for value in allowed}, key=repr) or [0]
    dates = st.builds(lambda y, m, d, h, s: f"{y:04d}{m:02d}{d:02d}{h:02d}00{s:02d}", st.integers(1899, 2101),
                      st.integers(0, 13), st.integers(0, 32), st.integers(0, 24), st.sampled_from([0, 59, 60]))
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.text(max_size=8)
        | st.floats(allow_nan=False),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=5)
    return st.one_of(dates, st.sampled_from(["", " ", None, 1.0, True, 1e300, 2**64, -1, "1"]),
                     st.sampled_from(codes), st.sampled_from(codes).map(lambda v: v + 1 if isinstance(v, int) else v + "x"),
                     json_values)


def _corrupt(entity_name: str):
    """One or two corruptions, mostly of the columns the contract is strict about (date-times,
    required columns, code lists) and of the objects inside lists."""
    entity = get_entity(entity_name)
    fields = list(entity.fields)
    strict = sorted({*entity.datetime_fields, *entity.required, *entity.code_lists}) or fields
    rows = SAMPLES[entity_name]
    nested = [name for name in fields if any(isinstance(r.get(name), list) and r[name] for r in rows)]
    index = st.integers(0, len(rows) - 1)
    return st.lists(st.one_of(
        st.tuples(st.just("set"), index, st.sampled_from(strict), _near_values(entity_name)),
        st.tuples(st.just("set"), index, st.sampled_from(fields), _near_values(entity_name)),
        st.tuples(st.just("drop"), index, st.sampled_from(fields), st.none()),
        st.tuples(st.just("add"), index, st.text(min_size=1, max_size=6), st.none()),
        st.tuples(st.just("nested"), index, st.sampled_from(nested or [None]), _near_values(entity_name)),
    ), min_size=1, max_size=2)


def _apply(rows: list[dict], corruptions) -> list[dict]:
    rows = json.loads(json.dumps(rows))
    for kind, index, name, value in corruptions:
        row = rows[index]
        if kind == "set":
            row[name] = value
        elif kind == "drop":
            row.pop(name, None)
        elif kind == "add":
            row[name] = value
        elif kind == "nested" and name:
            lists = [r[name] for r in rows if isinstance(r.get(name), list) and r[name]]
            item = lists[index % len(lists)][0] if lists else None
            if isinstance(item, dict) and item:
                item[sorted(item)[index % len(item)]] = value
    return rows


@pytest.mark.parametrize("entity", ENTITIES)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_what_the_fast_lane_accepts_the_contract_accepts_and_it_stores_the_same_value(entity, data):
    rows = _apply(SAMPLES[entity], data.draw(_corrupt(entity)))
    typed = typed_decode.typed_decoders(entity)
    try:
        records = typed.page.decode(_page(rows)).items
    except (msgspec.ValidationError, msgspec.DecodeError):
        return  # the slow lane takes the page: nothing to prove here
    personal = get_entity(entity).personal_fields
    encode = typed_decode.encoder().encode
    for row, record in zip(rows, records, strict=True):
        assert row_problems(get_entity(entity), row) == [], row
        for field in personal:
            value = getattr(record, typed.attribute[field])
            if value is not msgspec.UNSET:
                setattr(record, typed.attribute[field], PSEUDONYMISER.pseudonym(field, value))
        assert json.loads(encode(record)) == PSEUDONYMISER.apply(row, personal)


@pytest.fixture(scope="module")
def database(make_database):
    url = make_database("chiso_typed_decode")
    ensure_schema(url)
    return url


def _land(directory, rows, pages_of=10):
    directory.mkdir(parents=True)
    for number, start in enumerate(range(0, len(rows), pages_of), start=1):
        (directory / f"page-{number:05d}.json").write_text(_page(rows[start:start + pages_of]), encoding="utf-8")
    sha256, count = sha256_of_rows(rows)
    (directory / "manifest.json").write_text(json.dumps({"row_count": count, "sha256": sha256}))
    return directory


def _raw_layer(conn, table):
    return conn.execute(f"select line_number, source_file, record from raw.{table} order by line_number").fetchall(), \
        conn.execute("select line_number, reason, original_text::jsonb from raw.quarantine order by line_number").fetchall()


@pytest.mark.parametrize("entity", ["dossiers", "process_log", "feedback"])
def test_the_raw_layer_is_the_same_whichever_lane_a_page_takes(database, tmp_path, monkeypatch, entity):
    """Three pages: clean, one with a bad row (the slow lane quarantines it), one decomposed (NFD)."""
    import unicodedata

    rows = json.loads(json.dumps(list(islice(cycle(SAMPLES[entity]), 30))))
    bad = get_entity(entity).required[0]
    rows[14][bad] = None
    rows[25:] = [json.loads(unicodedata.normalize("NFD", json.dumps(r, ensure_ascii=False))) for r in rows[25:]]
    extract = _land(tmp_path / "landed", rows)
    table = get_entity(entity).raw_table
    seen = {}
    for lane in ("typed", "row by row"):
        if lane == "row by row":
            monkeypatch.setattr(typed_decode, "typed_decoders", lambda name: None)
        with psycopg.connect(database) as conn:
            conn.execute("truncate raw.quarantine, raw.load_ledger cascade")
            conn.execute(f"truncate raw.{table}")
            conn.commit()
            result = load_extract(conn, entity, date(2024, 1, 15), extract, PSEUDONYMISER, allow_new_columns=False)
            assert (result.rows_loaded, result.rows_quarantined) == (29, 1)
            seen[lane] = _raw_layer(conn, table)
    assert seen["typed"] == seen["row by row"]
    stored, quarantined = seen["typed"]
    assert [line for line, _, _ in stored] == [n for n in range(1, 31) if n != 15]
    assert [(line, reason) for line, reason, _ in quarantined] == [(15, f"missing required field {bad}")]
    assert all(unicodedata.is_normalized("NFC", json.dumps(record, ensure_ascii=False)) for _, _, record in stored)
