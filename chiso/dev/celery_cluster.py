"""Airflow with the CeleryExecutor on one machine: the components a DAG run needs, as real processes.

The test of the scale-out (tests/test_celery_executor.py) and its benchmark (scripts/bench_celery.py)
start what the compose profile ``celery`` runs on several machines (docker-compose.yml): an api-server
(Airflow 3 workers reach the metadata database only through its execution API), a scheduler, a
dag-processor and N ``airflow celery worker`` processes, sharing a Redis broker. Each cluster has its
own Celery queue on its own Redis database, so that parallel runs on one Redis never take each other's
tasks.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests

from chiso.orchestration.airflow_env import AirflowSetup
from chiso.dev.ports import free_port

# A Redis database the rest of chiso does not use; the queue name keeps runs on it apart.
DEFAULT_BROKER = "redis://127.0.0.1:6379/13"
FINISHED = ("success", "failed")


@dataclass
class CeleryCluster:
    """``with CeleryCluster(setup, workers=2) as cluster: cluster.run_day(...)``."""

    setup: AirflowSetup
    workers: int = 2
    concurrency: int = 4  # task slots per worker (a worker per machine, a slot per core)
    broker_url: str = DEFAULT_BROKER
    # How long a task whose worker died stays "running" before the scheduler fails it (it then retries).
    heartbeat_timeout_seconds: int = 20
    queue: str = field(default_factory=lambda: f"chiso-{uuid.uuid4().hex[:8]}")
    api_port: int = field(default_factory=free_port)
    _processes: dict[str, subprocess.Popen] = field(default_factory=dict, init=False)
    _jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), init=False)

    @property
    def logs(self) -> Path:
        return self.setup.home / "cluster-logs"

    def environment(self) -> dict[str, str]:
        """The setup's environment with the CeleryExecutor: what every component and worker shares."""
        metadata = self.setup.metadata_url
        return {
            **os.environ,
            **self.setup.environment(),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata.replace("+psycopg2", ""),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.concurrency),
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.api_port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
            # The scheduler signs each task's token, the api-server checks it: one secret for both.
            "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
            "AIRFLOW__CORE__PARALLELISM": str(self.workers * self.concurrency),
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(self.workers * self.concurrency),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(self.heartbeat_timeout_seconds),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            # Scheduled runs are the scheduler's business in production; here only the runs we trigger.
            "CHISO_PIPELINE_START": "2099-01-01",
        }

    # ------------------------------------------------------------------ processes

    def __enter__(self) -> CeleryCluster:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.setup.migrate()
        self._start("api-server", "api-server", "--port", str(self.api_port), "--host", "127.0.0.1")
        self._start("scheduler", "scheduler")
        self._start("dag-processor", "dag-processor")
        for number in range(1, self.workers + 1):
            self.start_worker(number)
        self._wait_for_api()
        return self

    def __exit__(self, *exc) -> None:
        for name in list(self._processes):
            self.stop(name)
        self._purge_queue()

    def _start(self, name: str, *args: str) -> None:
        airflow = str(Path(sys.executable).with_name("airflow"))
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it open
        # Each component leads its own process group, so that killing it kills its task runners too.
        self._processes[name] = subprocess.Popen([airflow, *args], env=self.environment(), stdout=log,
                                                 stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def worker_name(self, number: int) -> str:
        return f"worker-{number}"

    def start_worker(self, number: int) -> None:
        # --skip-serve-logs: N workers on one machine would all listen on the log server's one port.
        self._start(self.worker_name(number), "celery", "worker", "--queues", self.queue,
                    "--concurrency", str(self.concurrency), "--celery-hostname",
                    f"{self.queue}-{number}@{socket.gethostname()}", "--without-mingle", "--without-gossip",
                    "--skip-serve-logs")

    def kill(self, name: str) -> None:
        """SIGKILL a component and everything it started, as if its machine died (no clean shutdown)."""
        process = self._processes.pop(name)
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()

    def worker_running(self, ti_id: str) -> int | None:
        """The number of the worker whose processes run the task instance ``ti_id`` (task_instance.id)
        now: the supervisor a worker forks for a task is titled with it."""
        import psutil

        for name, process in self._processes.items():
            if not name.startswith("worker-"):
                continue
            try:
                children = psutil.Process(process.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            for child in children:
                try:
                    title = " ".join(child.cmdline())
                except psutil.Error:
                    continue
                if str(ti_id) in title:
                    return int(name.removeprefix("worker-"))
        return None

    def stop(self, name: str) -> None:
        process = self._processes.pop(name)
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def _purge_queue(self) -> None:
        import redis

        client = redis.Redis.from_url(self.broker_url)
        client.delete(self.queue, *client.keys(f"{self.queue}*"))

    def _wait_for_api(self, timeout: float = 180) -> None:
        ends = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health"
        while time.monotonic() < ends:
            self._check_alive()
            try:
                if requests.get(url, timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        raise TimeoutError(f"The api-server did not answer {url} within {timeout:.0f} s: see {self.logs}")

    def _check_alive(self) -> None:
        for name, process in self._processes.items():
            if process.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"Airflow's {name} exited with {process.returncode}:\n{tail}")

    # ------------------------------------------------------------------ DAG runs

    def _metadata(self):
        return psycopg.connect(self.setup.metadata_url.replace("+psycopg2", ""), autocommit=True)

    def wait_for_dag(self, dag_id: str = "chiso_daily", timeout: float = 180) -> None:
        """Until the dag-processor has serialised the DAG (a trigger before that is refused)."""
        ends = time.monotonic() + timeout
        while time.monotonic() < ends:
            self._check_alive()
            with self._metadata() as conn:
                if conn.execute("select 1 from serialized_dag where dag_id = %s", (dag_id,)).fetchone():
                    return
            time.sleep(1)
        raise TimeoutError(f"{dag_id} was not parsed within {timeout:.0f} s: see {self.logs}/dag-processor.log")

    def trigger(self, conf: dict, dag_id: str = "chiso_daily") -> str:
        self.wait_for_dag(dag_id)
        run_id = f"celery__{uuid.uuid4().hex[:12]}"
        result = subprocess.run([str(Path(sys.executable).with_name("airflow")), "dags", "trigger", dag_id,
                                 "--run-id", run_id, "--conf", json.dumps(conf)],
                                env=self.environment(), capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"airflow dags trigger failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        return run_id

    def run_state(self, run_id: str) -> str | None:
        with self._metadata() as conn:
            row = conn.execute("select state from dag_run where run_id = %s", (run_id,)).fetchone()
        return row[0] if row else None

    def wait(self, run_id: str, timeout: float = 900, poll: float = 1.0, until=None) -> str:
        """The run's final state; or, with ``until(cluster)``, return as soon as that holds."""
        ends = time.monotonic() + timeout
        while time.monotonic() < ends:
            self._check_alive()
            if until is not None and until(self):
                return "condition"
            state = self.run_state(run_id)
            if state in FINISHED:
                return state
            time.sleep(poll)
        raise TimeoutError(f"DAG run {run_id} did not finish within {timeout:.0f} s (state {self.run_state(run_id)})")

    def task_instances(self, run_id: str) -> list[dict]:
        """task_id, map_index, state, try_number, hostname, start, end and id of every task of the run."""
        with self._metadata() as conn:
            rows = conn.execute(
                "select task_id, map_index, state, try_number, hostname, start_date, end_date, id "
                "from task_instance where run_id = %s order by start_date nulls last", (run_id,)).fetchall()
        keys = ("task_id", "map_index", "state", "try_number", "hostname", "start_date", "end_date", "id")
        return [dict(zip(keys, row)) for row in rows]

    def running(self, run_id: str, task_prefix: str) -> list[dict]:
        return [ti for ti in self.task_instances(run_id)
                if ti["state"] == "running" and ti["task_id"].startswith(task_prefix)]
