"""chiso: what a data engineer does with the pipeline and its warehouse, in one command.

    chiso demo                      the whole product on this machine (local Postgres, simulator, mail catcher)
    chiso run --days 2024-11-16     run the daily DAG for some days, on this machine's stack
    chiso backfill --from D --to D  the same for a range of days
    chiso status                    per day: loaded, gated, published, sent
    chiso explain …                 the dossiers behind one indicator value
    chiso targets check             validate the target registry seeds
    chiso reports due|render|resend the campaign reports due, a report as a recipient sees it, a re-send
    chiso docs build|serve          dbt docs and the Great Expectations Data Docs
    chiso warehouse start|stop      the local Postgres the demo leaves under CHISO_HOME

Every setting (CHISO_*) is validated before any command runs; a wrong value, a date that is no date or
a warehouse that cannot be reached is told in one sentence and the command exits with code 2.
Dates are written YYYY-MM-DD or dd/mm/yyyy.
"""

from __future__ import annotations

import os
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer._click.exceptions import NoArgsIsHelpError, UsageError

from chiso.core import settings
from chiso.core.settings import cli_path
from chiso.core.settings import SettingError

app = typer.Typer(help=__doc__.split("\n\n")[0], no_args_is_help=True, add_completion=False,
                  pretty_exceptions_show_locals=False, rich_markup_mode=None)
reports_app = typer.Typer(help="Reports: which are due, one as a recipient sees it, a deliberate re-send.",
                          no_args_is_help=True)
targets_app = typer.Typer(help="The target registry seeds.", no_args_is_help=True)
docs_app = typer.Typer(help="dbt docs and Data Docs, built and served locally.", no_args_is_help=True)
warehouse_app = typer.Typer(help="The local Postgres the demo keeps under CHISO_HOME.", no_args_is_help=True)
app.add_typer(reports_app, name="reports")
app.add_typer(targets_app, name="targets")
app.add_typer(docs_app, name="docs")
app.add_typer(warehouse_app, name="warehouse")


def _day(value: str | date) -> date:
    try:
        return settings.parse_date(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


Day = Annotated[date, typer.Option(parser=_day, metavar="DATE", help="YYYY-MM-DD or dd/mm/yyyy")]
Days = Annotated[Optional[list[date]], typer.Option(parser=_day, metavar="DATE",
                                                    help="a business date (YYYY-MM-DD or dd/mm/yyyy); repeat for more")]


@app.callback()
def _validate_settings() -> None:
    """Runs before every command: the whole environment's settings, checked."""
    settings.validate()


# ---------------------------------------------------------------- the warehouse


def _local_postgres():
    from chiso.dev.localpg import LocalPostgres

    return LocalPostgres(settings.home().resolve() / "postgres")


def use_warehouse() -> str:
    """The warehouse commands read: CHISO_WAREHOUSE_URL, else the local one the demo left running; checked."""
    from chiso.dev.local_stack import WAREHOUSE_DB, database_url
    from chiso.core.warehouse import check_reachable

    url = settings.get("CHISO_WAREHOUSE_URL")
    if not url:
        local = _local_postgres()
        if not local.running():
            raise SettingError(f"CHISO_WAREHOUSE_URL is not set and no local warehouse is running under {local.root}: "
                               f"start it with `{cli_path()} warehouse start` (or run `{cli_path()} demo`), "
                               "or set CHISO_WAREHOUSE_URL.")
        url = database_url(local.start().url, WAREHOUSE_DB)
        os.environ["CHISO_WAREHOUSE_URL"] = url  # for the code this command calls
    return check_reachable(url)


@warehouse_app.command("start")
def warehouse_start() -> None:
    """Start the local Postgres (on the port it had before, if free) and print its psql URL."""
    from chiso.dev.local_stack import WAREHOUSE_DB, ensure_database

    local = _local_postgres()
    if not (local.data / "PG_VERSION").exists():
        raise SettingError(f"There is no local warehouse under {local.root} yet: create it with `{cli_path()} demo`.")
    url, _ = ensure_database(local.start().url, WAREHOUSE_DB)
    print(f"local warehouse running: psql {url}")


@warehouse_app.command("stop")
def warehouse_stop() -> None:
    """Stop the local Postgres."""
    _local_postgres().stop()
    print("local Postgres stopped")


# ---------------------------------------------------------------- running days


def _run_days(days: list[date]) -> int:
    from chiso.dev.local_stack import LocalStack
    from chiso.cli.progress import Progress

    progress = Progress()
    with LocalStack(settings.home(), progress) as stack:
        failed = [run.business_date for run in map(stack.run_day, days) if not run.succeeded]
    progress.step(f"warehouse left running: psql {stack.warehouse_url}  (stop: {cli_path()} warehouse stop)"
                  if stack.uses_local_pg else f"warehouse: {settings.mask_url(stack.warehouse_url)}")
    if failed:
        progress.step(f"failed: {', '.join(map(str, failed))}; the alerts are in {stack.mail.folder}")
    return 1 if failed else 0


@app.command()
def run(days: Days = None) -> None:
    """Run the daily DAG (airflow dags test) for each day, on this machine's stack (as the demo does)."""
    if not days:
        raise typer.BadParameter("name at least one day, e.g. --days 2024-11-16", param_hint="--days")
    raise typer.Exit(_run_days(days))


@app.command()
def backfill(first: Annotated[date, typer.Option("--from", parser=_day, metavar="DATE")],
             last: Annotated[date, typer.Option("--to", parser=_day, metavar="DATE")]) -> None:
    """Run the daily DAG for every day from --from to --to, in order, on this machine's stack."""
    if last < first:
        raise typer.BadParameter(f"--to {last} is before --from {first}", param_hint="--to")
    raise typer.Exit(_run_days([first + timedelta(days=n) for n in range((last - first).days + 1)]))


@app.command()
def demo(days: Days = None,
         stop: Annotated[bool, typer.Option("--stop", help="stop the local Postgres the demo left running")] = False,
         ) -> None:
    """The whole product on this machine: nightly runs, a failed gate and its alert, a campaign report."""
    from chiso.dev import demo as demo_module

    if stop:
        warehouse_stop()
        return
    raise typer.Exit(demo_module.run_demo(days))


# ---------------------------------------------------------------- reading the warehouse


@app.command()
def status(first: Annotated[Optional[date], typer.Option("--from", parser=_day, metavar="DATE")] = None,
           last: Annotated[Optional[date], typer.Option("--to", parser=_day, metavar="DATE")] = None) -> None:
    """Per business day: what was loaded, gated, published and sent, with counts and warnings."""
    from rich.console import Console

    from chiso.orchestration.status import day_status, status_table

    url = use_warehouse()
    days = day_status(first or date.min, last or date.max, url)
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=120)  # a log or a pipe: no need to squeeze to 80 columns
    if not days:
        console.print("no business day loaded yet")
        return
    console.print(status_table(days))


@app.command()
def explain(unit: Annotated[str, typer.Option()], indicator: Annotated[str, typer.Option()],
            as_of: Annotated[date, typer.Option("--as-of", parser=_day, metavar="DATE")],
            period: Annotated[str, typer.Option(help="day, month, quarter or year")] = "year",
            population: Annotated[Optional[str], typer.Option(help="ON_TIME only: the other reading of its "
                                                                   "population (docs/engine.md)")] = None,
            outside_numerator_only: Annotated[bool, typer.Option(help="only the dossiers below 100%")] = False,
            csv_file: Annotated[Optional[Path], typer.Option("--csv", help="write the rows to this CSV file")] = None,
            as_published: Annotated[Optional[str], typer.Option(
                "--as-published", metavar="PUBLICATION",
                help="the dossiers as known at this publication (its id, or a business date)")] = None,
            ) -> None:
    """The dossiers behind one indicator value of a unit (chiso.publish.explain)."""
    from chiso.publish.explain import RECEIVED_IN_PERIOD, explain_and_write

    url = use_warehouse()
    try:
        explain_and_write(unit, indicator, as_of, period, population or RECEIVED_IN_PERIOD,
                          outside_numerator_only, csv_file, url, as_published=as_published)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@targets_app.command("check")
def targets_check(seeds: Annotated[Optional[Path], typer.Option(help="dbt seeds directory")] = None) -> None:
    """Validate the target registry seeds: one line per problem; exit 1 on any error."""
    from chiso.transform import targets

    raise typer.Exit(targets.main(["check", *(["--seeds", str(seeds)] if seeds else [])]))


@reports_app.command("due")
def reports_due(on: Annotated[date, typer.Option("--date", parser=_day, metavar="DATE")]) -> None:
    """The campaign reports that fall due on a business date."""
    from chiso.reports.__main__ import main as reports_main

    use_warehouse()
    raise typer.Exit(reports_main(["due", "--date", on.isoformat()]))


@reports_app.command("render")
def reports_render(on: Annotated[date, typer.Option("--date", parser=_day, metavar="DATE")],
                   to: Annotated[str, typer.Option("--to", help="a recipient of the recipients file")],
                   out: Annotated[Path, typer.Option("--out")],
                   report: Annotated[Optional[str], typer.Option(help="daily_indicators or a campaign code")] = None,
                   ) -> None:
    """Write a report as its recipient gets it: HTML with its charts (and a campaign report's Excel annex)."""
    from chiso.reports.__main__ import main as reports_main

    use_warehouse()
    raise typer.Exit(reports_main(["render", "--date", on.isoformat(), "--to", to, "--out", str(out),
                                   *(["--report", report] if report else [])]))


@reports_app.command("resend")
def reports_resend(on: Annotated[date, typer.Option("--date", parser=_day, metavar="DATE")],
                   to: Annotated[str, typer.Option("--to")], reason: Annotated[str, typer.Option("--reason")],
                   report: Annotated[Optional[str], typer.Option()] = None,
                   smtp: Annotated[Optional[str], typer.Option(help="HOST:PORT instead of the Airflow connection")] = None,
                   ) -> None:
    """Send one report to one recipient again, on purpose (logged in ops.report_resends)."""
    from chiso.reports.__main__ import main as reports_main

    use_warehouse()
    raise typer.Exit(reports_main(["resend", "--date", on.isoformat(), "--to", to, "--reason", reason,
                                   *(["--report", report] if report else []), *(["--smtp", smtp] if smtp else [])]))


@docs_app.command("build")
def docs_build() -> None:
    """dbt docs generate and the Data Docs, under $CHISO_HOME/docs_site."""
    from chiso.docs_site import site as docs_site

    use_warehouse()
    index = docs_site.build()
    print(f"documentation built: {index}  (serve it: {cli_path()} docs serve)")


@docs_app.command("serve")
def docs_serve(port: Annotated[int, typer.Option()] = 8081, host: Annotated[str, typer.Option()] = "127.0.0.1") -> None:
    """Serve the built documentation over HTTP until Ctrl-C."""
    from chiso.docs_site import site as docs_site

    if not (docs_site.site_dir() / "index.html").exists():
        raise SettingError(f"Nothing is built under {docs_site.site_dir()} yet: run `{cli_path()} docs build` first.")
    docs_site.serve(host, port)


# ---------------------------------------------------------------- the entry point


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors become one sentence on stderr and exit code 2, never a traceback."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="chiso", standalone_mode=False)
    except NoArgsIsHelpError as exc:
        print(exc.ctx.get_help())
        return 0
    except UsageError as exc:
        hint = f" (see {exc.ctx.command_path} --help)" if getattr(exc, "ctx", None) else ""
        print(f"chiso: {exc.format_message()}{hint}", file=sys.stderr)
        return 2
    except SettingError as exc:
        print(f"chiso: {exc}", file=sys.stderr)
        return 2
    except (typer.Abort, KeyboardInterrupt):
        print("chiso: interrupted", file=sys.stderr)
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    return result if isinstance(result, int) else 0


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
