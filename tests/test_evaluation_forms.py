"""Every form in which the portal's evaluation is published loads, and its form is recorded: full, score-only
blocks, summary-only, agency-only and the national province overview (tests/fixtures/README.md)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import psycopg
import pytest

from chiso.ingest.evaluations import EvaluationError, load_evaluation, parse_evaluation
from chiso.core.warehouse import ensure_schema

SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference"
REFERENCE = SHARED / "gialai-2026-10-10.json"
NATIONAL = SHARED / "national-2026-09-17.json"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "evaluations"
AGENCIES_SUMMARY = FIXTURES / "crawler766-gialai-agencies-summary-2026-09-23.json"
AGENCIES_DETAIL = FIXTURES / "crawler766-gialai-agencies-detail-2026-09-24.json"
needs_reference = pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference is not beside the checkout")


def write(tmp_path: Path, name: str, document: dict) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


def test_an_agency_only_capture_with_score_only_blocks_is_read_as_such():
    capture, _ = parse_evaluation(AGENCIES_DETAIL)
    assert (capture.form, capture.unit_scope, capture.detail) == ("agency-only, score-only blocks", "agencies",
                                                                  "score-only blocks")
    assert capture.overview is None and capture.declared_units is None
    # The excerpt keeps the original's count: 14 agencies, of which it holds 3.
    assert (capture.declared_agencies, len(capture.units)) == (14, 3)
    assert capture.ledger_entity == "evaluations/H21/year-2026/agencies"
    assert str(capture.evaluated_on) == "2026-09-24"


def test_a_summary_only_capture_is_read_with_the_populations_its_overview_declares():
    capture, _ = parse_evaluation(AGENCIES_SUMMARY)
    assert (capture.form, capture.detail) == ("agency-only, summary-only", "summary-only")
    assert (capture.period_type, capture.period_number) == ("month", 3)
    assert (capture.declared_units, capture.declared_agencies, capture.declared_communes) == (149, 14, 135)
    assert len(capture.units) == 14 and not any("componentIndicators" in unit for unit in capture.units)


@needs_reference
def test_the_full_form_and_the_province_overview_are_read(tmp_path):
    full, _ = parse_evaluation(REFERENCE)
    assert (full.form, full.declared_units, full.declared_agencies, len(full.units)) == ("full", 149, 14, 149)
    national, _ = parse_evaluation(NATIONAL)
    assert (national.form, national.province_code, len(national.units)) == ("province overview", "national", 34)
    assert str(national.evaluated_on) == "2026-09-17"  # from the file name: the overview carries no date
    undated = write(tmp_path, "national.json", json.loads(NATIONAL.read_text(encoding="utf-8")))
    with pytest.raises(EvaluationError, match="no extraction date"):
        parse_evaluation(undated)
    assert str(parse_evaluation(undated, evaluated_on=full.evaluated_on)[0].evaluated_on) == "2026-10-10"


@needs_reference
def test_score_only_blocks_and_summary_units_load_where_they_were_refused(tmp_path):
    document = json.loads(REFERENCE.read_text(encoding="utf-8"))
    score_only = copy.deepcopy(document)
    for unit in score_only["unitsDetail"]:
        block = unit["componentIndicators"]["MDHL_MucDoHaiLong"]
        unit["componentIndicators"]["MDHL_MucDoHaiLong"] = {"score": block["score"], "maxScore": block["maxScore"]}
    assert parse_evaluation(write(tmp_path, "score-only.json", score_only))[0].form == "score-only blocks"
    summary = copy.deepcopy(document)
    for unit in summary["unitsDetail"]:
        del unit["componentIndicators"]
    assert parse_evaluation(write(tmp_path, "summary.json", summary))[0].form == "summary-only"
    # What the schema still refuses: a listed sub-indicator without its counts, a capture without units.
    broken = copy.deepcopy(document)
    del broken["unitsDetail"][3]["componentIndicators"]["MDSH_SoHoaHoSo"]["metrics"][0]["numerator"]
    with pytest.raises(EvaluationError, match="numerator"):
        parse_evaluation(write(tmp_path, "broken.json", broken))
    with pytest.raises(EvaluationError):
        parse_evaluation(write(tmp_path, "empty.json", {"metadata": document["metadata"]}))


@needs_reference
def test_each_form_loads_once_and_records_its_form(make_database):
    url = make_database("chiso_forms")
    ensure_schema(url)
    files = [REFERENCE, NATIONAL, AGENCIES_SUMMARY, AGENCIES_DETAIL]
    with psycopg.connect(url) as conn:
        first = [load_evaluation(conn, path) for path in files]
        again = [load_evaluation(conn, path) for path in files]
        captures = conn.execute("""
            select source_file, form, unit_scope, detail, units_in_capture, declared_units, declared_agencies,
                   (select count(*) from raw.portal__evaluations e where e.load_id = c.load_id)
            from raw.portal__evaluation_captures c order by load_id""").fetchall()
    assert not any(answer["skipped"] for answer in first) and all(answer["skipped"] for answer in again)
    assert captures == [
        ("gialai-2026-10-10.json", "full", "all units", "full", 149, 149, 14, 149),
        ("national-2026-09-17.json", "province overview", "provinces", "summary-only", 34, None, None, 34),
        (AGENCIES_SUMMARY.name, "agency-only, summary-only", "agencies", "summary-only", 14, 149, 14, 14),
        (AGENCIES_DETAIL.name, "agency-only, score-only blocks", "agencies", "score-only blocks", 3, None, 14, 3),
    ]


def test_an_agency_only_and_a_commune_only_capture_of_one_day_do_not_replace_each_other(make_database, tmp_path):
    url = make_database("chiso_forms_scope")
    ensure_schema(url)
    agencies = json.loads(AGENCIES_DETAIL.read_text(encoding="utf-8"))
    communes = {"metadata": agencies["metadata"], "count": 1,
                "communesDetail": [{**agencies["agenciesDetail"][0], "departmentCode": "H21.999",
                                    "childGroup": "COMMUNE"}]}
    with psycopg.connect(url) as conn:
        load_evaluation(conn, AGENCIES_DETAIL)
        assert load_evaluation(conn, write(tmp_path, "communes.json", communes))["form"] == \
            "commune-only, score-only blocks"
        assert conn.execute("select count(*) from raw.load_ledger where status = 'loaded'").fetchone() == (2,)
        assert conn.execute("select count(*) from raw.portal__evaluations").fetchone() == (4,)
