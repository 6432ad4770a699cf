"""Property: whatever random corruption an extract suffers, the loader never crashes and never loses
a row. Either the load stops cleanly with a contract or landing error and writes nothing, or every
row of the manifest is accounted for: loaded + quarantined = manifest."""

from __future__ import annotations

import json
from datetime import date

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chiso.ingest.landing import LandingError
from chiso.ingest.load import load_extract
from chiso.ingest.pseudonymise import Pseudonymiser
from chiso.ingest.validate import ContractError
from chiso.simulator.scenarios import get_scenario
from chiso.simulator.server import PortalSimulator
from chiso.contract import canonical_line, get_entity, sha256_of_rows
from chiso.warehouse import ensure_schema

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
