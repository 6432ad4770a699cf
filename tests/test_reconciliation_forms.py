"""Reconciliation of every published form, with its differences told apart: rule differences (our rule gives
another score from the same published counts), data differences (our dossiers' counts are not the published
ones) and publication inconsistencies (the publication disagrees with itself). Comparisons a capture's form does
not allow are "not published", never a match or a difference; ranks are compared only within the population
they were published over.

Real captures: ../shared/reference (full form, national overview) and tests/fixtures/evaluations (agency-only
with score-only blocks, agency-only summary). Synthetic captures (province H98) carry one inconsistency each."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from chiso.ingest.evaluations import load_evaluation
from chiso.transform.reconcile import main as reconcile_main
from chiso.transform.runner import run_dbt
from chiso.core.warehouse import ensure_schema

SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference"
REFERENCE = SHARED / "gialai-2026-10-10.json"
NATIONAL = SHARED / "national-2026-09-17.json"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "evaluations"
AGENCIES_SUMMARY = FIXTURES / "crawler766-gialai-agencies-summary-2026-09-23.json"
AGENCIES_DETAIL = FIXTURES / "crawler766-gialai-agencies-detail-2026-09-24.json"
SYNTHETIC = "synthetic-h98-2026-10-10.json"
pytestmark = pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference is not beside the checkout")
SELECTION = ["--select", "+mart_reconciliation_summary", "--indirect-selection", "cautious"]


def synthetic_unit(code, group, total, groups, on_time, publish, ckmb_block=None, rank=None, group_rank=None):
    """A unit of the full form with TDGQ and CKMB blocks (PUBLISH_ON_TIME its one listed sub-indicator).
    on_time = (received, on time, published ratio, published score); publish likewise for PUBLISH_ON_TIME."""
    received, in_time, tdgq_ratio, tdgq_score = on_time
    denominator, numerator, ratio, score = publish
    return {
        "departmentCode": code, "departmentName": f"Đơn vị thử {code}", "childGroup": group,
        "totalScore": total, "ratio": total, "groupScores": groups,
        "componentIndicators": {
            "TDGQ_TienDoGiaiQuyet": {"totalReceived": received, "totalOnTime": in_time,
                                     "totalOverdue": received - in_time, "ratio": tdgq_ratio, "score": tdgq_score,
                                     "maxScore": 20},
            "CKMB_CongKhaiMinhBach": {
                "score": score if ckmb_block is None else ckmb_block, "maxScore": 18, "ratio": None,
                "metrics": [{"code": "PUBLISH_ON_TIME", "name": "Tỷ lệ TTHC công bố đúng hạn", "numerator": numerator,
                             "denominator": denominator, "ratio": ratio, "score": score, "maxScore": 6}]},
        },
        "rank": rank, "groupRank": group_rank,
    }


def groups(ckmb, tdgq, rest):
    return {"CKMB": ckmb, "TDGQ": tdgq, "ONLINE": rest, "TTTT": 0, "MDSH": 0, "MDHL": 0}


def synthetic_capture() -> dict:
    """Five units; each of H98.02…H98.05 carries one kind of difference, H98.01 none.
    H98.02: its total is not the sum of its groups (70 against 69,5).
    H98.03: PUBLISH_ON_TIME's rate is not 30 ÷ 40 (80 published), its score follows that rate; its TDGQ group
            score is not its block's score; its ranks and H98.05's are swapped against their totals.
    H98.04: a rule difference: 10/40 scored 2,00 where the linear rule gives 1,50; rate and sums consistent.
    H98.05: its CKMB block score (3,00) is not the sum of its sub-scores (1,50)."""
    units = [
        synthetic_unit("H98.01", "AGENCY", 74.5, groups(4.5, 20, 50), (10, 10, 100, 20), (40, 30, 75, 4.5),
                       rank=1, group_rank=1),
        synthetic_unit("H98.02", "AGENCY", 70, groups(4.5, 15, 50), (20, 15, 75, 15), (40, 30, 75, 4.5),
                       rank=2, group_rank=2),
        synthetic_unit("H98.03", "COMMUNE", 63.8, groups(4.8, 19, 40), (10, 10, 100, 20), (40, 30, 80, 4.8),
                       rank=5, group_rank=3),
        synthetic_unit("H98.04", "COMMUNE", 52, groups(2, 20, 30), (10, 10, 100, 20), (40, 10, 25, 2),
                       rank=4, group_rank=2),
        synthetic_unit("H98.05", "COMMUNE", 43, groups(3, 20, 20), (10, 10, 100, 20), (40, 10, 25, 1.5),
                       ckmb_block=3, rank=3, group_rank=1),
    ]
    return {"metadata": {"province": "Tỉnh thử nghiệm", "provinceCode": "H98", "runDateStr": "10102026",
                         "timeType": "year", "year": 2026, "period": None, "extractedAt": "2026-10-10T07:00:00Z"},
            "overview": {"departmentName": "Tỉnh thử nghiệm", "departmentCode": "H98", "totalScore": 60.66},
            "totalUnitsCount": 5, "agencyCount": 2, "communeCount": 3, "unitsDetail": units}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("captures") / SYNTHETIC
    path.write_text(json.dumps(synthetic_capture(), ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reconciled(make_database, synthetic):
    url = make_database("chiso_reconcile_forms")
    ensure_schema(url)
    with psycopg.connect(url) as conn:
        for path in (REFERENCE, NATIONAL, AGENCIES_SUMMARY, AGENCIES_DETAIL, synthetic):
            load_evaluation(conn, path)
    run_dbt(["build", *SELECTION], url)
    return url


def query(url, sql, params=None):
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def summary(url, source_file):
    rows = query(url, """
        select kind, compared, matched, differed, not_published, not_compared
        from marts.mart_reconciliation_summary where source_file = %s""", (source_file,))
    return {kind: list(figures) for kind, *figures in rows}


def outcomes(url, source_file, kind, check_name):
    return dict(query(url, """
        select outcome, count(*) from marts.mart_reconciliation_checks
        where source_file = %s and kind = %s and check_name = %s group by 1""", (source_file, kind, check_name)))


def test_the_full_reference_has_no_rule_difference_and_no_inconsistency(reconciled):
    figures = summary(reconciled, REFERENCE.name)
    rule_compared, rule_matched, rule_differed, _, rule_tied = figures["rule"]
    assert rule_differed == 0 and rule_matched == rule_compared
    # The 2,228 CKMB, TDGQ, MDSH and MDHL sub-scores and the 149 ONLINE scores; the ranks of untied totals.
    assert outcomes(reconciled, REFERENCE.name, "rule", "sub-score from published counts") == {"match": 2228 + 149}
    assert rule_tied == query(reconciled, "select count(*) filter (where is_tied) + count(*) filter (where is_tied_in_group) "
                                          "from marts.mart_rank_reconciliation where province_code = 'H21' and form = 'full'")[0][0] > 0
    assert figures["publication"][2] == 0 and figures["publication"][0] > 149 * 6
    # No dossiers of ours here: every data comparison is "not compared", none is a match or a difference.
    assert figures["data"][:3] == [0, 0, 0] and figures["data"][4] > 0


def test_an_agency_only_capture_compares_no_rank_published_among_all_units(reconciled):
    name = AGENCIES_DETAIL.name
    assert outcomes(reconciled, name, "rule", "rank among all units") == {"not published": 3}
    # The excerpt holds 3 of the 14 agencies its ranks within the group were published among.
    assert outcomes(reconciled, name, "rule", "rank within its group") == {"not published": 3}
    assert outcomes(reconciled, name, "publication", "rank follows the totals") == {"not published": 3}
    assert query(reconciled, "select count(*) from marts.mart_rank_reconciliation where form = %s "
                             "and (rank is not null or group_rank is not null)", ("agency-only, score-only blocks",)) == [(0,)]
    # Score-only MDHL blocks: their sub-scores and counts are not published; the rest is compared and matches.
    sub_scores = query(reconciled, """
        select item, outcome, count(*) from marts.mart_reconciliation_checks
        where source_file = %s and check_name = 'sub-score from published counts' group by 1, 2""", (name,))
    assert ("MDHL sub-indicators", "not published", 3) in sub_scores
    assert {outcome for _, outcome, _ in sub_scores} == {"match", "not published"}
    assert sum(n for item, outcome, n in sub_scores if outcome == "match") == 3 * (4 + 7 + 1 + 1)
    assert summary(reconciled, name)["publication"][2] == 0


def test_a_summary_capture_compares_group_ranks_within_the_whole_group_it_holds(reconciled):
    name = AGENCIES_SUMMARY.name
    assert outcomes(reconciled, name, "rule", "rank among all units") == {"not published": 14}
    # 11 of the 14 agencies share the total 16,00: only the 3 untied group ranks are judged by our rule,
    # and every one of the 14 lies among the ranks its total occupies.
    assert outcomes(reconciled, name, "rule", "rank within its group") == {"match": 3, "not compared": 11}
    assert outcomes(reconciled, name, "publication", "group rank follows the totals") == {"match": 14}
    # Totals against their groups: the 14 agencies and the province's overview (whose ONLINE is labelled CLGQ).
    assert outcomes(reconciled, name, "publication", "total against the sum of its groups") == {"match": 15}
    assert outcomes(reconciled, name, "rule", "sub-score from published counts") == {"not published": 14 * 5}


def test_the_national_overview_compares_its_totals_and_nothing_it_does_not_publish(reconciled):
    name = NATIONAL.name
    assert outcomes(reconciled, name, "publication", "total against the sum of its groups") == \
        {"match": 34, "not published": 1}  # the nation's own overview publishes no group scores
    figures = summary(reconciled, name)
    assert figures["rule"][:3] == [0, 0, 0] and figures["rule"][3] == 34 * 7


def test_each_inconsistency_is_the_publications_and_the_rule_difference_is_the_rules(reconciled):
    differences = query(reconciled, """
        select kind, unit_code, check_name, coalesce(item, '') from marts.mart_reconciliation_checks
        where source_file = %s and outcome = 'differ' order by 1, 2, 3""", (SYNTHETIC,))
    assert differences == [
        ("publication", "H98.02", "total against the sum of its groups", ""),
        ("publication", "H98.03", "group rank follows the totals", "COMMUNE"),
        ("publication", "H98.03", "group score against its block", "TDGQ"),
        ("publication", "H98.03", "rank follows the totals", ""),
        ("publication", "H98.03", "rate against numerator ÷ denominator", "PUBLISH_ON_TIME"),
        ("publication", "H98.05", "block against the sum of its sub-scores", "CKMB"),
        ("publication", "H98.05", "group rank follows the totals", "COMMUNE"),
        ("publication", "H98.05", "rank follows the totals", ""),
        ("rule", "H98.04", "sub-score from published counts", "PUBLISH_ON_TIME"),
    ]
    # H98.03's score follows its published rate, not its counts: not a rule difference, and not a match.
    assert query(reconciled, """
        select outcome, note from marts.mart_reconciliation_checks
        where source_file = %s and unit_code = 'H98.03' and kind = 'rule' and item = 'PUBLISH_ON_TIME'""",
                 (SYNTHETIC,)) == [("not compared", "the published rate disagrees with its own counts")]
    assert query(reconciled, """
        select unit_code, outcome from marts.mart_reconciliation_checks
        where source_file = %s and check_name = 'rank among all units' order by 1""", (SYNTHETIC,)) == [
        ("H98.01", "match"), ("H98.02", "match"), ("H98.03", "not compared"), ("H98.04", "match"),
        ("H98.05", "not compared")]


def test_the_summary_keeps_the_checks_figures_and_names_the_first_differences(reconciled):
    by_check = query(reconciled, """
        select load_id, kind, count(*) filter (where outcome in ('match', 'differ')),
               count(*) filter (where outcome = 'differ'), count(*) filter (where outcome = 'not published')
        from marts.mart_reconciliation_checks group by 1, 2 order by 1, 2""")
    in_summary = query(reconciled, "select load_id, kind, compared, differed, not_published "
                                   "from marts.mart_reconciliation_summary where compared + not_published + "
                                   "not_compared > 0 order by 1, 2")
    assert by_check == in_summary
    (rule_examples, publication_examples), = query(reconciled, """
        select max(first_differences) filter (where kind = 'rule'), max(first_differences) filter (where kind = 'publication')
        from marts.mart_reconciliation_summary where source_file = %s""", (SYNTHETIC,))
    assert rule_examples == ("H98.04 sub-score from published counts PUBLISH_ON_TIME: published 2, expected 1.50")
    assert publication_examples.startswith("H98.02 total against the sum of its groups: published 70, expected 69.5; ")
    assert publication_examples.count(";") == 2


def test_the_command_prints_each_captures_figures_as_the_mart_keeps_them(reconciled, synthetic, capsys, monkeypatch):
    monkeypatch.setenv("CHISO_WAREHOUSE_URL", reconciled)
    assert reconcile_main([str(synthetic), str(AGENCIES_DETAIL)]) == 0
    printed = capsys.readouterr().out
    blocks = printed.split("\n\n")
    assert len(blocks) == 2 and blocks[0].startswith(f"{SYNTHETIC}: H98, year 2026, as of 10/10/2026; form: full")
    assert blocks[1].startswith(f"{AGENCIES_DETAIL.name}: H21, year 2026, as of 24/09/2026; "
                                "form: agency-only, score-only blocks")
    for block, name in zip(blocks, (SYNTHETIC, AGENCIES_DETAIL.name)):
        for kind, label in (("rule", "rule difference"), ("data", "data difference"),
                            ("publication", "publication inconsistency")):
            [line] = [line for line in block.splitlines() if line.strip().startswith(label)]
            assert [int(n.replace(",", "")) for n in line.split()[2:]] == summary(reconciled, name)[kind]
    assert "first rule differences: H98.04 sub-score from published counts PUBLISH_ON_TIME" in blocks[0]
    assert "first publication inconsistencys" not in printed and "first publication inconsistencies: H98.02" in blocks[0]
    assert "first" not in blocks[1]
    # A file that is not a published evaluation: one sentence, exit code 2, nothing loaded.
    assert reconcile_main([str(REFERENCE.parent / "README.md")]) == 2
    assert "not a published evaluation document" in capsys.readouterr().err
