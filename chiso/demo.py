"""The demo: the daily pipeline, end to end, on this machine.

    python -m chiso.demo [--days 2024-11-14 2024-11-15] [--keep-running]

Starts what it needs under CHISO_HOME (default ./.work): a local PostgreSQL (unless
CHISO_WAREHOUSE_URL names one), the portal simulator, a mail catcher, an Airflow home and its
metadata database; then runs the real ``chiso_daily`` DAG for each day and shows what came out.
Running it again is harmless: extracts are re-used, loads are no-ops and no e-mail is sent twice.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import os
import secrets
import sys
from contextlib import ExitStack
from datetime import date
from pathlib import Path

import psycopg

from chiso import settings
from chiso.airflow_env import AirflowSetup
from chiso.localpg import LocalPostgres
from chiso.mailcatcher import MailCatcher
from chiso.reports.daily import build_daily_report, format_rate
from chiso.simulator.faults import FaultSchedule
from chiso.simulator.scenarios import get_scenario
from chiso.simulator.server import PortalSimulator, RunningSimulator

DEFAULT_DAYS = ["2024-11-14", "2024-11-15"]  # the eve and first day of Cư Kuin's 60-day campaign
WAREHOUSE_DB = "chiso"
AIRFLOW_DB = "chiso_airflow"


def _say(text: str) -> None:
    print(f"==> {text}", flush=True)


def _database_url(server_url: str, name: str) -> str:
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


def _ensure_database(server_url: str, name: str) -> str:
    with psycopg.connect(server_url, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
            conn.execute(f'create database "{name}"')
    return _database_url(server_url, name)


def _pseudonym_key(home: Path) -> str:
    """A random key kept outside the repository, created on the first demo run."""
    path = home / "pseudonym.key"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def _print_report(warehouse_url: str, day: date) -> None:
    report = build_daily_report(day, warehouse_url)
    names = [indicator.name_vi for indicator in report.indicators]
    print(f"\n    {'Đơn vị':<26}" + "".join(f"{name[:32]:>34}" for name in names))
    for unit in report.units:
        cells = "".join(
            f"{format_rate(v.rate) + f' ({v.numerator}/{v.denominator})':>34}"
            for v in (unit.values[i.code] for i in report.indicators))
        print(f"    {unit.unit_name:<26}{cells}")
    print()


def _print_mail(mail: MailCatcher, last_day: date, warehouse_url: str) -> None:
    """Where the e-mails went: every message the local SMTP catcher holds, and how to see one as a page."""
    _say(f"e-mails caught by the local SMTP server (.eml, open with any mail client): {mail.folder}")
    for path in sorted(mail.folder.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        print(f"    {path.name}  {path.stat().st_size // 1024:>4} KB  {str(message['To']):<34} {message['Subject']}")
    _say("a report as its recipient sees it, as a web page with its charts (warehouse running, e.g. after "
         f"--keep-running): CHISO_WAREHOUSE_URL={warehouse_url} python -m chiso.reports render "
         f"--date {last_day} --to chutich@eaktur.example.vn --out {settings.home() / 'reports'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", nargs="+", default=DEFAULT_DAYS, help="business dates to run (YYYY-MM-DD)")
    parser.add_argument("--keep-running", action="store_true",
                        help="leave the local Postgres running afterwards (stop it with --stop)")
    parser.add_argument("--stop", action="store_true", help="stop a local Postgres left running, then exit")
    args = parser.parse_args(argv)
    days = [date.fromisoformat(d) for d in args.days]
    home = settings.home().resolve()
    local_pg = LocalPostgres(home / "postgres")
    if args.stop:
        local_pg.stop()
        _say("local Postgres stopped")
        return 0

    with ExitStack() as stack:
        server_url = os.environ.get("CHISO_WAREHOUSE_URL")
        if server_url:
            _say(f"warehouse: {server_url.split('@')[-1]} (CHISO_WAREHOUSE_URL)")
            warehouse_url = server_url
            admin_url = server_url
        else:
            local_pg.start()
            if not args.keep_running:
                stack.callback(local_pg.stop)
            admin_url = local_pg.url
            warehouse_url = _ensure_database(admin_url, WAREHOUSE_DB)
            _say(f"local Postgres under {local_pg.root} on port {local_pg.port}; warehouse {warehouse_url}")
        metadata_url = _ensure_database(admin_url, AIRFLOW_DB).replace("postgresql://", "postgresql+psycopg2://")

        world = get_scenario(settings.require("CHISO_SIMULATOR_SCENARIO"),
                             float(settings.require("CHISO_SIMULATOR_VOLUME")))
        portal = PortalSimulator(int(settings.require("CHISO_SIMULATOR_SEED")), world,
                                 FaultSchedule.parse(settings.get("CHISO_SIMULATOR_FAULTS")))
        token = settings.require("CHISO_SIMULATOR_TOKEN")
        simulator = stack.enter_context(RunningSimulator(portal, token))
        mail = stack.enter_context(MailCatcher(home / "mail"))
        _say(f"portal simulator at {simulator.url}; mail catcher on {mail.host}:{mail.port} → {mail.folder}")

        setup = AirflowSetup(home=home / "airflow", metadata_url=metadata_url, warehouse_url=warehouse_url,
                             portal_url=simulator.url, portal_token=token, smtp_host=mail.host,
                             smtp_port=mail.port, pseudonym_key=_pseudonym_key(home), chiso_home=home,
                             recipients_file=Path(settings.require("CHISO_RECIPIENTS_FILE")),
                             retry_delay_seconds=int(settings.require("CHISO_RETRY_DELAY_SECONDS")))
        _say("airflow db migrate")
        setup.migrate()

        for day in days:
            _say(f"airflow dags test chiso_daily  (business_date {day})")
            before = len(mail.messages())
            result = setup.test_dag_run(f"{day.isoformat()}T23:00:00+07:00", {"business_date": day.isoformat()})
            log = home / "logs" / f"chiso_daily_{day.isoformat()}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(result.stdout + result.stderr, encoding="utf-8")
            if result.returncode != 0:
                _say(f"the run for {day} FAILED; its log: {log}")
                print("\n".join((result.stdout + result.stderr).splitlines()[-40:]))
                return 1
            sent = len(mail.messages()) - before
            _say(f"{day}: run succeeded, {sent} e-mail(s) sent"
                 + ("" if sent else " (already sent on an earlier run)") + f"; log: {log}")
            _print_report(warehouse_url, day)

        _print_mail(mail, days[-1], warehouse_url)
        _say(f"landing zone: {settings.landing_dir()}")
        _say(f"warehouse: psql {warehouse_url}  (schemas raw, staging, marts, reference, ops)")
        if args.keep_running and not server_url:
            _say("local Postgres left running: python -m chiso.demo --stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
