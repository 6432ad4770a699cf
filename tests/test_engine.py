"""The 766 engine on our own dossier data, checked against an independent calculation.

The simulator plays the portal: it publishes each province's year-to-date evaluation computed in Python
from its generation arrays (chiso.simulator.evaluation), never from the extracts nor with our dbt models.
Here six weeks of Cư Kuin's extracts (every entity) go through the real fetch → land → load path into
a throw-away warehouse, dbt builds the engine, and every number the portal publishes must come out of
our marts: sub-indicator counts and scores, group scores, totals and ranks, for the year to date and for
a month.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import requests

from chiso.orchestration.backfill import backfill, days_between
from chiso.ingest.evaluations import load_evaluation
from chiso.simulator.scenarios import get_scenario
from chiso.simulator.server import PortalSimulator, RunningSimulator
from chiso.transform.runner import run_dbt

SEED, SCENARIO, PROVINCE = 766, "cu_kuin_2024", "H15"
FIRST, MONTH_END, DAY = date(2024, 1, 1), date(2024, 1, 31), date(2024, 2, 14)
GROUPS = ("CKMB", "TDGQ", "ONLINE", "TTTT", "MDSH", "MDHL")


def query(url, sql, params=None):
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def published(day: date) -> dict:
    with RunningSimulator(PortalSimulator(SEED, get_scenario(SCENARIO)), "tok") as sim:
        answer = requests.get(f"{sim.url}/api/v1/evaluations", params={"ngay": day.isoformat(), "tinh": PROVINCE},
                              headers={"X-Api-Token": "tok"}, timeout=120)
    answer.raise_for_status()
    return answer.json()


def published_metrics(document: dict) -> dict[tuple[str, str], dict]:
    """(portal unit code, indicator code) → the published metric (sub-indicators with counts or scores)."""
    metrics = {}
    for unit in document["unitsDetail"]:
        for block in unit["componentIndicators"].values():
            for metric in block.get("metrics") or []:
                metrics[(unit["departmentCode"], metric["code"])] = metric
    return metrics


@pytest.fixture(scope="module")
def engine(make_database, tmp_path_factory):
    url = make_database("chiso_engine")
    loaded = backfill(url, SCENARIO, days_between(FIRST, DAY), seed=SEED)
    assert loaded["dossiers"] > 10_000 and loaded["feedback"] > 0 and loaded["procedure_publications"] > 0
    document = published(DAY)
    path = tmp_path_factory.mktemp("evaluation") / "evaluation.json"
    import json
    path.write_text(json.dumps(document), encoding="utf-8")
    with psycopg.connect(url) as conn:
        load_evaluation(conn, path)
    run_dbt(["build", "--select", "resource_type:seed", "--full-refresh", "--indirect-selection", "cautious"], url)
    run_dbt(["build", "--exclude", "resource_type:seed"], url)
    return {"url": url, "document": document, "path": path}


def test_every_published_count_and_score_comes_out_of_our_dossiers(engine):
    rows = query(engine["url"], """
        select unit_code, indicator_code, is_comparable, data_matches, counts_match,
               numerator, denominator, numerator_from_our_dossiers, denominator_from_our_dossiers
        from marts.mart_score_reconciliation""")
    assert len({r[0] for r in rows}) == 9  # the district and its 8 communes
    assert all(r[7] is not None for r in rows), "every published unit and indicator has a value of ours"
    mismatched_scores = [r[:2] for r in rows if r[2] and not r[3]]
    mismatched_counts = [(r[0], r[1], f"{r[5]}/{r[6]}", f"{r[7]}/{r[8]}") for r in rows if r[4] is False]
    assert mismatched_scores == [] and mismatched_counts == []
    comparable = {r[1] for r in rows if r[2]}
    # Every scored CKMB, TDGQ, ONLINE, MDSH and MDHL sub-indicator is compared (TTTT publishes no sub-scores,
    # its counts are compared above).
    assert {"PUBLISH_ON_TIME", "PUBLIC_UPDATE_ON_TIME", "PUBLIC_CONTENT_FULL", "DOSSIER_SYNC", "ON_TIME", "ONLINE",
            "ORIGINAL_RESULT_AVAILABLE", "SO_HOA_GIAY_TO_GIAI_QUYET", "REUSED_DIGITIZED_DATA",
            "SYNCED_WITH_DVCQG_PERSONAL_STORAGE", "CITIZEN_DATA_CONNECTED_DOSSIER", "CITIZEN_DATA_CONNECTED_FORMALITY",
            "DOSSIER_RECEIVING_SATISFACTION", "PETITION_PROCESSING_ON_TIME",
            "PETITION_HANDLING_SATISFACTION"} <= comparable
    # The data is not degenerate: some dossiers are late, some procedures unpublished on time.
    on_time = [r for r in rows if r[1] == "ON_TIME"]
    assert any(r[7] < r[8] for r in on_time)


def test_group_scores_totals_classes_and_ranks_equal_the_published(engine):
    ours = {code: row for code, *row in query(engine["url"], """
        select u.portal_code, s.ckmb_score, s.tdgq_score, s.online_score, s.tttt_score, s.mdsh_score, s.mdhl_score,
               s.total_score, s.rank_in_peer_set, s.peer_count, s.class_name_vi
        from marts.fct_unit_scores as s join marts.dim_units as u using (unit_code)
        where s.business_date = %s and s.period_type = 'year' and u.unit_kind <> 'PROVINCE'""", (DAY,))}
    units = engine["document"]["unitsDetail"]
    assert set(ours) == {u["departmentCode"] for u in units}
    for unit in units:
        mine = ours[unit["departmentCode"]]
        for group, value in zip(GROUPS, mine[:6]):
            assert abs(value - Decimal(str(unit["groupScores"][group] or 0))) <= Decimal("0.01"), (unit["departmentCode"], group)
        assert abs(mine[6] - Decimal(str(unit["totalScore"]))) <= Decimal("0.01")
        assert (mine[7], mine[8]) == (unit["rank"], len(units))
        assert mine[9] == ("Xuất sắc" if mine[6] >= 90 else "Tốt" if mine[6] >= 80 else "Khá" if mine[6] >= 70
                           else "Trung bình" if mine[6] >= 50 else "Yếu")


def test_the_province_is_its_units_pooled_population(engine):
    """The province's figures are computed on the pooled dossiers of its units, never averaged, and equal
    the portal's own overview of the province."""
    rows = query(engine["url"], """
        select v.indicator_code, v.numerator, v.denominator, v.score,
               sum(c.numerator), sum(c.denominator), avg(c.score)
        from marts.fct_indicator_values as v
        join marts.dim_units as p on p.unit_code = v.unit_code and p.unit_kind = 'PROVINCE'
        join marts.fct_indicator_values as c
          on c.business_date = v.business_date and c.period_type = v.period_type and c.indicator_code = v.indicator_code
        join marts.dim_units as cu on cu.unit_code = c.unit_code and cu.unit_kind <> 'PROVINCE'
        where v.business_date = %s and v.period_type = 'year'
          and v.indicator_code in ('ON_TIME', 'DOSSIER_SYNC', 'ONLINE', 'SO_HOA_GIAY_TO_GIAI_QUYET', 'DOSSIER_ONLINE_PAYMENT')
        group by 1, 2, 3, 4""", (DAY,))
    assert len(rows) == 5
    for code, numerator, denominator, score, children_numerator, children_denominator, average in rows:
        assert (numerator, denominator) == (children_numerator, children_denominator), code
    ((total,),) = query(engine["url"], """
        select s.total_score from marts.fct_unit_scores as s join marts.dim_units as u using (unit_code)
        where s.business_date = %s and s.period_type = 'year' and u.unit_kind = 'PROVINCE'""", (DAY,))
    assert abs(total - Decimal(str(engine["document"]["overview"]["totalScore"]))) <= Decimal("0.01")


def test_a_month_as_of_its_last_day_equals_the_portals_evaluation_of_that_day(engine):
    """January as of 31/1 is the year to date as of 31/1: the simulator's evaluation of that day (not loaded,
    computed afresh) must equal our month values, sub-indicator by sub-indicator."""
    expected = published_metrics(published(MONTH_END))
    ours = {(code, indicator): (numerator, denominator, score) for code, indicator, numerator, denominator, score in query(
        engine["url"], """
        select u.portal_code, v.indicator_code, v.numerator, v.denominator, v.score
        from marts.fct_indicator_values as v join marts.dim_units as u using (unit_code)
        where v.business_date = %s and v.period_type = 'month'""", (MONTH_END,))}
    compared = 0
    for key, metric in expected.items():
        if metric["numerator"] is None:
            continue
        numerator, denominator, score = ours[key]
        assert (numerator, denominator) == (metric["numerator"], metric["denominator"]), key
        if metric["score"] is not None:
            assert abs(score - Decimal(str(metric["score"]))) <= Decimal("0.01"), key
        compared += 1
    assert compared >= 9 * 15


def test_our_dossiers_of_another_day_are_data_differences_never_rule_differences(engine):
    """The portal's evaluation of DAY agrees with our dossiers on every published count and score (data),
    with our rules (rule) and with itself (publication). The same publication dated the day before is
    compared with the dossiers of that day: its counts are a day ahead of ours, which reconciliation must
    call data differences while the rules and the publication still agree."""
    from datetime import timedelta

    from chiso.transform.reconcile import RECONCILIATION_MODELS, build_reconciliation, summaries

    url, earlier = engine["url"], DAY - timedelta(days=1)
    try:
        with psycopg.connect(url) as conn:
            on_the_day = load_evaluation(conn, engine["path"])
            a_day_early = load_evaluation(conn, engine["path"], evaluated_on=earlier)
        assert on_the_day["skipped"] and not a_day_early["skipped"]
        build_reconciliation(url)
        captures = summaries(url, [on_the_day["load_id"], a_day_early["load_id"]])
        assert [capture["evaluated_on"] for capture in captures] == [DAY, earlier]
        figures = {(capture["evaluated_on"], kind): entry["figures"] for capture in captures
                   for kind, entry in capture["kinds"].items()}
        assert figures[(DAY, "data")]["compared"] >= 9 * 15 and figures[(DAY, "data")]["differed"] == 0
        assert figures[(earlier, "data")]["differed"] > 0
        assert figures[(earlier, "data")]["compared"] == figures[(DAY, "data")]["compared"]
        for day in (DAY, earlier):
            assert figures[(day, "rule")]["differed"] == 0 and figures[(day, "rule")]["compared"] > 0
            assert figures[(day, "publication")]["differed"] == 0
        assert captures[1]["kinds"]["data"]["first_differences"]
    finally:
        with psycopg.connect(url) as conn:
            conn.execute("delete from raw.portal__evaluations where business_date = %s", (earlier,))
            conn.execute("delete from raw.portal__evaluation_captures where business_date = %s", (earlier,))
            conn.execute("update raw.load_ledger set status = 'superseded' "
                         "where entity like 'evaluations/%%' and business_date = %s", (earlier,))
        run_dbt(["build", "--select", *RECONCILIATION_MODELS], url)


@pytest.mark.parametrize("indicator, period, kind", [("ON_TIME", "month", "COMMUNE"), ("ONLINE", "year", "PROVINCE")])
def test_the_dossiers_behind_a_value_add_up_to_it(engine, indicator, period, kind):
    """explain_indicator lists the value's population dossier by dossier (pooled for a province)."""
    from chiso.publish.explain import explain

    units = query(engine["url"], """
        select v.unit_code, v.numerator, v.denominator from marts.fct_indicator_values as v
        join marts.dim_units as u using (unit_code)
        where v.business_date = %s and v.period_type = %s and v.indicator_code = %s and u.unit_kind = %s
        order by v.numerator desc limit 2""", (DAY, period, indicator, kind))
    assert units
    for unit_code, numerator, denominator in units:
        columns, rows = explain(unit_code, indicator, DAY, period, engine["url"])
        in_numerator = columns.index("in_numerator")
        assert (sum(1 for r in rows if r[in_numerator]), len(rows)) == (numerator, denominator) and denominator > 0
        if indicator == "ON_TIME":
            late = [r for r in rows if not r[in_numerator]]
            assert all(r[columns.index("overdue_from_date")] <= DAY for r in late)


# ---------------------------------------------------------------- the 1/7/2025 reorganisation

REORG_FIRST, REORG_LAST = date(2025, 6, 26), date(2025, 7, 3)


@pytest.fixture(scope="module")
def reorganised(make_database):
    url = make_database("chiso_engine_reorg")
    backfill(url, "reorg_2025", days_between(REORG_FIRST, REORG_LAST), seed=SEED)
    run_dbt(["build", "--select", "resource_type:seed", "--full-refresh", "--indirect-selection", "cautious"], url)
    run_dbt(["build", "--exclude", "resource_type:seed"], url)
    return url


def received_by_unit(url, first: date, last: date) -> dict[str, int]:
    return dict(query(url, "select unit_code, count(*) from marts.fct_dossiers where is_received "
                           "and received_date between %s and %s group by 1", (first, last)))


def test_a_merged_communes_history_counts_for_it_before_and_for_its_successor_after(reorganised):
    successions = dict(query(reorganised, "select former_unit_code, successor_unit_code from staging.stg_portal__unit_crosswalk"))
    assert len(successions) == 6 and len(set(successions.values())) == 2
    values = {(d, u): (n, m) for d, u, n, m in query(reorganised, """
        select business_date, unit_code, numerator, denominator from marts.fct_indicator_values
        where indicator_code = 'ON_TIME' and period_type = 'year'""")}
    june = received_by_unit(reorganised, date(2025, 1, 1), date(2025, 6, 30))
    after = received_by_unit(reorganised, date(2025, 1, 1), REORG_LAST)
    for former, successor in successions.items():
        # The former commune: its own dossiers, until its last day; nothing after.
        assert values[(date(2025, 6, 30), former)][1] == june[former] > 0
        assert (REORG_LAST, former) not in values
        # The successor: its own dossiers and its former communes' since 1 January.
        formers = [f for f, s in successions.items() if s == successor]
        assert values[(REORG_LAST, successor)][1] == after.get(successor, 0) + sum(june[f] for f in formers)
    # The province pools everything, before and after, without counting anything twice.
    ((province,),) = query(reorganised, "select unit_code from marts.dim_units where unit_kind = 'PROVINCE'")
    assert values[(REORG_LAST, province)][1] == sum(after.values())
    assert values[(date(2025, 6, 30), province)][1] == sum(june.values())


def test_communes_rank_inside_their_district_before_and_inside_the_province_after(reorganised):
    before = query(reorganised, """
        select unit_code, rank_in_district, district_peer_count, rank_in_peer_set, peer_count from marts.fct_unit_scores
        where business_date = '2025-06-30' and period_type = 'year' and unit_kind = 'COMMUNE' order by rank_in_district""")
    assert [r[1] for r in before] == list(range(1, 7)) and {r[2] for r in before} == {6}
    assert {r[4] for r in before} == {7}  # the district and its six communes, inside the province
    after = query(reorganised, """
        select unit_code, rank_in_district, rank_in_peer_set, peer_count from marts.fct_unit_scores
        where business_date = %s and period_type = 'year' and unit_kind = 'COMMUNE' order by rank_in_peer_set""",
                  (REORG_LAST,))
    assert [r[2] for r in after] == [1, 2] and {r[3] for r in after} == {2} and {r[1] for r in after} == {None}
