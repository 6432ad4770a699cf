"""Incremental engine builds equal a complete rebuild (docs/engine-incremental.md).

Cư Kuin's extracts are loaded day by day through the real fetch → land → load path, with the simulator
re-sending old dossiers as they change (its change feed), delivering some updates before the records they
follow (the `update_before_create` fault), and — injected into one day's load — corrections that move old
dossiers to another unit and reception day, in the previous month. After each day the engine is built
incrementally; at the end the marts' complete row sets (fct_indicator_values, fct_unit_scores) must equal
those of a --full-refresh of the same warehouse. A reloaded day must make the next build a complete one.
"""

from __future__ import annotations

import secrets
import tempfile
from datetime import date
from pathlib import Path

import psycopg
import pytest

from chiso.orchestration.backfill import days_between
from chiso.publish.publication import publish
from chiso.transform.runner import run_dbt

SEED, SCENARIO = 766, "cu_kuin_2024"
HISTORY = (date(2024, 1, 1), date(2024, 1, 24))
NIGHTS = days_between(date(2024, 1, 25), date(2024, 2, 2))   # crosses a month end
FAULTS = "2024-01-26/dossiers=update_before_create:rate=0.2;2024-01-30/dossiers=update_before_create:rate=0.2"
ENGINE = ["int_dossier_cohorts", "int_dossier_indicator_events", "int_feedback_indicator_events",
          "int_procedure_days", "int_procedure_first_days", "int_indicator_deltas", "fct_indicator_values",
          "fct_unit_scores"]
MARTS = {
    "marts.fct_indicator_values": "business_date, unit_code, period_type, indicator_code",
    "marts.fct_unit_scores": "business_date, unit_code, period_type",
    "marts.mart_peer_rankings": "business_date, period_type, unit_code, measure_code, peer_set",
    "marts.fct_plan_metric_values": "business_date, unit_code, period_type, metric_code",
    # The procedures' first days, which a night moves from the changed dossiers alone.
    "intermediate.int_procedure_first_days": "reporting_unit_code, period_type, period_start, procedure_code",
    "intermediate.int_plan_procedure_first_days": "reporting_unit_code, period_type, period_start, procedure_code",
    # The delta tables a night updates by adding changes (strategy `additive`), not by recomputing.
    "intermediate.int_indicator_deltas": "unit_code, period_type, period_start, indicator_code, event_date",
    "intermediate.int_plan_metric_deltas": "unit_code, period_type, period_start, metric_code, event_date",
}


def query(url, sql, params=None):
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def query_commit(url, sql):
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


class Loader:
    """The backfill loop (chiso.orchestration.backfill) with a fault schedule: one simulator for the whole test."""

    def __init__(self, url: str, faults: str):
        from chiso.ingest.fetch import Portal
        from chiso.ingest.pseudonymise import Pseudonymiser
        from chiso.simulator.faults import FaultSchedule
        from chiso.simulator.scenarios import get_scenario
        from chiso.simulator.server import PortalSimulator, RunningSimulator
        from chiso.core.warehouse import ensure_schema

        ensure_schema(url)
        self.url = url
        self.scratch = tempfile.TemporaryDirectory(prefix="chiso-incremental-")
        self.pseudonymiser = Pseudonymiser(secrets.token_urlsafe(32))
        self.sim = RunningSimulator(PortalSimulator(SEED, get_scenario(SCENARIO), FaultSchedule.parse(faults)), "tok")
        self.portal = Portal(base_url=self.sim.__enter__().url, token="tok", page_size=5000)

    def load(self, day: date, entities=None) -> None:
        from chiso.contract import ENTITIES
        from chiso.ingest.fetch import fetch_extract
        from chiso.ingest.landing import land
        from chiso.ingest.load import load_extract

        root = Path(self.scratch.name)
        with psycopg.connect(self.url) as conn:
            for entity in entities or ENTITIES:
                landed = land(fetch_extract(self.portal, entity, day, root), root, entity, day)
                load_extract(conn, entity, day, landed, self.pseudonymiser)

    def close(self) -> None:
        self.sim.__exit__(None, None, None)
        self.scratch.cleanup()


def correct_old_dossiers(url: str, day: date) -> set[tuple]:
    """Add to `day`'s dossier load later versions of three dossiers received in the previous month,
    moved to another unit and two days earlier (a correction), as if the day's extract had carried them.
    Returns the moved dossiers' former (code, unit, reception day)."""
    with psycopg.connect(url) as conn:
        moved = conn.execute("""
            with load as (
                select load_id from raw.load_ledger
                where entity = 'dossiers' and business_date = %(day)s and status = 'loaded'
            ),
            victims as (
                select distinct on (record ->> 'MaHoSo') record
                from raw.portal__dossiers
                where business_date < date_trunc('month', %(day)s::date)
                  and coalesce(record ->> 'NgayTiepNhan', '') <> ''
                order by record ->> 'MaHoSo', business_date desc
                limit 3
            ),
            other_unit as (
                select min(record ->> 'MaDonViTiepNhan') as unit_code from raw.portal__dossiers
                where record ->> 'MaDonViTiepNhan' <> (select min(record ->> 'MaDonViTiepNhan') from victims)
            ),
            inserted as (
                insert into raw.portal__dossiers (load_id, business_date, source_file, line_number, record)
                select (select load_id from load), %(day)s, 'test-correction', 900000 + row_number() over (),
                       record || jsonb_build_object(
                           'MaDonViTiepNhan', (select unit_code from other_unit),
                           'NgayTiepNhan', to_char(to_timestamp(record ->> 'NgayTiepNhan', 'YYYYMMDDHH24MISS')
                                                   - interval '2 days', 'YYYYMMDDHH24MISS'),
                           'NgayCapNhat', to_char(%(day)s::date + time '23:00', 'YYYYMMDDHH24MISS'))
                from victims
                returning record ->> 'MaHoSo' as dossier_code
            )
            select dossier_code, unit_code, cohort_date from intermediate.int_dossier_cohorts
            where dossier_code in (select dossier_code from inserted)""", {"day": day}).fetchall()
    return set(moved)


def marts(url: str) -> dict[str, list[tuple]]:
    """Every row of the engine's marts and delta tables, without built_at (when a build wrote the row,
    which differs between an incremental build and a full refresh by design)."""
    rows = {}
    for name, key in MARTS.items():
        schema, table = name.split(".")
        columns = [column for (column,) in query(url, "select column_name from information_schema.columns "
                                                      "where table_schema = %s and table_name = %s "
                                                      "and column_name <> 'built_at' order by ordinal_position",
                                                 (schema, table))]
        rows[name] = query(url, f"select {', '.join(columns)} from {name} order by {key}")
    return rows


def latest_run(url: str) -> tuple:
    return query(url, "select rebuild_all, rebuild_reason from intermediate.int_engine_run")[0]


def model_rows(url: str) -> dict[str, int]:
    rows = {m: query(url, f"select count(*) from {schema}.{m}")[0][0]
            for schema, m in [("intermediate", "int_engine_changes"), ("intermediate", "int_engine_reopened_periods"),
                              ("intermediate", "int_procedure_first_day_changes")]}
    rows["procedure keys recomputed"] = query(url, "select count(*) from intermediate.int_procedure_first_day_changes "
                                                   "where is_recomputed")[0][0]
    return rows


@pytest.fixture(scope="module")
def warehouse(make_database):
    url = make_database("chiso_incr")
    loader = Loader(url, FAULTS)
    try:
        for day in days_between(*HISTORY):
            loader.load(day)
        run_dbt(["build", "--select", "resource_type:seed", "--full-refresh", "--indirect-selection", "cautious"], url)
        # The engine and its parents (not its data tests: the pipeline's build runs those, and equality
        # with a complete rebuild is what this test is about).
        run_dbt(["run", "--select", "+fct_unit_scores", "+fct_plan_metric_values", "int_engine_watermarks", "mart_peer_rankings"], url)
        assert latest_run(url) == (True, "no previous build")
        publish(HISTORY[1], [], url)
        nights, publications = [], []
        for day in NIGHTS:
            loader.load(day)
            moved = correct_old_dossiers(url, day) if day == date(2024, 2, 1) else set()
            run_dbt(["run", "--select", "+fct_unit_scores", "+fct_plan_metric_values", "int_engine_watermarks", "mart_peer_rankings"], url)
            publication = publish(day, [], url)
            publications.append((day, publication.rows_written, published_differences(url), published_rows(url)))
            if day == date(2024, 2, 1):
                # The moved dossiers' former cohorts are recomputed, not only their new ones.
                assert len(moved) == 3
                assert moved <= set(query(url, """select item_code, unit_code, cohort_date
                    from intermediate.int_engine_changes where source_kind = 'dossier'"""))
                # Their former days lost procedures' features: those first days were recomputed, not
                # only moved earlier.
                assert model_rows(url)["procedure keys recomputed"] > 0
            nights.append((day, latest_run(url), model_rows(url)))
        yield {"url": url, "loader": loader, "nights": nights, "publications": publications}
    finally:
        loader.close()


def test_every_night_was_incremental_and_reopened_old_periods(warehouse):
    for day, (rebuild_all, reason), rows in warehouse["nights"]:
        assert not rebuild_all, (day, reason)
        # The change feed re-sends old dossiers: some cohort days before the new day are reopened.
        assert rows["int_engine_changes"] > 0 and rows["int_engine_reopened_periods"] > 0, day
    reopened = query(warehouse["url"], "select min(reopen_from) from intermediate.int_engine_reopened_periods")[0][0]
    assert reopened < NIGHTS[-1]


PUBLISHED_INCREMENTALLY = ("fct_dossiers", "fct_indicator_values", "fct_unit_scores", "fct_plan_metric_values")


def published_differences(url: str) -> dict[str, int]:
    """Rows in the marts but not in reporting, or the reverse, per incremental mart (0 = equal copies)."""
    return {name: query(url, f"""select count(*) from ((table marts.{name} except all table reporting.{name})
                                 union all (table reporting.{name} except all table marts.{name})) as differing""")[0][0]
            for name in PUBLISHED_INCREMENTALLY}


def published_rows(url: str) -> dict[str, tuple[int, int]]:
    """Per incremental mart: (rows the latest build wrote, rows in all)."""
    return {name: query(url, f"""select count(*) filter (where built_at = (select max(built_at) from marts.{name})),
                                        count(*) from marts.{name}""")[0] for name in PUBLISHED_INCREMENTALLY}


def test_each_night_publishes_only_the_rows_its_build_wrote_and_reporting_equals_the_marts(warehouse):
    for day, written, differences, rows in warehouse["publications"]:
        assert differences == dict.fromkeys(PUBLISHED_INCREMENTALLY, 0), day
        for name in PUBLISHED_INCREMENTALLY:
            # Exactly the rows the night's build wrote (its new day, its reopened buckets, the changed
            # dossiers), never the whole history.
            built_tonight, in_all = rows[name]
            assert 0 < written[name] == built_tonight < in_all, (day, name, written[name], rows[name])
    # The dossiers' contributions stay a view (over reporting's fct_dossiers), never a copy of every row.
    assert query(warehouse["url"], "select table_type from information_schema.tables where table_schema = "
                                   "'reporting' and table_name = 'fct_dossier_indicator_contributions'") == [("VIEW",)]


def test_incremental_marts_equal_a_full_refresh(warehouse):
    url = warehouse["url"]
    incremental = marts(url)
    assert len(incremental["marts.fct_indicator_values"]) > 20_000 and incremental["marts.fct_unit_scores"]
    run_dbt(["run", "--select", "+fct_unit_scores", "+fct_plan_metric_values", "int_engine_watermarks", "mart_peer_rankings", "--full-refresh",
             "--exclude", "resource_type:seed"], url)
    assert latest_run(url) == (True, "no previous build")
    complete = marts(url)
    for name in MARTS:
        only_incremental = sorted(set(incremental[name]) - set(complete[name]))[:5]
        only_complete = sorted(set(complete[name]) - set(incremental[name]))[:5]
        assert (only_incremental, only_complete) == ([], []), name
        assert len(incremental[name]) == len(complete[name]), name


def test_a_reloaded_day_makes_the_next_build_complete(warehouse):
    url = warehouse["url"]
    run_dbt(["run", "--select", "+fct_unit_scores", "+fct_plan_metric_values", "int_engine_watermarks", "mart_peer_rankings"], url)
    assert latest_run(url) == (False, None)
    # The same day's extract again, now with duplicated rows (another checksum): the earlier load of the
    # day is superseded, its rows deleted.
    reloader = Loader(url, f"{NIGHTS[-1]}/dossiers=duplicate_rows:rate=0.1")
    try:
        reloader.load(NIGHTS[-1], ["dossiers"])
    finally:
        reloader.close()
    run_dbt(["run", "--select", "+fct_unit_scores", "+fct_plan_metric_values", "int_engine_watermarks", "mart_peer_rankings"], url)
    assert latest_run(url) == (True, "a change-feed day was reloaded")


def test_a_missing_engine_table_makes_the_next_build_complete(warehouse):
    # A release adding an incremental engine model (or an operator dropping one) has no stored rows to
    # update by difference: the build must be complete, and say why.
    url = warehouse["url"]
    run_dbt(["run", "--select", "+fct_unit_scores", "+fct_plan_metric_values", "int_engine_watermarks", "mart_peer_rankings"], url)
    query_commit(url, "drop table intermediate.int_plan_procedure_first_days cascade")
    run_dbt(["run", "--select", "+fct_unit_scores", "+fct_plan_metric_values", "int_engine_watermarks", "mart_peer_rankings"], url)
    assert latest_run(url) == (True, "engine tables missing: int_plan_procedure_first_days")
    run_dbt(["run", "--select", "+fct_unit_scores", "+fct_plan_metric_values", "int_engine_watermarks", "mart_peer_rankings"], url)
    assert latest_run(url)[0] is False
