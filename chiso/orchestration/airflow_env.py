"""The environment the demo and the end-to-end tests give Airflow, and the commands they run.

A data engineer's deployment sets the same variables (docker-compose.yml does); nothing here is
needed by the DAG itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from chiso.core.settings import REPO_ROOT


@dataclass(frozen=True)
class AirflowSetup:
    home: Path
    metadata_url: str  # SQLAlchemy URL of Airflow's own database
    warehouse_url: str
    portal_url: str
    portal_token: str
    smtp_host: str
    smtp_port: int
    pseudonym_key: str
    chiso_home: Path
    recipients_file: Path | None = None
    # Runs whose logical date is before the DAG's start date run no task at all.
    pipeline_start: str = "2024-01-01"
    retry_delay_seconds: int = 60
    demo_mode: bool = True  # the demo and the tests: any pseudonymisation key will do (CHISO_DEMO_MODE)
    settings: dict[str, str] = field(default_factory=dict)  # further chiso settings (chiso.core.settings)

    def environment(self) -> dict[str, str]:
        portal = {"conn_type": "http", "host": self.portal_url, "password": self.portal_token}
        smtp = {"conn_type": "smtp", "host": self.smtp_host, "port": self.smtp_port,
                "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "chiso@localhost",
                          "retry_limit": 0, "timeout": 10}}
        key = {"conn_type": "generic", "password": self.pseudonym_key}
        env = {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Asia/Ho_Chi_Minh",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_url,
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW_CONN_CHISO_PORTAL": json.dumps(portal),
            "AIRFLOW_CONN_CHISO_SMTP": json.dumps(smtp),
            "AIRFLOW_CONN_CHISO_PSEUDONYM_KEY": json.dumps(key),
            "CHISO_WAREHOUSE_URL": self.warehouse_url,
            "CHISO_HOME": str(self.chiso_home),
            "CHISO_PIPELINE_START": self.pipeline_start,
            "CHISO_RETRY_DELAY_SECONDS": str(self.retry_delay_seconds),
            "CHISO_DEMO_MODE": "true" if self.demo_mode else "false",
            # No scheduler or API server here: alerts name the chiso command that re-runs a day.
            "CHISO_CLI": str(Path(sys.executable).with_name("chiso")),
            "NO_PROXY": "*",  # macOS: keep forked task runners away from the system proxy lookup
        }
        if self.recipients_file:
            env["CHISO_RECIPIENTS_FILE"] = str(self.recipients_file)
        return {**env, **self.settings}

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run an ``airflow`` CLI command in this setup; output is captured for the caller."""
        env = {**os.environ, **self.environment()}
        airflow = str(Path(sys.executable).with_name("airflow"))
        return subprocess.run([airflow, *args], env=env, capture_output=True, text=True, check=check)

    def migrate(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        result = self.run("db", "migrate", check=False)
        if result.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")

    def test_dag_run(self, logical_date: str, conf: dict | None = None,
                     mark_success_pattern: str | None = None,
                     dag_id: str = "chiso_daily") -> subprocess.CompletedProcess:
        """One real DAG run (``airflow dags test``) of chiso_daily; exit code 0 iff the run succeeded."""
        return self.run(*_dags_test_args(dag_id, logical_date, conf, mark_success_pattern), check=False)

    def stream_dag_run(self, logical_date: str, conf: dict | None, log: Path, on_line: Callable[[str], None],
                       dag_id: str = "chiso_daily") -> int:
        """``airflow dags test`` with its output written to ``log`` and handed line by line to ``on_line`` as
        it comes (the progress display); returns the exit code, 0 iff the run succeeded."""
        env = {**os.environ, **self.environment()}
        airflow = str(Path(sys.executable).with_name("airflow"))
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w", encoding="utf-8") as sink, subprocess.Popen(
                [airflow, *_dags_test_args(dag_id, logical_date, conf, None)], env=env, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace") as process:
            for line in process.stdout:
                sink.write(line)
                on_line(line)
        return process.returncode


def _dags_test_args(dag_id: str, logical_date: str, conf: dict | None, mark_success_pattern: str | None) -> list[str]:
    args = ["dags", "test", dag_id, logical_date]
    if conf:
        args += ["--conf", json.dumps(conf)]
    if mark_success_pattern:
        args += ["--mark-success-pattern", mark_success_pattern]
    return args
