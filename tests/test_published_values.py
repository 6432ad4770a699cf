"""Every figure kept as it was published; restatements visible with their reason (issue #21, "As published").

Cư Kuin's extracts are loaded day by day through the real fetch → land → load path (the simulator's
change feed included), the engine built with dbt and the marts published, as each night does. On the
second night, one day's dossier load also carries, as the portal would send them:

* a late dossier: a dossier received on an earlier day by commune LATE_UNIT, whose first version
  arrives only now;
* a corrected version: a dossier of commune MOVED_FROM, known since its reception, now moved to commune
  MOVED_TO (the same reception day).

The first publication's figures must stay as they were published while the marts and ``reporting`` move
to the figures known now; the restatements must be listed with the reason the data gives; a re-run of the
published night must change nothing; the nightly e-mail must say what was restated; explain as published
must list the dossiers known at the first publication.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_incremental import Loader  # noqa: E402  (the backfill loop with the simulator, shared)

from chiso.orchestration.backfill import days_between  # noqa: E402
from chiso.publish.explain import explain, resolve_publication  # noqa: E402
from chiso.publish.publication import publish  # noqa: E402
from chiso.reports.daily import build_daily_report, render_daily  # noqa: E402
from chiso.reports.recipients import Recipient, Scope  # noqa: E402
from chiso.transform.runner import run_dbt  # noqa: E402

SEED, SCENARIO = 766, "cu_kuin_2024"
HISTORY = (date(2024, 11, 1), date(2024, 11, 10))
FIRST_NIGHT, SECOND_NIGHT = HISTORY[1], date(2024, 11, 11)
LATE_UNIT, MOVED_FROM, MOVED_TO = "000.37.27.H15", "000.33.27.H15", "000.34.27.H15"
INDICATOR = "ONLINE_DOSSIER_SHARE"   # every received dossier is in its denominator
ENGINE = ["run", "--select", "+fct_unit_scores", "+fct_plan_metric_values", "int_engine_watermarks",
          "mart_peer_rankings", "+mart_target_attainment", "+mart_peer_lists", "+mart_day_on_time"]


def query(url, sql, params=None):
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def inject_late_and_corrected(url: str, day: date) -> dict:
    """Add to ``day``'s dossier load a late dossier (a new code, received earlier by LATE_UNIT) and a
    corrected version of a dossier of MOVED_FROM (moved to MOVED_TO), as the portal would send them.
    Returns each one's code and reception day."""
    with psycopg.connect(url) as conn:
        load_id = conn.execute("select load_id from raw.load_ledger where entity = 'dossiers' and status = 'loaded' "
                               "and business_date = %s", (day,)).fetchone()[0]

        def quiet_dossier(unit: str, *others: str):
            """The latest version of a dossier of ``unit`` received on a day for which tonight's extract
            re-sends no dossier of ``unit`` or ``others`` (so that the change feed restates nothing there)."""
            return conn.execute("""
                with tonight as (
                    select record ->> 'MaDonViTiepNhan' as unit_code, left(record ->> 'NgayTiepNhan', 8) as day
                    from raw.portal__dossiers where business_date >= %(day)s
                    union
                    select c.unit_code, to_char(c.cohort_date, 'YYYYMMDD') from intermediate.int_dossier_cohorts as c
                    where c.dossier_code in (select record ->> 'MaHoSo' from raw.portal__dossiers
                                             where business_date >= %(day)s)
                )
                select distinct on (record ->> 'NgayTiepNhan', record ->> 'MaHoSo') record
                from raw.portal__dossiers
                where record ->> 'MaDonViTiepNhan' = %(unit)s and business_date < %(day)s
                  and left(record ->> 'NgayTiepNhan', 8) between %(first)s and %(last)s
                  and record ->> 'TrangThaiHoSo' not in ('1', '3')
                  and not exists (select 1 from tonight where tonight.unit_code = any(%(units)s)
                                                          and tonight.day = left(record ->> 'NgayTiepNhan', 8))
                order by record ->> 'NgayTiepNhan', record ->> 'MaHoSo', business_date desc, line_number desc
                limit 1""", {"unit": unit, "units": [unit, *others], "day": day,
                                     # received on a published day (one with values), before the last one
                                     "first": f"{HISTORY[0]:%Y%m%d}", "last": f"{HISTORY[1] - timedelta(days=2):%Y%m%d}"}).fetchone()[0]

        template = quiet_dossier(LATE_UNIT)
        corrected = quiet_dossier(MOVED_FROM, MOVED_TO)
        late_code = template["MaHoSo"] + "-LATE"
        stamp = f"{day:%Y%m%d}230000"
        rows = [({**template, "MaHoSo": late_code, "NgayCapNhat": stamp}, 990001),
                ({**corrected, "MaDonViTiepNhan": MOVED_TO, "NgayCapNhat": stamp}, 990002)]
        for record, line in rows:
            conn.execute("insert into raw.portal__dossiers (load_id, business_date, source_file, line_number, record) "
                         "values (%s, %s, 'test-late-and-corrected', %s, %s::jsonb)",
                         (load_id, day, line, psycopg.types.json.Jsonb(record)))

    def received(record) -> date:
        return date(int(record["NgayTiepNhan"][:4]), int(record["NgayTiepNhan"][4:6]), int(record["NgayTiepNhan"][6:8]))
    return {"late": (late_code, received(template)), "corrected": (corrected["MaHoSo"], received(corrected))}


def current_value(url, table, unit, day, period="day", indicator=INDICATOR):
    return query(url, f"select numerator, denominator, rate from {table} where unit_code = %s and indicator_code = %s "
                      "and period_type = %s and business_date = %s", (unit, indicator, period, day))[0]


def kept_versions(url, unit, day, period="day", indicator=INDICATOR):
    return query(url, "select publication_id, numerator, denominator, rate from ops.published_indicator_values "
                      "where unit_code = %s and indicator_code = %s and period_type = %s and as_of_date = %s "
                      "order by publication_id", (unit, indicator, period, day))


def ops_rows(url) -> tuple[int, int]:
    return query(url, "select (select count(*) from ops.published_indicator_values), "
                      "(select count(*) from ops.published_unit_scores)")[0]


@pytest.fixture(scope="module")
def warehouse(make_database):
    url = make_database("chiso_published")
    loader = Loader(url, "")
    try:
        for day in days_between(*HISTORY):
            loader.load(day)
        run_dbt(["build", "--select", "resource_type:seed", "--full-refresh", "--indirect-selection", "cautious"], url)
        run_dbt(ENGINE, url)
        first = publish(FIRST_NIGHT, [], url)
        seen_first = {table: query(url, f"select unit_code, indicator_code, period_type, business_date, numerator, "
                                        f"denominator, rate, score, rule_version from reporting.{table}")
                      for table in ("fct_indicator_values",)}
        loader.load(SECOND_NIGHT)
        injected = inject_late_and_corrected(url, SECOND_NIGHT)
        run_dbt(ENGINE, url)
        built_tonight = query(url, "select count(*) from marts.fct_indicator_values "
                                   "where built_at = (select max(built_at) from marts.fct_indicator_values)")[0][0]
        second = publish(SECOND_NIGHT, [], url)
        yield {"url": url, "first": first, "second": second, "seen_first": seen_first, "injected": injected,
               "built_tonight": built_tonight}
    finally:
        loader.close()


def test_the_first_publication_keeps_every_figure_it_published(warehouse):
    url, first = warehouse["url"], warehouse["first"]
    kept = query(url, "select unit_code, indicator_code, period_type, as_of_date, numerator, denominator, rate, "
                      "score, rule_version from ops.published_indicator_values where publication_id = %s",
                 (first.publication_id,))
    assert sorted(kept) == sorted(warehouse["seen_first"]["fct_indicator_values"])
    assert first.figures_kept.values == len(kept) > 1000 and first.figures_kept.restated == 0
    assert first.figures_kept.scores == query(url, "select count(*) from ops.published_unit_scores "
                                                   "where publication_id = %s", (first.publication_id,))[0][0] > 0


def test_the_second_publication_keeps_only_new_or_changed_figures(warehouse):
    url, second = warehouse["url"], warehouse["second"]
    # At most the rows the night's build wrote (the engine writes only values that changed), never history.
    total = query(url, "select count(*) from marts.fct_indicator_values")[0][0]
    assert 0 < second.figures_kept.values <= warehouse["built_tonight"] < total
    assert second.figures_kept.restated > 0
    # What is kept, latest version per key, is exactly what reporting shows now: nothing missing, nothing stale.
    differing = query(url, """
        with latest as (
            select distinct on (unit_code, indicator_code, period_type, as_of_date)
                   unit_code, indicator_code, period_type, as_of_date as business_date,
                   numerator, denominator, rate, score, rule_version
            from ops.published_indicator_values
            order by unit_code, indicator_code, period_type, as_of_date, publication_id desc)
        select count(*) from ((table latest except
                               select unit_code, indicator_code, period_type, business_date, numerator, denominator,
                                      rate, score, rule_version from reporting.fct_indicator_values)
                              union all
                              (select unit_code, indicator_code, period_type, business_date, numerator, denominator,
                                      rate, score, rule_version from reporting.fct_indicator_values
                               except table latest)) as d""")[0][0]
    assert differing == 0


def test_a_late_dossier_changes_a_past_days_current_value_but_not_its_published_value(warehouse):
    url = warehouse["url"]
    code, received = warehouse["injected"]["late"]
    seen = {(u, i, p, d): (n, den, r) for u, i, p, d, n, den, r, _s, _v in warehouse["seen_first"]["fct_indicator_values"]}
    published = seen[(LATE_UNIT, INDICATOR, "day", received)]
    now = current_value(url, "reporting.fct_indicator_values", LATE_UNIT, received)
    assert now[1] == published[1] + 1                       # one more dossier in the population
    assert current_value(url, "marts.fct_indicator_values", LATE_UNIT, received) == now
    versions = kept_versions(url, LATE_UNIT, received)
    assert [v[1:] for v in versions] == [published, now]     # as first published, then restated
    first = query(url, "select first_numerator, first_denominator, first_rate, numerator_now, denominator_now, "
                       "rate_now, restatements from reporting.mart_published_values where unit_code = %s and "
                       "indicator_code = %s and period_type = 'day' and as_of_date = %s", (LATE_UNIT, INDICATOR, received))
    assert first == [(*published, *now, 1)]


def restatement(url, unit, day, period="day"):
    return query(url, """select previous_denominator, denominator, late_dossiers, corrected_dossiers,
                                rule_version_changed, reason_codes, reason_vi, restatement_number
                         from reporting.mart_value_restatements
                         where unit_code = %s and indicator_code = %s and period_type = %s and as_of_date = %s""",
                 (unit, INDICATOR, period, day))


def test_restatements_are_listed_with_their_reason_late_or_corrected(warehouse):
    url = warehouse["url"]
    _, late_day = warehouse["injected"]["late"]
    _, moved_day = warehouse["injected"]["corrected"]
    (late,) = restatement(url, LATE_UNIT, late_day)
    assert late[1] == late[0] + 1 and late[2:6] == (1, 0, False, "late_dossiers") and late[7] == 1
    assert late[6] == "hồ sơ tiếp nhận muộn"
    (left,) = restatement(url, MOVED_FROM, moved_day)
    assert left[1] == left[0] - 1 and left[2:6] == (0, 1, False, "corrected_versions")
    (arrived,) = restatement(url, MOVED_TO, moved_day)
    assert arrived[1] == arrived[0] + 1 and arrived[2:6] == (0, 1, False, "corrected_versions")
    # The year to date of the late dossier's unit, as of every day since its reception, was restated too.
    restated_days = {d for (d,) in query(url, "select as_of_date from reporting.mart_value_restatements where "
                                              "unit_code = %s and indicator_code = %s and period_type = 'year'",
                                         (LATE_UNIT, INDICATOR))}
    assert set(days_between(late_day, FIRST_NIGHT)) <= restated_days
    # The BI role reads the marts of published figures (through the views), never ops.
    grants = query(url, "select has_table_privilege('chiso_bi', 'reporting.mart_value_restatements', 'select'), "
                        "has_table_privilege('chiso_bi', 'reporting.mart_published_values', 'select'), "
                        "has_schema_privilege('chiso_bi', 'ops', 'usage')")
    assert grants == [(True, True, False)]


def test_the_nightly_email_says_what_was_restated(warehouse):
    url = warehouse["url"]
    _, late_day = warehouse["injected"]["late"]
    report = build_daily_report(SECOND_NIGHT, url)
    reader = Recipient("chutich@example.vn", "Chủ tịch UBND xã", Scope("commune", LATE_UNIT))
    rendered = render_daily(report, reader)
    html = rendered.html
    assert unicodedata.is_normalized("NFC", html)
    block = re.search(r'<section data-section="restatements">(.*?)</section>', html, re.S)
    assert block, "the restatement block is missing"
    assert "Số liệu điều chỉnh" in block.group(1)
    line = re.search(rf'<li data-restated-unit="{LATE_UNIT}" data-indicator="{INDICATOR}" data-period="day">(.*?)</li>',
                     block.group(1), re.S)
    assert line, block.group(1)
    text = re.sub(r"\s+", " ", line.group(1))
    published = kept_versions(url, LATE_UNIT, late_day)
    (_, num_before, den_before, _), (_, num_now, den_now, rate_now) = published
    day_text = f"{late_day:%d/%m/%Y}"
    expected = (f"ngày {day_text} của xã", ": đã báo cáo", f"({num_before}/{den_before}), nay",
                f"nay {str(rate_now.quantize(Decimal('0.01'))).replace('.', ',')} ({num_now}/{den_now})",
                "do 1 hồ sơ tiếp nhận muộn")
    assert all(part in text for part in expected), (expected, text)
    assert "Số liệu điều chỉnh" in rendered.text and "do 1 hồ sơ tiếp nhận muộn" in rendered.text
    # Another commune, whose figures nobody restated, reads no such block.
    quiet = [u for u in ("000.31.27.H15", "000.32.27.H15", "000.35.27.H15") if not query(
        url, "select 1 from reporting.mart_value_restatements where unit_code = %s", (u,))]
    other = render_daily(report, Recipient("x@example.vn", "UBND xã", Scope("commune", quiet[0])))
    assert 'data-section="restatements"' not in other.html and "Số liệu điều chỉnh" not in other.text


def test_explain_as_published_lists_the_dossiers_known_at_publication(warehouse):
    url, first = warehouse["url"], warehouse["first"]
    late_code, late_day = warehouse["injected"]["late"]
    moved_code, moved_day = warehouse["injected"]["corrected"]
    assert resolve_publication(str(FIRST_NIGHT), url) == resolve_publication(str(first.publication_id), url)
    (_, num_then, den_then, _), _ = kept_versions(url, LATE_UNIT, late_day)
    columns, now_rows = explain(LATE_UNIT, INDICATOR, late_day, "day", url)
    assert late_code in {row[0] for row in now_rows}
    columns, then_rows = explain(LATE_UNIT, INDICATOR, late_day, "day", url, as_published=str(first.publication_id))
    codes = {row[columns.index("dossier_code")] for row in then_rows}
    assert late_code not in codes and len(then_rows) == den_then == len(now_rows) - 1
    assert sum(row[columns.index("numerator_contribution")] for row in then_rows) == num_then
    # The corrected dossier was in its former commune's population when published, as it was then.
    columns, then_rows = explain(MOVED_FROM, INDICATOR, moved_day, "day", url, as_published=str(FIRST_NIGHT))
    moved = [row for row in then_rows if row[columns.index("dossier_code")] == moved_code]
    assert len(moved) == 1 and moved[0][columns.index("unit_code")] == MOVED_FROM
    assert moved[0][columns.index("changed_since_publication")] is True
    (_, _, den_moved, _), _ = kept_versions(url, MOVED_FROM, moved_day)
    assert len(then_rows) == den_moved


def test_re_running_a_published_night_changes_neither(warehouse):
    url = warehouse["url"]
    late_code, late_day = warehouse["injected"]["late"]
    before = (ops_rows(url), kept_versions(url, LATE_UNIT, late_day),
              current_value(url, "reporting.fct_indicator_values", LATE_UNIT, late_day),
              query(url, "table reporting.mart_value_restatements order by 1, 2, 3, 5, 6"))
    run_dbt(ENGINE, url)
    again = publish(SECOND_NIGHT, [], url)
    assert again.figures_kept.values == 0 and again.figures_kept.scores == 0
    after = (ops_rows(url), kept_versions(url, LATE_UNIT, late_day),
             current_value(url, "reporting.fct_indicator_values", LATE_UNIT, late_day),
             query(url, "table reporting.mart_value_restatements order by 1, 2, 3, 5, 6"))
    assert after == before


def test_a_failed_publication_keeps_nothing(warehouse, monkeypatch):
    url = warehouse["url"]
    _, late_day = warehouse["injected"]["late"]
    before = (ops_rows(url), query(url, "select count(*) from ops.reporting_publications"),
              current_value(url, "reporting.fct_indicator_values", LATE_UNIT, late_day))
    # A value built anew and different (as a night's build would write it), then a publication failing after
    # it has kept the figure.
    with psycopg.connect(url) as conn:
        conn.execute("""update marts.fct_indicator_values set denominator = denominator + 100, built_at = now()
                        where unit_code = %s and indicator_code = %s and period_type = 'day' and business_date = %s""",
                     (LATE_UNIT, INDICATOR, late_day))
    from chiso.publish import publication as publishing
    kept = []

    def broken(conn):
        kept.append(conn.execute("select count(*) from ops.published_indicator_values").fetchone()[0])
        raise RuntimeError("the views could not be created")
    monkeypatch.setattr(publishing.published_values, "create_reporting_views", broken)
    with pytest.raises(RuntimeError):
        publish(SECOND_NIGHT, [], url)
    assert kept == [before[0][0] + 1]     # it was kept inside the transaction …
    assert (ops_rows(url), query(url, "select count(*) from ops.reporting_publications"),
            current_value(url, "reporting.fct_indicator_values", LATE_UNIT, late_day)) == before   # … and rolled back
