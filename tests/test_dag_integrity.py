"""The daily DAG parses, is acyclic, retries its tasks, runs in Vietnam's time zone, and knows its day."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from chiso.orchestration.pipeline import resolve_business_date
from chiso.core.settings import REPO_ROOT

GATES = {"raw_gate", "quality_gate"}  # bad data is not transient: gates never retry


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO_ROOT / "dags"))


@pytest.fixture(scope="module")
def daily(dagbag):
    return dagbag.dags["chiso_daily"]


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"chiso_daily", "chiso_housekeeping"} <= set(dagbag.dags)


def test_every_dag_runs_in_vietnam_time_and_retries(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert str(dag.timezone.name) == "Asia/Ho_Chi_Minh", dag_id
        assert dag.max_active_runs == 1, dag_id
        assert all(t.retries >= 1 for t in dag.tasks if t.task_id not in GATES), dag_id


def test_no_cycles_and_the_stages_in_order(daily):
    ids = set(daily.task_ids)
    assert {"fetch_dossiers", "land_dossiers", "load_dossiers", "raw_gate", "dbt_build", "quality_gate",
            "publish_reporting", "send_report", "record_publication"} <= ids

    def upstream_closure(task_id):
        seen, todo = set(), [task_id]
        while todo:
            for parent in daily.get_task(todo.pop()).upstream_task_ids:
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return seen

    for task_id in ids:
        assert task_id not in upstream_closure(task_id), f"{task_id} depends on itself"
    assert {"load_units", "load_dossiers", "raw_gate", "dbt_build", "quality_gate",
            "publish_reporting"} <= upstream_closure("send_report")
    assert {"load_dossiers", "raw_gate"} <= upstream_closure("dbt_build")
    assert "quality_gate" in upstream_closure("publish_reporting")
    assert "send_report" in upstream_closure("record_publication")


def test_every_task_retries_except_the_gate(daily):
    for task in daily.tasks:
        if task.task_id in GATES:
            assert task.retries == 0, "a failed gate is bad data, not a transient fault"
        else:
            assert task.retries >= 1, f"{task.task_id} has no retries"


def test_every_task_alerts_the_data_engineers_when_it_fails(daily):
    from chiso.orchestration.alerts import task_failed

    for task in daily.tasks:
        callbacks = task.on_failure_callback
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        assert task_failed in callbacks, task.task_id


def test_schedule_timezone_and_catch_up(daily):
    assert str(daily.timezone.name) == "Asia/Ho_Chi_Minh"
    timezone_of_schedule = daily.timetable.timezone
    assert getattr(timezone_of_schedule, "name", timezone_of_schedule) == "Asia/Ho_Chi_Minh"
    assert daily.timetable.expression == "0 6 * * *"
    assert daily.catchup is True
    assert daily.max_active_runs == 1
    assert "business_date" in daily.params


def test_business_date_comes_from_the_param_or_the_day_before_the_run():
    six_am_in_hanoi = datetime(2024, 11, 15, 23, 0, tzinfo=timezone.utc)  # 16/11 06:00 +07
    assert resolve_business_date(None, six_am_in_hanoi) == date(2024, 11, 15)
    assert resolve_business_date("2024-11-02", six_am_in_hanoi) == date(2024, 11, 2)
    with pytest.raises(ValueError, match="business_date"):
        resolve_business_date(None, None)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        resolve_business_date("16/11/2024", None)


def test_every_task_of_every_dag_has_an_execution_timeout(dagbag):
    from chiso.core import settings

    day_deadline = int(settings.require("CHISO_PORTAL_DAY_DEADLINE_SECONDS"))
    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            assert task.execution_timeout is not None, f"{dag_id}.{task.task_id} could run for ever"
            if task.task_id.startswith("fetch_"):
                # The fetch's own deadline, with its clearer message, must come before Airflow's.
                assert task.execution_timeout.total_seconds() > day_deadline, task.task_id
