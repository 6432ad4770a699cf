"""The quality gates on real warehouses, without Airflow: each kind of bad data stops the right gate
with the right message, warn-level failures do not block, and publication is atomic.

One warehouse is loaded from the simulator (chiso.orchestration.backfill's path) and built once with dbt; the raw
faults the simulator plays are loaded as further days of their own (the raw gate needs no build);
the rest is bad data written into the built warehouse and undone after each test. The DAG runs that
show the same gates through Airflow, with the alert e-mails, are in test_end_to_end.py and
test_faults_through_dag.py.
"""

from __future__ import annotations

import json
import secrets
import tempfile
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import psycopg
import pytest

from chiso.contract import ENTITIES

SCENARIO = "cu_kuin_2024"
CLEAN_DAYS = [date(2024, 11, 13), date(2024, 11, 14), date(2024, 11, 15)]
DAY = date(2024, 11, 15)  # a Friday: a working day, so the volume band applies
COMMUNE = "000.37.27.H15"  # Ea Ktur


def load_days(url: str, days, faults: str | None = None) -> None:
    """Fetch, land and load every entity of ``days`` from a simulator playing ``faults``."""
    from chiso.ingest.fetch import Portal, fetch_extract
    from chiso.ingest.landing import land
    from chiso.ingest.load import load_extract
    from chiso.ingest.pseudonymise import Pseudonymiser
    from chiso.simulator.faults import FaultSchedule
    from chiso.simulator.scenarios import get_scenario
    from chiso.simulator.server import PortalSimulator, RunningSimulator
    from chiso.core.warehouse import ensure_schema

    ensure_schema(url)
    schedule = FaultSchedule.parse(faults) if faults else None
    with tempfile.TemporaryDirectory(prefix="chiso-gates-") as scratch, \
            RunningSimulator(PortalSimulator(766, get_scenario(SCENARIO), schedule), "gates") as sim, \
            psycopg.connect(url) as conn:
        portal = Portal(base_url=sim.url, token="gates", page_size=5000)
        for day in days:
            for entity in ENTITIES:
                landed = land(fetch_extract(portal, entity, day, Path(scratch)), Path(scratch), entity, day)
                load_extract(conn, entity, day, landed, Pseudonymiser(secrets.token_urlsafe(16)))


@pytest.fixture(scope="module")
def warehouse(make_database, tmp_path_factory):
    from chiso.orchestration.pipeline import transform

    url = make_database("chiso_gates")
    home = tmp_path_factory.mktemp("chiso-gates-home")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CHISO_WAREHOUSE_URL", url)
        env.setenv("CHISO_HOME", str(home))
        load_days(url, CLEAN_DAYS)
        transform()
        yield {"url": url, "home": home}


@pytest.fixture
def wh(warehouse, monkeypatch):
    monkeypatch.setenv("CHISO_WAREHOUSE_URL", warehouse["url"])
    monkeypatch.setenv("CHISO_HOME", str(warehouse["home"]))
    return warehouse["url"]


def execute(url, sql, params=None):
    with psycopg.connect(url) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else None


@contextmanager
def mutated(url, *statements):
    """Apply ``statements`` (each a (do, undo) pair of SQL), then undo them in reverse order."""
    for do, _ in statements:
        execute(url, do)
    try:
        yield
    finally:
        for _, undo in reversed(statements):
            execute(url, undo)


@contextmanager
def without_rows(url, table: str, where: str):
    """Delete rows of ``table`` for the test, and put them back afterwards."""
    saved = f"public.saved_{table.replace('.', '_')}"
    with mutated(url, (f"create table {saved} as select * from {table} where {where}; delete from {table} where {where}",
                       f"insert into {table} select * from {saved}; drop table {saved}")):
        yield


def failures(result) -> set[tuple[str, str, str]]:
    return {(f.severity, f.suite, f.name) for f in result.failures}


def run(layer: str, day: date = DAY):
    from chiso.quality.gates import run_layer

    return run_layer(layer, day)


# ------------------------------------------------------------------------------ a clean warehouse


def test_suites_are_one_per_layer_and_every_expectation_has_a_severity():
    from chiso.quality.gates import LAYERS, load_suite_definition

    for layer in LAYERS:
        definition = load_suite_definition(layer)
        assert definition["layer"] == layer
        for batch in definition["batches"]:
            assert all(e["meta"]["name"] and e["meta"]["why"] for e in batch["expectations"])


def test_a_clean_day_passes_every_layer_and_is_recorded(wh, warehouse):
    from chiso.quality.gates import data_docs_dir

    for layer in ("raw", "staging", "marts"):
        result = run(layer)
        assert result.failures == [], result.message()
        assert result.evaluated >= 5
        rows = execute(wh, "select count(*), bool_and(success) from ops.validation_results where gate_run_id = %s",
                       (result.gate_run_id,))
        assert rows == [(result.evaluated, True)]
    docs = data_docs_dir()
    assert docs == warehouse["home"] / "data_docs" and (docs / "index.html").is_file()
    index = (docs / "index.html").read_text()
    assert "marts/fct_unit_scores" in index or "marts.fct_unit_scores" in index
    pages = [p for (p,) in execute(wh, "select distinct data_docs_page from ops.validation_results")]
    assert pages and all((docs / page).is_file() for page in pages), pages


def test_housekeeping_deletes_gate_records_past_their_retention_and_keeps_the_audit(wh):
    """Raw gates of 13 and 15 November, a retention of 1 day on the 15th: the 13th's validation
    results, Data Docs pages and ops.validation_results rows go, the index no longer lists them; the
    15th's stay; both days' ops.gate_runs stay."""
    from chiso.quality.gate_retention import purge_quality_records
    from chiso.quality.gates import data_docs_dir, gate_raw, validation_store_dir

    old, kept = CLEAN_DAYS[0], CLEAN_DAYS[2]
    for day in (old, kept):
        assert all(result.passed for result in gate_raw(day, wh))

    def files_of(day):
        return [p for base in (validation_store_dir(), data_docs_dir() / "validations")
                for p in base.rglob("*") if p.is_file() and f"/{day.isoformat()}/" in p.as_posix()]

    old_files, kept_files = files_of(old), files_of(kept)
    assert old_files and kept_files and old.isoformat() in (data_docs_dir() / "index.html").read_text()
    runs_before = execute(wh, "select business_date, count(*) from ops.gate_runs group by 1 order by 1")

    purged = purge_quality_records(1, kept, wh)

    assert purged.cutoff == CLEAN_DAYS[1] and purged.files == len(old_files) and purged.validation_rows > 0
    assert files_of(old) == [] and sorted(files_of(kept)) == sorted(kept_files)
    index = (data_docs_dir() / "index.html").read_text()
    assert old.isoformat() not in index and kept.isoformat() in index
    assert execute(wh, "select count(*) from ops.validation_results where business_date < %s", (purged.cutoff,)) == [(0,)]
    assert execute(wh, "select count(*) > 0 from ops.validation_results where business_date = %s", (kept,)) == [(True,)]
    assert execute(wh, "select business_date, count(*) from ops.gate_runs group by 1 order by 1") == runs_before
    assert purge_quality_records(1, kept, wh).files == 0  # a second run finds nothing more to delete


# ------------------------------------------------------------------------------ raw: the simulator's faults

RAW_FAULTS = {
    # fault plan on dossiers -> (day, expected failures, passes?)
    "malformed_dates:rate=0.3": (date(2024, 11, 18), {("block", "raw.load_ledger", "quarantined_share_under_10_percent"),
                                                      ("warn", "raw.load_ledger", "quarantined_share_under_1_percent")}, False),
    "unknown_status:rate=0.3": (date(2024, 11, 19), {("block", "raw.load_ledger", "quarantined_share_under_10_percent"),
                                                     ("warn", "raw.load_ledger", "quarantined_share_under_1_percent")}, False),
    "malformed_codes:rate=0.3": (date(2024, 11, 20), {("block", "raw.load_ledger", "quarantined_share_under_10_percent"),
                                                      ("warn", "raw.load_ledger", "quarantined_share_under_1_percent")}, False),
    "malformed_dates:rate=0.03": (date(2024, 11, 21), {("warn", "raw.load_ledger", "quarantined_share_under_1_percent")},
                                  True),
    "duplicate_rows:rate=0.05": (date(2024, 11, 22), {("warn", "raw.dossiers", "no_duplicate_dossier_versions")}, True),
    "extra_column": (date(2024, 11, 25), {("warn", "raw.dossiers", "only_contract_columns")}, True),
}


@pytest.mark.parametrize("plan", RAW_FAULTS, ids=RAW_FAULTS)
def test_each_raw_fault_of_the_simulator_stops_or_warns_at_the_raw_gate(wh, monkeypatch, plan):
    from chiso.quality.gates import GateFailed, gate_raw

    day, expected, passes = RAW_FAULTS[plan]
    monkeypatch.setenv("CHISO_ALLOW_NEW_COLUMNS", "true")
    load_days(wh, [day], f"{day}/dossiers={plan}")
    if passes:
        (result,) = gate_raw(day)
    else:
        with pytest.raises(GateFailed) as failed:
            gate_raw(day)
        result = failed.value.result
        assert "[block] raw.load_ledger: quarantined_share_under_10_percent" in str(failed.value)
        assert "observed" in str(failed.value) and "quarantined_share" in str(failed.value)
    assert failures(result) == expected, result.message()


def test_an_empty_dossiers_day_stops_before_the_raw_suite(wh):
    from chiso.orchestration.pipeline import EmptyExtract, check_extracts_have_rows

    day = date(2024, 11, 26)
    load_days(wh, [day], f"{day}/dossiers=empty_day")
    with pytest.raises(EmptyExtract, match="has no rows of dossiers"):
        check_extracts_have_rows(day)


# ------------------------------------------------------------------------------ raw: rows behind the contract's back

FIRST_DOSSIER = (f"(select ctid from raw.portal__dossiers where business_date = '{DAY}' "
                 f"order by source_file, line_number limit 1)")


def first_dossier_key(url) -> str:
    """A where-clause naming one raw dossier row of DAY by its load, file and line (stable under updates)."""
    load_id, source_file, line = execute(url, f"select load_id, source_file, line_number from raw.portal__dossiers "
                                              f"where ctid = {FIRST_DOSSIER}")[0]
    return f"load_id = {load_id} and source_file = '{source_file}' and line_number = {line}"


def test_conflicting_versions_and_unaccounted_rows_block_the_raw_gate(wh):
    copy = (f"insert into raw.portal__dossiers (load_id, business_date, source_file, line_number, record) "
            f"select load_id, business_date, source_file, -1, jsonb_set(record, '{{TrangThaiHoSo}}', "
            f"to_jsonb(case when (record->>'TrangThaiHoSo')::int = 10 then 9 else 10 end)) "
            f"from raw.portal__dossiers where ctid = {FIRST_DOSSIER}")
    with mutated(wh, (copy, "delete from raw.portal__dossiers where line_number = -1")):
        result = run("raw")
    assert not result.passed
    assert {("block", "raw.dossiers", "no_conflicting_versions"),
            ("block", "raw.load_ledger", "manifest_counts_match")} <= failures(result)
    conflict = next(f for f in result.failures if f.name == "no_conflicting_versions")
    assert conflict.sample and conflict.sample[0]["different_records"] == 2


@pytest.mark.parametrize("change, expected", [
    ("jsonb_set(record, '{TrangThaiHoSo}', '11')", "status_1_to_10"),
    ("jsonb_set(record, '{TrangThaiHoSo}', '\"2\"')", "status_is_an_integer"),
    ("jsonb_set(record, '{KenhThucHien}', '4')", "channel_1_to_3"),
    ("jsonb_set(record, '{NgayHenTra}', to_jsonb('20000101000000'::text))", "received_before_due"),
    ("jsonb_set(record, '{NgayKetThucXuLy}', to_jsonb('20000101000000'::text))", "finished_after_received"),
], ids=["status", "status type", "channel", "due before received", "finished before received"])
def test_contract_values_and_date_order_block_the_raw_gate(wh, change, expected):
    key = first_dossier_key(wh)
    (record,) = execute(wh, f"select record::text from raw.portal__dossiers where {key}")[0]
    quoted = record.replace("'", "''")
    with mutated(wh, (f"update raw.portal__dossiers set record = {change} where {key}",
                      f"update raw.portal__dossiers set record = '{quoted}'::jsonb where {key}")):
        result = run("raw")
    assert failures(result) == {("block", "raw.dossiers", expected)}, result.message()
    assert "e.g." in result.message()


# ------------------------------------------------------------------------------ staging / intermediate


def test_two_current_rows_of_a_dossier_block_the_staging_gate(wh):
    view = "staging.stg_portal__dossiers"
    with mutated(wh, (f"alter view {view} rename to stg_saved; create view {view} as select * from staging.stg_saved "
                      f"union all (select * from staging.stg_saved where received_at::date = '{DAY}' limit 1)",
                      f"drop view {view}; alter view staging.stg_saved rename to stg_portal__dossiers")):
        result = run("staging")
    assert failures(result) == {("block", "staging.current_dossiers", "one_current_row_per_dossier")}


def test_a_dossier_of_an_unknown_unit_or_procedure_version_blocks_the_staging_gate(wh):
    with without_rows(wh, "marts.dim_units", f"unit_code = '{COMMUNE}'"):
        result = run("staging")
    assert failures(result) == {("block", "staging.current_dossiers", "dossier_unit_is_known")}
    procedure = execute(wh, f"select procedure_code from staging.stg_portal__dossiers where received_at::date = '{DAY}' "
                            f"limit 1")[0][0]
    with without_rows(wh, "marts.dim_procedures", f"procedure_code = '{procedure}'"):
        result = run("staging")
    assert failures(result) == {("block", "staging.current_dossiers", "dossier_procedure_version_is_known")}
    assert all(row["procedure_code"] == procedure for row in result.failures[0].sample)


def test_a_gap_in_the_working_day_calendar_blocks_the_staging_gate(wh):
    with without_rows(wh, "marts.dim_calendar", "calendar_date = '2024-12-02'"):
        result = run("staging")
    assert failures(result) == {("block", "staging.calendar", "calendar_covers_the_period")}
    assert str(result.failures[0].sample[0]["missing_day"]) == "2024-12-02"


# ------------------------------------------------------------------------------ marts

FIV = f"marts.fct_indicator_values where business_date = '{DAY}' and unit_code = '{COMMUNE}'"
SCORES = f"marts.fct_unit_scores where business_date = '{DAY}' and unit_code = '{COMMUNE}'"


def _marts_case(wh, statements, expected):
    with mutated(wh, *statements):
        result = run("marts")
    assert failures(result) == expected, result.message()
    return result


def test_a_rate_over_100_and_a_numerator_over_its_denominator_block_the_marts_gate(wh):
    result = _marts_case(wh, [
        (f"create table public.saved_fiv as select * from {FIV}; "
         f"update {FIV.replace(' where', ' set rate = 130, numerator = denominator + 5 where')} "
         f"and indicator_code = 'ONLINE_DOSSIER_SHARE'",
         f"delete from {FIV}; insert into marts.fct_indicator_values select * from public.saved_fiv; "
         f"drop table public.saved_fiv")],
        {("block", "marts.fct_indicator_values", "rate_0_to_100"),
         ("block", "marts.fct_indicator_values", "numerator_at_most_denominator")})
    assert "expect_column_values_to_be_between on column rate" in result.message()


def test_a_score_over_its_weight_and_group_sums_that_do_not_add_up_block_the_marts_gate(wh):
    _marts_case(wh, [
        (f"create table public.saved_fiv as select * from {FIV}; "
         f"update {FIV.replace(' where', ' set score = max_points + 1 where')} and indicator_code = 'ON_TIME' "
         f"and period_type = 'month'",
         f"delete from {FIV}; insert into marts.fct_indicator_values select * from public.saved_fiv; "
         f"drop table public.saved_fiv")],
        {("block", "marts.fct_indicator_values", "score_at_most_max_points"),
         ("block", "marts.fct_unit_scores", "group_scores_are_sums_of_indicator_scores")})
    _marts_case(wh, [(f"update {SCORES.replace(' where', ' set total_score = total_score + 1 where')} and period_type = 'year'",
                      f"update {SCORES.replace(' where', ' set total_score = total_score - 1 where')} and period_type = 'year'")],
                {("block", "marts.fct_unit_scores", "total_is_the_sum_of_groups"),
                 ("block", "marts.fct_unit_scores", "ranks_dense_and_consistent_with_totals")})


def test_a_unit_missing_from_the_day_blocks_the_marts_gate(wh):
    with without_rows(wh, "marts.fct_unit_scores", f"business_date = '{DAY}' and unit_code = '{COMMUNE}' "
                                                   f"and period_type = 'quarter'"):
        result = run("marts")
    assert ("block", "marts.fct_unit_scores", "every_active_unit_scored") in failures(result)
    assert {"unit_code": COMMUNE, "period_type": "quarter"} in result.failures[0].sample or any(
        f.sample and {"unit_code": COMMUNE, "period_type": "quarter"} in f.sample for f in result.failures)


def test_ranks_out_of_order_block_the_marts_gate(wh):
    # Swap the kind ranks of the first and last commune of the month: dense still, but against the totals.
    first, last = (f"(select unit_code from marts.fct_unit_scores where business_date = '{DAY}' and period_type = 'month' "
                   f"and unit_kind = 'COMMUNE' and rank_in_kind = {n})" for n in ("1", "kind_peer_count"))
    swap = (f"update marts.fct_unit_scores set rank_in_kind = kind_peer_count + 1 - rank_in_kind "
            f"where business_date = '{DAY}' and period_type = 'month' and unit_kind = 'COMMUNE' "
            f"and (rank_in_kind = 1 or rank_in_kind = kind_peer_count)")
    result = _marts_case(wh, [(swap, swap)],
                         {("block", "marts.fct_unit_scores", "ranks_dense_and_consistent_with_totals")})
    assert "a higher total ranks behind a lower one" in result.message()


def test_a_commune_whose_dossiers_drop_90_percent_overnight_blocks_the_marts_gate(wh):
    today = f"unit_code = '{COMMUNE}' and received_date = '{DAY}'"
    (received,) = execute(wh, f"select count(*) from marts.fct_dossiers where {today}")[0]
    previous = execute(wh, f"select count(*) from marts.fct_dossiers where unit_code = '{COMMUNE}' "
                           f"and received_date = '2024-11-14'")[0][0]
    assert previous >= 10 and received >= 10
    keep = previous // 20  # a 95% drop
    with without_rows(wh, "marts.fct_dossiers", f"{today} and dossier_code not in (select dossier_code from "
                                                f"marts.fct_dossiers where {today} order by 1 limit {keep})"):
        result = run("marts")
    assert failures(result) == {("block", "marts.dossier_volume", "volume_drop_under_90_percent")}
    (row,) = result.failures[0].sample
    assert (row["unit_code"], row["received_today"], row["received_previous_working_day"]) == (COMMUNE, keep, previous)


def test_a_warn_expectation_does_not_block_and_the_day_is_published_with_it(wh):
    from chiso.quality.gates import gate_built, warnings_of
    from chiso.publish.publication import publish

    today = f"unit_code = '{COMMUNE}' and received_date = '{DAY}'"
    previous = execute(wh, f"select count(*) from marts.fct_dossiers where unit_code = '{COMMUNE}' "
                           f"and received_date = '2024-11-14'")[0][0]
    keep = previous // 4  # a 75% drop: worth a look, not a stop
    with without_rows(wh, "marts.fct_dossiers", f"{today} and dossier_code not in (select dossier_code from "
                                                f"marts.fct_dossiers where {today} order by 1 limit {keep})"):
        staging, marts = gate_built(DAY)  # does not raise
        assert marts.passed and failures(marts) == {("warn", "marts.dossier_volume", "volume_drop_under_60_percent")}
        warnings = warnings_of(DAY)
        publication = publish(DAY, warnings)
    assert [w["name"] for w in publication.warnings] == ["volume_drop_under_60_percent"]
    (status,) = execute(wh, "select business_date, warnings from reporting.publication_status")
    assert status[0] == DAY and status[1][0]["name"] == "volume_drop_under_60_percent"


# ------------------------------------------------------------------------------ write-audit-publish


def test_publish_exposes_the_marts_to_the_bi_role_only_in_the_reporting_schema(wh):
    from chiso.publish.publication import BI_ROLE, publish

    publication = publish(DAY, [])
    assert {"fct_indicator_values", "fct_unit_scores", "dim_units"} <= set(publication.relations)
    assert execute(wh, "select count(*) from reporting.fct_indicator_values") == \
        execute(wh, "select count(*) from marts.fct_indicator_values")
    assert execute(wh, "select rolcanlogin from pg_roles where rolname = %s", (BI_ROLE,)) == [(False,)]
    privileges = execute(wh, """select has_schema_privilege(%s, 'reporting', 'usage'),
                                       has_table_privilege(%s, 'reporting.fct_unit_scores', 'select'),
                                       has_schema_privilege(%s, 'marts', 'usage'),
                                       has_schema_privilege(%s, 'raw', 'usage'),
                                       has_schema_privilege(%s, 'ops', 'usage')""", (BI_ROLE,) * 5)
    assert privileges == [(True, True, False, False, False)]
    # dbt's column docs come along, for Metabase.
    assert execute(wh, "select col_description('reporting.fct_unit_scores'::regclass, 1) is not null") == [(True,)]
    # So do the marts' indexes, and the copies are analysed: dashboards filter by day and unit.
    indexes = """select c.relname, regexp_replace(pg_get_indexdef(i.indexrelid), ' ON \\w+\\.', ' ON ')
                 from pg_index i join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace
                 where n.nspname = %s order by 1, 2"""
    published = execute(wh, indexes, ("reporting",))
    assert published == execute(wh, indexes, ("marts",))
    assert {("fct_indicator_values", "UNIQUE"), ("fct_unit_scores", "UNIQUE")} <= {
        (table, "UNIQUE" if " UNIQUE " in definition else "") for table, definition in published}
    never_analysed = execute(wh, """select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
                                    where n.nspname = 'reporting' and c.relkind = 'r' and c.reltuples < 0""")
    assert never_analysed == []
    plan = "\n".join(row[0] for row in execute(wh, "explain select * from reporting.fct_indicator_values "
                                                     "where business_date = %s and unit_code = %s", (DAY, COMMUNE)))
    assert "Index" in plan, plan


def test_a_publication_that_fails_half_way_leaves_the_previous_day_in_place(wh, monkeypatch):
    import chiso.publish.publication as publish_module

    publish_module.publish(date(2024, 11, 14), [])
    before = execute(wh, "select count(*) from reporting.fct_indicator_values")
    copied = []

    def fail_after_two(conn, relation):
        copied.append(relation)
        if len(copied) == 2:
            raise RuntimeError("disk full")

    monkeypatch.setattr(publish_module, "_copy_comments", fail_after_two)
    with pytest.raises(RuntimeError, match="disk full"):
        publish_module.publish(DAY, [])
    assert execute(wh, "select business_date from reporting.publication_status") == [(date(2024, 11, 14),)]
    assert execute(wh, "select count(*) from reporting.fct_indicator_values") == before
    assert execute(wh, "select count(*) from pg_namespace where nspname in ('reporting_next', 'reporting_old')") == [(0,)]


def test_history_wide_staging_tests_run_in_housekeeping_not_in_the_nightly_build(wh, monkeypatch):
    from chiso.orchestration import pipeline
    from chiso.transform.runner import DbtError, run_dbt

    # The nightly build leaves out the tests that scan a change feed's whole history...
    builds = []
    monkeypatch.setattr("chiso.transform.runner.run_dbt", lambda args, url=None: builds.append(args))
    monkeypatch.setattr(pipeline, "_is_latest_business_date", lambda day: False)
    monkeypatch.setattr(pipeline, "_last_gate_failed", lambda day: False)
    pipeline.transform(DAY)
    nightly = [args for args in builds if args[0] == "build" and "resource_type:seed" in args[2:]]
    assert nightly and pipeline.HISTORY_SCAN_TESTS in nightly[-1][nightly[-1].index("--exclude"):]
    monkeypatch.undo()
    monkeypatch.setenv("CHISO_WAREHOUSE_URL", wh)
    # ... which are the staging views' tests of the change feeds: dossiers, ratings, PAKN and the process log's steps.
    listed = run_dbt(["ls", "--select", pipeline.HISTORY_SCAN_TESTS, "--resource-type", "test", "--output", "name"])
    names = set(listed.result)
    assert any("stg_portal__dossiers" in name for name in names)
    assert all(any(f"stg_portal__{feed}" in name for feed in ("dossiers", "ratings", "feedback", "process_steps"))
               for name in names)
    # Housekeeping runs them: a fault deep in history (an old dossier's status) fails the check by name.
    pipeline.check_history()
    # A dossier with a single version, on the first day loaded (ctid would not do: partitions share them).
    single_version = """select record from raw.portal__dossiers as old
        where business_date = (select min(business_date) from raw.portal__dossiers)
          and (select count(*) from raw.portal__dossiers as other
               where other.record ->> 'MaHoSo' = old.record ->> 'MaHoSo') = 1 limit 1"""
    same_dossier = "raw.portal__dossiers.record ->> 'MaHoSo' = saved.record ->> 'MaHoSo'"
    with mutated(wh, (f"create table public.saved_history_row as {single_version}; "
                      f"update raw.portal__dossiers set record = jsonb_set(raw.portal__dossiers.record, "
                      f"'{{TrangThaiHoSo}}', '99') from public.saved_history_row as saved where {same_dossier}",
                      f"update raw.portal__dossiers set record = saved.record from public.saved_history_row as saved "
                      f"where {same_dossier}; drop table public.saved_history_row")):
        with pytest.raises(DbtError, match="accepted_values_stg_portal__dossiers_status_code"):
            pipeline.check_history()


def test_stale_raw_sources_fail_dbt_source_freshness(wh):
    from chiso.transform.runner import DbtError, run_dbt

    with mutated(wh, ("update raw.portal__units set loaded_at = loaded_at - interval '10 days'",
                      "update raw.portal__units set loaded_at = loaded_at + interval '10 days'")):
        with pytest.raises(DbtError, match="portal__units"):
            run_dbt(["source", "freshness"])


# ------------------------------------------------------------------------------ alerts


def test_a_failed_task_alerts_the_engineers_and_optionally_holds_the_recipients_once(wh, monkeypatch, tmp_path):
    import json
    import unicodedata
    from types import SimpleNamespace

    from chiso.orchestration.alerts import HOLD_NOTICE_SUBJECT, task_failed
    from chiso.dev.mailcatcher import MailCatcher

    recipients = tmp_path / "recipients.yml"
    recipients.write_text("recipients:\n  - {email: huyen@cukuin.example.vn, name: UBND huyện Cư Kuin, scope: all}\n"
                          "data_engineering:\n  - {email: dulieu@chiso.example.vn, name: Nhóm dữ liệu}\n",
                          encoding="utf-8")
    with MailCatcher(tmp_path / "mail") as mail:
        monkeypatch.setenv("AIRFLOW_CONN_CHISO_SMTP", json.dumps({
            "conn_type": "smtp", "host": mail.host, "port": mail.port,
            "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "chiso@localhost", "timeout": 10}}))
        monkeypatch.setenv("CHISO_RECIPIENTS_FILE", str(recipients))
        monkeypatch.setenv("CHISO_REPORT_HOLD_NOTICE", "notice")
        context = {"ti": SimpleNamespace(dag_id="chiso_daily", task_id="quality_gate", log_url=None),
                   "params": {"business_date": str(DAY)}, "run_id": "manual__1",
                   "exception": RuntimeError("Gate marts for 2024-11-15: 1 blocking ...")}
        task_failed(context)
        task_failed(context)  # a second failure of the day: a second alert, no second notice
        messages = mail.messages()
    alerts = [m for m in messages if str(m["To"]) == "dulieu@chiso.example.vn"]
    assert [str(m["Subject"]) for m in alerts] == [f"[chiso ALERT] chiso_daily {DAY}: quality_gate failed"] * 2
    assert "Gate marts for 2024-11-15" in alerts[0].get_body(("html",)).get_content()
    held = [m for m in messages if str(m["To"]) == "huyen@cukuin.example.vn"]
    assert [str(m["Subject"]) for m in held] == [f"{HOLD_NOTICE_SUBJECT} (15/11/2024)"]
    assert unicodedata.is_normalized("NFC", str(held[0]["Subject"]))
    assert "Số liệu hôm nay đang được kiểm tra" == HOLD_NOTICE_SUBJECT


# ------------------------------------------------------------------------------ each batch's query runs once

COUNTED_ROWS = 10
# A batch whose query advances a sequence once per row it produces: the sequence tells how many times
# the query ran (COUNTED_ROWS per execution). Three expectations read it, one of them failing (block),
# so its failing rows are sampled too.
COUNTED_BATCH = {
    "name": "counted",
    "query": f"select n, nextval('public.gate_batch_executions') as execution_row "
             f"from generate_series(1, {COUNTED_ROWS}) as n",
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "n"},
         "meta": {"severity": "block", "name": "n_present", "why": "test"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "n", "min_value": 1, "max_value": 10},
         "meta": {"severity": "block", "name": "n_in_range", "why": "test"}},
        {"type": "unexpected_rows_expectation",
         "kwargs": {"unexpected_rows_query": "select n from {batch} as batch_rows where n > :limit"},
         "meta": {"severity": "block", "name": "n_under_limit", "why": "test"}},
    ],
}
COUNTING_DAY = date(2024, 11, 29)  # no other test looks at this day's gate runs


def counting_suite(directory: Path, limit: int, *extra_batches) -> None:
    batch = json.loads(json.dumps(COUNTED_BATCH).replace(":limit", str(limit)))
    suite = {"name": "counting", "layer": "counting", "batches": [batch, *extra_batches]}
    (directory / "counting.json").write_text(json.dumps(suite), encoding="utf-8")


def batch_tables(url) -> list[str]:
    return [name for (name,) in execute(url, "select c.relname from pg_class c join pg_namespace n "
                                             "on n.oid = c.relnamespace where n.nspname = 'gate_batches'")]


@pytest.fixture
def counting(wh, monkeypatch, tmp_path):
    monkeypatch.setenv("CHISO_EXPECTATIONS_DIR", str(tmp_path))
    execute(wh, "drop sequence if exists public.gate_batch_executions; create sequence public.gate_batch_executions")
    yield tmp_path
    execute(wh, "drop sequence public.gate_batch_executions")


def executions(url) -> int:
    (rows,) = execute(url, "select case when is_called then last_value else 0 end from public.gate_batch_executions")[0]
    return rows / COUNTED_ROWS


def test_each_batch_query_runs_once_per_gate_run_and_its_tables_are_dropped(wh, counting):
    from chiso.quality.gates import run_layer

    counting_suite(counting, limit=COUNTED_ROWS)  # every row passes
    result = run_layer("counting", COUNTING_DAY)
    assert result.passed and result.evaluated == 3, result.message()
    assert executions(wh) == 1
    assert batch_tables(wh) == []

    counting_suite(counting, limit=8)  # rows 9 and 10 fail: the gate fails and samples them
    execute(wh, "alter sequence public.gate_batch_executions restart")
    result = run_layer("counting", COUNTING_DAY)
    assert failures(result) == {("block", "counting.counted", "n_under_limit")}
    assert sorted(row["n"] for row in result.failures[0].sample) == [9, 10]
    assert executions(wh) == 1
    assert batch_tables(wh) == []


def test_the_former_query_assets_ran_a_batch_query_per_expectation(wh, counting):
    """The counting above can see re-runs: without materialised batches the same suite runs the query
    once per expectation, and again for the failing-row sample."""
    from chiso.quality.gates import run_layer

    counting_suite(counting, limit=8)
    run_layer("counting", COUNTING_DAY, materialise_batches=False)
    assert executions(wh) > 1


def test_a_run_that_raises_leaves_no_batch_table_and_orphans_of_dead_runs_are_dropped(wh, counting):
    from chiso.quality.gates import BATCH_RUN_LOCK_KEY, BATCH_SCHEMA, run_layer

    broken = {"name": "broken", "query": "select 1 / 0 as n",
              "expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "n"},
                                "meta": {"severity": "block", "name": "n_present", "why": "test"}}]}
    counting_suite(counting, COUNTED_ROWS, broken)  # the first batch is materialised, the second raises
    with pytest.raises(psycopg.errors.DivisionByZero):
        run_layer("counting", COUNTING_DAY)
    assert executions(wh) == 1
    assert batch_tables(wh) == []

    # A run killed before it could clean up leaves its table; nobody holds its token's lock any more, so
    # the next run drops it. A live run's table (its lock held by another session) is left alone.
    counting_suite(counting, COUNTED_ROWS)
    execute(wh, f'create unlogged table {BATCH_SCHEMA}."counting__counted__0000dead" (n int)')
    execute(wh, f'create unlogged table {BATCH_SCHEMA}."counting__counted__0000beef" (n int)')
    with psycopg.connect(wh, autocommit=True) as live_run:
        live_run.execute("select pg_advisory_lock(%s, %s)", (BATCH_RUN_LOCK_KEY, 0xbeef))
        assert run_layer("counting", COUNTING_DAY).passed
        assert batch_tables(wh) == ["counting__counted__0000beef"]
    execute(wh, f'drop table {BATCH_SCHEMA}."counting__counted__0000beef"')


def test_concurrent_runs_of_one_layer_keep_their_own_tables(wh):
    """Two runs at once (two days of the same layer): each its own table, neither's sweep takes the other's."""
    from chiso.quality.gates import MaterialisedBatches

    with MaterialisedBatches(wh, "raw") as first:
        first_table = first.materialise("dossiers", "select 1 as n")
        with MaterialisedBatches(wh, "raw") as second:  # its start sweeps for orphans
            second_table = second.materialise("dossiers", "select 2 as n")
            assert first_table != second_table
            assert sorted(batch_tables(wh)) == sorted([first_table, second_table])
        assert batch_tables(wh) == [first_table]
        assert execute(wh, f'select n from gate_batches."{first_table}"') == [(1,)]
    assert batch_tables(wh) == []


def test_a_gate_failure_crosses_process_boundaries_intact():
    # A gate run in a worker process (an executor's pool, a benchmark stage) raises GateFailed in the
    # parent: it must unpickle as itself, with its results, not as a pickling error.
    import pickle

    from chiso.quality.gates import GateFailed, GateFailure, GateResult

    failure = GateFailure("marts.fct_unit_scores", "unexpected_rows_expectation", "ranks_dense", None, "block",
                          "observed 3")
    error = GateFailed(GateResult("marts", date(2025, 11, 12), evaluated=9, failures=[failure]))
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, GateFailed) and str(copy) == str(error)
    assert copy.result.failures == [failure] and "ranks_dense" in str(copy)
