"""Scale-out: the daily DAG on real Celery workers gives what one machine gives, even when a worker dies.

One business day runs twice from the same portal simulator, into two warehouses: once as the
end-to-end tests run it (``airflow dags test``, one process), once on the CeleryExecutor (an
api-server, a scheduler, a dag-processor and two ``airflow celery worker`` processes on this
machine's Redis, chiso.dev.celery_cluster). Half-way through the Celery run's loads, the worker running
``load_dossiers`` is SIGKILLed with every task it runs; the scheduler sees their heartbeats stop and
the tasks retry on the other worker. Both runs must end with the same marts, the same ``reporting``
rows and the same e-mails, and the Celery warehouse must show every load and every e-mail once.

Costs about 8 minutes on 2 busy cores (two DAG runs, a 20-second heartbeat timeout): marked slow.
"""

from __future__ import annotations

import hashlib
import time
from datetime import date

import psycopg
import pytest

from chiso.orchestration.airflow_env import AirflowSetup
from chiso.dev.celery_cluster import CeleryCluster
from chiso.contract import ENTITIES
from chiso.dev.mailcatcher import MailCatcher
from chiso.simulator.scenarios import get_scenario
from chiso.simulator.server import PortalSimulator, RunningSimulator

pytest.importorskip("airflow.providers.celery")
pytestmark = pytest.mark.slow  # about 8 minutes on the shared 2 cores

TOKEN = "celery-token"
DAY = date(2024, 11, 14)
RECIPIENTS = """
recipients:
  - email: huyen@cukuin.example.vn
    name: UBND huyện Cư Kuin
    scope: all
  - email: chutich@eaktur.example.vn
    name: Chủ tịch UBND xã Ea Ktur
    scope: 000.37.27.H15
  - email: chutich@xa31.example.vn
    name: Chủ tịch UBND xã thứ hai
    scope: 000.31.27.H15
data_engineering:
  - email: dulieu@chiso.example.vn
    name: Nhóm kỹ thuật dữ liệu
"""
BATCH_SIZE = 2  # 3 readers of the nightly e-mail: two mapped send_report tasks
# Schemas a person or a BI tool reads; the raw layer differs by construction (load ids, load times).
COMPARED_SCHEMAS = ("marts", "reporting")
# Rows that say when or by which run something happened, not what the data is.
RUN_TABLES = {"reporting.publication_status"}
RUN_COLUMNS = ["built_at"]  # the incremental engine's stamp of the build that wrote a row


def query(url: str, sql: str, params=None) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def fingerprints(url: str) -> dict[str, str]:
    """sha256 of each table's sorted rows in the compared schemas, without the builds' timestamps."""
    tables = [name for (name,) in query(url, """
        select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = any(%s) and c.relkind in ('r', 'p', 'v', 'm') and not c.relispartition""",
        (list(COMPARED_SCHEMAS),))]
    return {table: hashlib.sha256("\n".join(sorted(row[0] for row in query(
        url, f"select (to_jsonb(t) - %s::text[])::text from {table} as t", (RUN_COLUMNS,)))).encode()).hexdigest()
        for table in sorted(tables) if table not in RUN_TABLES}


def mails(catcher: MailCatcher) -> list[tuple[str, str, str, str]]:
    """(recipient, subject, plain text, HTML) of every message, sorted: what a reader gets."""
    def body(message, kind):
        part = message.get_body((kind,))
        return part.get_content() if part is not None else ""
    return sorted((str(m["To"]), str(m["Subject"]), body(m, "plain"), body(m, "html")) for m in catcher.messages())


@pytest.fixture(scope="module")
def world(make_database, tmp_path_factory):
    home = tmp_path_factory.mktemp("chiso-celery")
    recipients = home / "recipients.yml"
    recipients.write_text(RECIPIENTS, encoding="utf-8")
    with RunningSimulator(PortalSimulator(2024, get_scenario("cu_kuin_2024")), TOKEN) as simulator, \
            MailCatcher(home / "mail-local") as local_mail, MailCatcher(home / "mail-celery") as celery_mail:
        def setup(name: str, mail: MailCatcher) -> AirflowSetup:
            return AirflowSetup(
                home=home / f"airflow-{name}", chiso_home=home / name,
                metadata_url=make_database(f"chiso_test_{name}_af").replace("postgresql://", "postgresql+psycopg2://"),
                warehouse_url=make_database(f"chiso_test_{name}_wh"), portal_url=simulator.url, portal_token=TOKEN,
                smtp_host=mail.host, smtp_port=mail.port, pseudonym_key="celery-secret-key",
                recipients_file=recipients, retry_delay_seconds=1,
                settings={"CHISO_REPORT_BATCH_SIZE": str(BATCH_SIZE)})
        yield {"local": setup("local", local_mail), "celery": setup("celery", celery_mail),
               "local_mail": local_mail, "celery_mail": celery_mail}


@pytest.fixture(scope="module")
def local_run(world):
    setup = world["local"]
    setup.migrate()
    result = setup.test_dag_run("2024-11-20T10:00:00+07:00", {"business_date": DAY.isoformat()})
    assert result.returncode == 0, f"DAG run failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return world


@pytest.fixture(scope="module")
def celery_run(local_run):
    """The day on two Celery workers; the worker running load_dossiers is killed mid-task."""
    setup = local_run["celery"]
    # Hold every load at its first statement (chiso.core.warehouse.ensure_schema's lock) until the worker
    # is dead: the kill then lands inside a running load task, never between two tasks.
    held = psycopg.connect(setup.warehouse_url, autocommit=True)
    held.execute("select pg_advisory_lock(hashtext('chiso.ensure_schema'))")
    try:
        with CeleryCluster(setup, workers=2, concurrency=4) as cluster:
            run_id = cluster.trigger({"business_date": DAY.isoformat()})
            victim = _wait_for_running(cluster, run_id, "load_dossiers")
            worker = _worker_of(cluster, victim["id"])
            killed = {ti["task_id"] for ti in cluster.task_instances(run_id)
                      if ti["state"] == "running" and cluster.worker_running(ti["id"]) == worker}
            cluster.kill(cluster.worker_name(worker))
            held.close()  # the loads may go on; the killed ones wait for their heartbeat to time out
            state = cluster.wait(run_id, timeout=900)
            instances = cluster.task_instances(run_id)
        assert state == "success", "\n".join(f"{ti['task_id']}[{ti['map_index']}]: {ti['state']}" for ti in instances)
    finally:
        held.close()
    return {**local_run, "killed": killed, "instances": instances}


def _wait_for_running(cluster: CeleryCluster, run_id: str, task_id: str, timeout: float = 300) -> dict:
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        running = [ti for ti in cluster.running(run_id, task_id) if ti["task_id"] == task_id]
        if running:
            return running[0]
        assert cluster.run_state(run_id) not in ("success", "failed"), f"{task_id} never ran"
        time.sleep(0.2)
    raise TimeoutError(f"{task_id} did not start within {timeout} s")


def _worker_of(cluster: CeleryCluster, ti_id: str, timeout: float = 30) -> int:
    ends = time.monotonic() + timeout
    while time.monotonic() < ends:
        worker = cluster.worker_running(ti_id)
        if worker is not None:
            return worker
        time.sleep(0.2)
    raise TimeoutError(f"No worker process runs task instance {ti_id}")


def test_the_killed_tasks_ran_again_on_the_other_worker(celery_run):
    tries = {(ti["task_id"], ti["map_index"]): (ti["state"], ti["try_number"]) for ti in celery_run["instances"]}
    assert all(state == "success" for state, _ in tries.values()), tries
    retried = {task_id for (task_id, _), (_, number) in tries.items() if number > 1}
    assert "load_dossiers" in celery_run["killed"]
    # Every task the dead worker was running ran once more, on the other worker, and succeeded.
    assert celery_run["killed"] <= retried, (celery_run["killed"], retried)
    assert all(tries[(task_id, -1)][1] == 2 for task_id in celery_run["killed"]), tries


def test_the_report_was_sent_by_mapped_batches(celery_run):
    batches = sorted(ti["map_index"] for ti in celery_run["instances"] if ti["task_id"] == "send_report")
    assert batches == [0, 1]  # 3 readers by BATCH_SIZE


def test_every_load_is_in_the_ledger_once(celery_run):
    url = celery_run["celery"].warehouse_url
    ledger = query(url, "select entity, status, count(*) from raw.load_ledger where business_date = %s "
                        "group by entity, status", (DAY,))
    assert sorted(ledger) == sorted((entity, "loaded", 1) for entity in ENTITIES), ledger
    local_url = celery_run["local"].warehouse_url
    for entity in ENTITIES:
        counts = "select rows_in_manifest, rows_loaded, rows_quarantined, checksum from raw.load_ledger " \
                 "where entity = %s and business_date = %s"
        assert query(url, counts, (entity, DAY)) == query(local_url, counts, (entity, DAY)), entity


def test_the_same_marts_and_reporting_rows_as_one_machine(celery_run):
    local, celery = fingerprints(celery_run["local"].warehouse_url), fingerprints(celery_run["celery"].warehouse_url)
    assert any(table.startswith("reporting.") for table in local) and any(t.startswith("marts.") for t in local)
    assert local.keys() == celery.keys()
    # pipeline_health counts the runs themselves (gate runs, publications, retries): it may differ by design.
    differ = [table for table in local if local[table] != celery[table]
              and table not in ("marts.pipeline_health", "reporting.pipeline_health")]
    assert not differ, f"differ between the LocalExecutor and the Celery run: {differ}"


def test_the_same_emails_each_sent_once(celery_run):
    local, celery = mails(celery_run["local_mail"]), mails(celery_run["celery_mail"])
    # The three readers of the nightly e-mail (the data team's entry gets the alerts, not this report).
    assert {m[0] for m in local} == {"huyen@cukuin.example.vn", "chutich@eaktur.example.vn",
                                     "chutich@xa31.example.vn"}, [m[:2] for m in local]
    assert [m[:2] for m in celery] == [m[:2] for m in local], "who got what"
    assert celery == local
    deliveries = query(celery_run["celery"].warehouse_url,
                       "select recipient, count(*) from ops.report_deliveries where business_date = %s "
                       "group by recipient", (DAY,))
    assert sorted(deliveries) == sorted((m[0], 1) for m in local)
