"""The chiso command: wrong input ends in one sentence and exit code 2; status and reports due read a real
warehouse; progress is quiet when the output is not a terminal.

The commands run as a user runs them, in a subprocess through the console script the set-up installs.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import psycopg
import pytest
from rich.console import Console

from chiso.core import settings
from chiso.orchestration.backfill import backfill
from chiso.contract import ENTITIES
from chiso.dev.ports import free_port
from chiso.cli.progress import Progress

CHISO = Path(sys.executable).with_name("chiso")
DAY_1, DAY_2 = date(2024, 11, 14), date(2024, 11, 15)


def chiso(*args: str, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CHISO_")}
    environment.update(env or {})
    return subprocess.run([str(CHISO), *args], capture_output=True, text=True, env=environment, timeout=timeout)


def assert_one_sentence(result: subprocess.CompletedProcess, *must_contain: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in must_contain:
        assert text in lines[0], lines[0]
    return lines[0]


def test_the_console_script_is_installed_and_lists_every_command():
    result = chiso("--help")
    assert result.returncode == 0, result.stderr
    for command in ("demo", "run", "backfill", "status", "explain", "reports", "targets", "docs", "warehouse"):
        assert f"  {command} " in result.stdout


@pytest.mark.parametrize("args, given", [
    (["run", "--days", "2024-13-40"], "2024-13-40"),
    (["backfill", "--from", "2024-11-15", "--to", "32/11/2024"], "32/11/2024"),
    (["reports", "due", "--date", "tomorrow"], "tomorrow"),
    (["status", "--from", "15-11-2024"], "15-11-2024"),
])
def test_a_date_that_is_no_date_is_refused_in_one_sentence(args, given):
    line = assert_one_sentence(chiso(*args), repr(given), "YYYY-MM-DD or dd/mm/yyyy")
    assert line.startswith("chiso: Invalid value for '--")


@pytest.mark.parametrize("variable, value, allowed", [
    ("CHISO_SIMULATOR_VOLUME", "lots", "a number greater than 0"),
    ("CHISO_PORTAL_TRANSFER", "ftp", "one of 'pages', 'files'"),
    ("CHISO_PIPELINE_START", "2024-13-40", "YYYY-MM-DD or dd/mm/yyyy"),
    ("CHISO_PORTAL_PAGE_SIZE", "0", "a whole number greater than 0"),
    ("CHISO_DEMO_MODE", "yes", "one of 'true', 'false'"),
    ("CHISO_REPORT_HOLD_NOTICE", "always", "one of 'none', 'notice'"),
])
def test_a_wrong_setting_names_the_variable_the_value_and_what_is_allowed(variable, value, allowed):
    # `targets check` needs no warehouse: the settings are checked before any command runs.
    assert_one_sentence(chiso("targets", "check", env={variable: value}), f"{variable}={value!r}", allowed)


def test_a_vietnamese_date_is_a_date():
    assert settings.parse_date("15/11/2024") == settings.parse_date("2024-11-15") == DAY_2
    with pytest.raises(ValueError, match="'2024-13-40' is not a date"):
        settings.parse_date("2024-13-40")


def test_an_unreachable_warehouse_is_one_sentence_with_the_password_masked():
    url = f"postgresql://chiso:s3cret-pw@127.0.0.1:{free_port()}/chiso"
    result = chiso("status", env={"CHISO_WAREHOUSE_URL": url})
    assert_one_sentence(result, "cannot be reached", f"postgresql://chiso:***@127.0.0.1:")
    assert "s3cret-pw" not in result.stderr + result.stdout


def test_a_warehouse_url_of_another_kind_is_refused_masked():
    result = chiso("status", env={"CHISO_WAREHOUSE_URL": "mysql://root:s3cret-pw@db/chiso"})
    assert_one_sentence(result, "CHISO_WAREHOUSE_URL='mysql://root:***@db/chiso'", "postgresql://")
    assert "s3cret-pw" not in result.stderr + result.stdout


def test_without_a_warehouse_the_command_says_how_to_get_one(tmp_path):
    result = chiso("status", env={"CHISO_HOME": str(tmp_path)})
    assert_one_sentence(result, "CHISO_WAREHOUSE_URL is not set", "warehouse start", "demo")


# ---------------------------------------------------------------- on a real warehouse


@pytest.fixture(scope="module")
def loaded_warehouse(make_database, tmp_path_factory):
    """Two days loaded by the real fetch → land → load; the raw gate run on the first; the first day's
    report delivered through a real SMTP server and its publication recorded."""
    from chiso.quality.gates import gate_raw
    from chiso.dev.mailcatcher import MailCatcher
    from chiso.reports.delivery import deliver_once, record_publication
    from chiso.reports.mail import SmtplibMailer  # noqa: F401 - the mail module's own SMTP client
    from chiso.reports.recipients import Recipient
    from chiso.transform.runner import run_dbt

    url = make_database("chiso_test_cli")
    home = tmp_path_factory.mktemp("cli-home")
    os.environ["CHISO_HOME"] = str(home)
    try:
        backfill(url, "cu_kuin_2024", [DAY_1, DAY_2], landing_root=home / "landing", pseudonym_key="x" * 32)
        gates = gate_raw(DAY_1, url)
        run_dbt(["seed", "--select", "target_plans", "target_registry", "report_deadlines"], url)
        import smtplib
        from email.message import EmailMessage

        recipients = [Recipient(email=f"{name}@cukuin.example.vn", name=name) for name in ("a", "b")]
        with MailCatcher(home / "mail") as mail:
            def send(recipient, message_id):
                message = EmailMessage()
                message["To"], message["From"], message["Subject"] = recipient.email, "chiso@localhost", "test"
                message["Message-ID"] = message_id
                with smtplib.SMTP(mail.host, mail.port) as smtp:
                    smtp.send_message(message)

            deliver_once("daily_indicators", DAY_1, recipients, send, url=url)
        record_publication("daily_indicators", DAY_1, len(recipients), url)
        # A publication of the reporting schema needs a full dbt build (tests/test_end_to_end.py publishes
        # through the DAG); here its ledger row, with one warning, is all `status` reads.
        with psycopg.connect(url) as conn:
            conn.execute("insert into ops.reporting_publications (business_date, relations, warnings) "
                         "values (%s, 5, '[{\"suite\": \"raw\", \"name\": \"x\"}]')", (DAY_1,))
    finally:
        os.environ.pop("CHISO_HOME", None)
    return {"url": url, "home": home, "gates": gates}


def _raw_rows(url: str, day: date) -> int:
    """Rows the raw layer holds for a day, counted in the entity tables themselves (not the ledger)."""
    with psycopg.connect(url) as conn:
        return sum(conn.execute(f"select count(*) from raw.{entity.raw_table} where business_date = %s",
                                (day,)).fetchone()[0] for entity in ENTITIES.values())


def test_status_shows_each_day_loaded_gated_published_and_sent(loaded_warehouse):
    url = loaded_warehouse["url"]
    result = chiso("status", "--from", "14/11/2024", "--to", "2024-11-15", env={"CHISO_WAREHOUSE_URL": url})
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout  # no terminal codes in a pipe
    lines = {line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[1:-1]]
             for line in result.stdout.splitlines() if line.startswith("│")}
    assert set(lines) == {DAY_1.isoformat(), DAY_2.isoformat()}
    day_1, day_2 = lines[DAY_1.isoformat()], lines[DAY_2.isoformat()]
    assert day_1[1] == day_2[1] == str(len(ENTITIES))
    assert day_1[2] == f"{_raw_rows(url, DAY_1):,}" and day_2[2] == f"{_raw_rows(url, DAY_2):,}"
    gates = loaded_warehouse["gates"]
    expected_gate = (f"{len(gates)}/{len(gates)} passed" if all(g.passed for g in gates)
                     else "FAILED: " + ", ".join(sorted({g.suite for g in gates if not g.passed})))
    assert day_1[3] == expected_gate
    assert day_2[3] == "not run"
    assert day_1[4] != "no" and day_2[4] == "no"
    assert (day_1[5], day_1[6]) == ("2", "1") and (day_2[5], day_2[6]) == ("0", "0")
    assert "1 gate warning(s)" in day_1[7] and day_2[7] == "—"


def test_reports_due_reads_the_campaigns_from_the_warehouse(loaded_warehouse):
    from chiso.reports.campaign import campaigns_from_seeds, due_on

    expected = due_on(date(2024, 11, 24), campaigns_from_seeds())
    assert expected, "the seeds have a campaign report due on 24/11/2024"
    result = chiso("reports", "due", "--date", "24/11/2024", env={"CHISO_WAREHOUSE_URL": loaded_warehouse["url"]})
    assert result.returncode == 0, result.stderr
    assert [line.split("\t")[0] for line in result.stdout.strip().splitlines()] == [d.report_code for d in expected]
    assert "Báo cáo định kỳ 10 ngày" in result.stdout


# ---------------------------------------------------------------- progress


DAG_OUTPUT = """\
2026-12-05T13:08:05.332220Z [info     ] [DAG TEST] starting task_id=load_units map_index=-1 [airflow.sdk.definitions.dag]
2026-12-05T13:08:07.332220Z [info     ] [DAG TEST] end task task_id=load_units map_index=-1 [airflow.sdk.definitions.dag]
2026-12-05T13:08:07.400000Z [info     ] [DAG TEST] starting task_id=dbt_build map_index=-1 [airflow.sdk.definitions.dag]
"""


def _watch(console: Console) -> tuple[Progress, str]:
    progress = Progress(console)
    with progress.day("2024-11-14 chiso_daily", rows_of_load=lambda task_id: 1000) as watch:
        for line in DAG_OUTPUT.splitlines(keepends=True):
            watch.feed(line)
    progress.step(f"done; {watch.summary()}")
    return progress, console.file.getvalue()


def test_progress_is_quiet_when_the_output_is_not_a_terminal():
    _, output = _watch(Console(file=io.StringIO()))
    assert output == "==> done; 1,000 rows loaded (500 rows/s)\n"


def test_progress_on_a_terminal_shows_each_load_and_its_rate():
    _, output = _watch(Console(file=io.StringIO(), force_terminal=True, width=120))
    assert "load_units: 1,000 rows in 2.0 s (500 rows/s)" in output
    assert "==> done; 1,000 rows loaded (500 rows/s)" in output


def test_progress_says_a_load_was_re_used():
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    progress = Progress(console)
    with progress.day("2024-11-14 chiso_daily", rows_of_load=lambda task_id: None) as watch:
        for line in DAG_OUTPUT.splitlines(keepends=True):
            watch.feed(line)
    assert "load_units: already loaded by an earlier run, re-used" in console.file.getvalue()
    assert watch.rows_loaded == 0
