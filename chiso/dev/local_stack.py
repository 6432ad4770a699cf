"""Everything a day's run needs on this machine, for the demo and ``chiso run``/``chiso backfill``.

A warehouse (CHISO_WAREHOUSE_URL, or a local PostgreSQL under CHISO_HOME that is left running for the
user to query), Airflow's metadata database beside it, the portal simulator, a mail catcher and an
Airflow home; then real ``airflow dags test`` runs of the DAGs, with their progress on the terminal and
their full output in log files. What an earlier run left (the local server, the migrated metadata,
the landed extracts, the loads, the e-mails sent) is re-used, and said so.
"""

from __future__ import annotations

import os
import secrets
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg

from chiso.core import settings
from chiso.orchestration.airflow_env import AirflowSetup
from chiso.dev.localpg import LocalPostgres
from chiso.dev.mailcatcher import MailCatcher
from chiso.cli.progress import Progress
from chiso.core.warehouse import RAW_SCHEMA, check_reachable

WAREHOUSE_DB = "chiso"
AIRFLOW_DB = "chiso_airflow"
DAILY_DAG = "chiso_daily"
PERIODIC_DAG = "chiso_periodic_reports"


def database_url(server_url: str, name: str) -> str:
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


def ensure_database(server_url: str, name: str) -> tuple[str, bool]:
    """The URL of database ``name`` on the server, created if missing; and whether it existed."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        existed = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone() is not None
        if not existed:
            conn.execute(f'create database "{name}"')
    return database_url(server_url, name), existed


def pseudonym_key(home: Path) -> tuple[str, bool]:
    """A random key kept outside the repository, created on the first run; and whether it existed."""
    path = home / "pseudonym.key"
    existed = path.exists()
    if not existed:
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path.read_text().strip(), existed


@dataclass(frozen=True)
class DayRun:
    business_date: date
    succeeded: bool
    log: Path
    seconds: float
    rows_loaded: int
    mails_sent: int
    reused_loads: int  # entities of the day already loaded by an earlier run


class LocalStack:
    """Enter to start what is missing; leave to stop what was started (never the local warehouse)."""

    def __init__(self, home: Path, progress: Progress, faults: str | None = None):
        self.home = home.resolve()
        self.progress = progress
        self.faults = faults
        self.local_pg = LocalPostgres(self.home / "postgres")
        self.uses_local_pg = not settings.get("CHISO_WAREHOUSE_URL")
        self._stack = ExitStack()

    def __enter__(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def _start(self) -> None:
        from chiso.simulator.faults import FaultSchedule
        from chiso.simulator.scenarios import get_scenario
        from chiso.simulator.server import PortalSimulator, RunningSimulator

        say = self.progress.step
        if self.uses_local_pg:
            initialised = (self.local_pg.data / "PG_VERSION").exists()
            self.local_pg.start()
            admin_url = self.local_pg.url
            self.warehouse_url, existed = ensure_database(admin_url, WAREHOUSE_DB)
            reused = "re-used (already running)" if not self.local_pg.started_here else (
                "re-used, started again" if initialised else "created")
            say(f"local Postgres under {self.local_pg.root}, port {self.local_pg.port}: {reused}; "
                f"warehouse database {WAREHOUSE_DB} {'re-used' if existed else 'created'}")
        else:
            admin_url = self.warehouse_url = check_reachable(settings.get("CHISO_WAREHOUSE_URL"))
            say(f"warehouse: {settings.mask_url(self.warehouse_url)} (CHISO_WAREHOUSE_URL)")
        metadata_url, existed = ensure_database(admin_url, AIRFLOW_DB)
        self.metadata_url = metadata_url.replace("postgresql://", "postgresql+psycopg2://")

        world = get_scenario(settings.require("CHISO_SIMULATOR_SCENARIO"),
                             float(settings.require("CHISO_SIMULATOR_VOLUME")))
        faults = ";".join(f for f in (settings.get("CHISO_SIMULATOR_FAULTS"), self.faults) if f)
        portal = PortalSimulator(int(settings.require("CHISO_SIMULATOR_SEED")), world, FaultSchedule.parse(faults))
        token = settings.require("CHISO_SIMULATOR_TOKEN")
        self.simulator = self._stack.enter_context(RunningSimulator(portal, token))
        self.mail = self._stack.enter_context(MailCatcher(self.home / "mail"))
        say(f"portal simulator at {self.simulator.url}; mail catcher on {self.mail.host}:{self.mail.port} "
            f"→ {self.mail.folder}")
        key, key_existed = pseudonym_key(self.home)
        self.airflow = AirflowSetup(
            home=self.home / "airflow", metadata_url=self.metadata_url, warehouse_url=self.warehouse_url,
            portal_url=self.simulator.url, portal_token=token, smtp_host=self.mail.host, smtp_port=self.mail.port,
            pseudonym_key=key, chiso_home=self.home,
            recipients_file=Path(settings.require("CHISO_RECIPIENTS_FILE")),
            retry_delay_seconds=int(settings.require("CHISO_RETRY_DELAY_SECONDS")))
        say(f"pseudonymisation key {'re-used' if key_existed else 'created'}: {self.home / 'pseudonym.key'}")
        say("airflow db migrate" + (" (metadata database re-used: only what changed is migrated)" if existed else ""))
        self.airflow.migrate()

    def loaded_entities(self, day: date) -> int:
        with psycopg.connect(self.warehouse_url) as conn:
            if not conn.execute("select to_regclass(%s)", (f"{RAW_SCHEMA}.load_ledger",)).fetchone()[0]:
                return 0
            return conn.execute(f"select count(distinct entity) from {RAW_SCHEMA}.load_ledger "
                                "where business_date = %s and status = 'loaded'", (day,)).fetchone()[0]

    def _rows_of_load(self, day: date, run_started: float):
        def rows(task_id: str) -> int | None:
            entity = task_id.removeprefix("load_")
            with psycopg.connect(self.warehouse_url) as conn:
                # (every slice of an entity fetched by province, summed)
                row = conn.execute(
                    f"select sum(rows_loaded), count(*) from {RAW_SCHEMA}.load_ledger where entity = %s "
                    "and business_date = %s and status = 'loaded' and started_at >= to_timestamp(%s)",
                    (entity, day, run_started)).fetchone()
            return int(row[0] or 0) if row[1] else None  # None: loaded by an earlier run, re-used
        return rows

    def run_day(self, day: date, dag_id: str = DAILY_DAG) -> DayRun:
        """One real run of ``dag_id`` for a business date, its progress shown and its output in a log file."""
        log = self.home / "logs" / f"{dag_id}_{day.isoformat()}.log"
        reused = self.loaded_entities(day) if dag_id == DAILY_DAG else 0
        mails_before = len(list(self.mail.folder.glob("*.eml")))
        started = time.time()
        label = f"{day.isoformat()} {dag_id}"
        with self.progress.day(label, self._rows_of_load(day, started) if dag_id == DAILY_DAG else None) as watch:
            code = self.airflow.stream_dag_run(f"{day.isoformat()}T23:00:00+07:00", {"business_date": day.isoformat()},
                                               log, watch.feed, dag_id=dag_id)
        seconds = time.time() - started
        sent = len(list(self.mail.folder.glob("*.eml"))) - mails_before
        run = DayRun(day, code == 0, log, seconds, watch.rows_loaded, sent, reused)
        if dag_id == DAILY_DAG:
            loads = (f"{reused} entities already loaded on an earlier run, re-used" if reused
                     else watch.summary())
        else:
            loads = "campaign reports"
        self.progress.step(f"{label}: {'succeeded' if run.succeeded else 'FAILED'} in {seconds:.0f} s; {loads}; "
                           f"{sent} e-mail(s) sent" + ("" if sent or not run.succeeded else
                                                       " (none due, or already sent on an earlier run)")
                           + f"; log: {log}")
        return run

    def restart_command(self) -> str:
        return f"{Path('.venv') / 'bin' / 'chiso'} warehouse start"
