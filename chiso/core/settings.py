"""Every environment setting chiso reads, in one place, validated with pydantic-settings.

``ChisoSettings`` declares each CHISO_* variable with its type, default and help text (the Field's
description). ``validate()`` reads the whole environment at start (the ``chiso`` CLI and the demo
call it) and refuses a wrong value in one sentence naming the variable, the value given and what is
allowed. ``get``/``require`` read one setting as text, checked the same way, so DAG code and tests
that set variables on the fly see the environment as it is now.

The docker-compose test checks the stack's environment against ``SETTINGS``, so a name used
anywhere in the code must be declared here and read through ``get``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from urllib.parse import urlsplit, urlunsplit

import annotated_types
from pydantic import AfterValidator, BeforeValidator, Field, TypeAdapter, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_PREFIX = "CHISO_"
DATE_FORMATS_TEXT = "a date written YYYY-MM-DD or dd/mm/yyyy (e.g. 2024-11-15 or 15/11/2024)"


class SettingError(ValueError):
    """A setting or command-line value that cannot be used; its message is one sentence for the user."""


def parse_date(text: str | date) -> date:
    """A date written the ISO way (2024-11-15) or the Vietnamese way (15/11/2024)."""
    if isinstance(text, date):
        return text
    value = str(text).strip()
    for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(value, pattern).date()
        except ValueError:
            continue
    raise ValueError(f"{value!r} is not {DATE_FORMATS_TEXT}")


def mask_url(url: str | None) -> str:
    """The URL with its password replaced by ***, for messages and logs."""
    if not url:
        return str(url)
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)


Flag = Literal["true", "false"]
Day = Annotated[date, BeforeValidator(parse_date)]


def _check_sources(text: str) -> str:
    from chiso.core.portal_sources import check

    return check(text)


PortalSources = Annotated[str, AfterValidator(_check_sources)]


class ChisoSettings(BaseSettings):
    """The CHISO_* environment; each field is the variable CHISO_<FIELD NAME IN CAPITALS>."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, case_sensitive=False, extra="ignore",
                                      env_ignore_empty=True, validate_default=True)

    warehouse_url: str | None = Field(
        None, description="Postgres URL of the warehouse (postgresql://user:pass@host:port/db). "
        "Unset for the demo: it starts a local Postgres under CHISO_HOME.")
    home: Path = Field(REPO_ROOT / ".work",
                       description="Working directory for landing files, Airflow home, local Postgres, mail.")
    landing_dir: Path | None = Field(None, description="Immutable landing zone (defaults to $CHISO_HOME/landing).")
    recipients_file: Path = Field(REPO_ROOT / "config" / "recipients.yml",
                                  description="YAML list of report recipients.")
    dbt_project_dir: Path = Field(REPO_ROOT / "dbt_project", description="dbt project directory.")
    expectations_dir: Path = Field(REPO_ROOT / "expectations", description="Great Expectations suites.")
    pipeline_start: Day = Field(date(2026, 11, 1), description=(
        "First business date the daily DAG catches up from (YYYY-MM-DD or dd/mm/yyyy)."))
    portal_conn_id: str = Field("chiso_portal",
                                description="Airflow connection of the portal (host, port, password = token).")
    smtp_conn_id: str = Field("chiso_smtp", description="Airflow connection of the SMTP server for reports.")
    pseudonym_conn_id: str = Field(
        "chiso_pseudonym_key",
        description="Airflow connection whose password is the HMAC key for applicants' personal data.")
    demo_mode: Flag = Field("false", description=(
        "true only for the demo and tests: accepts any non-empty pseudonymisation key. Otherwise a key that "
        "is known, says it is a demo or test key, or is shorter than 32 bytes stops the load."))
    retry_delay_seconds: Annotated[int, Field(ge=0)] = Field(
        60, description="First retry delay of the daily DAG's tasks (doubles each try).")
    task_timeout_seconds: Annotated[int, Field(gt=0)] = Field(10800, description=(
        "Longest any task of chiso's DAGs may run (Airflow's execution_timeout) before it is stopped and "
        "retried; a fetch task gets CHISO_PORTAL_DAY_DEADLINE_SECONDS plus 10 minutes instead, so that "
        "the fetch's own deadline, with its clearer message, comes first."))
    allow_new_columns: Flag = Field("false", description=(
        "true: columns the contract does not know are kept in the raw record (and logged) instead of "
        "stopping the load."))
    landing_retention_days: Annotated[int, Field(ge=0)] = Field(90, description=(
        "Landed extracts (they hold personal data) older than this many days are deleted by chiso_housekeeping."))
    raw_retention_days: Annotated[int, Field(ge=0)] = Field(0, description=(
        "The raw layer's monthly partitions lying entirely before this many days ago are dropped by "
        "chiso_housekeeping (their loads marked purged in raw.load_ledger); 0 keeps the raw layer for ever."))
    quality_retention_days: Annotated[int, Field(ge=0)] = Field(90, description=(
        "The quality gates' validation results, Data Docs pages and ops.validation_results rows of business "
        "dates older than this many days are deleted by chiso_housekeeping (ops.gate_runs is kept)."))
    portal_page_size: Annotated[int, Field(gt=0)] = Field(500, description="Rows per page requested from the portal.")
    portal_transfer: Literal["pages", "files"] = Field("pages", description=(
        "How a day's extract is downloaded: pages (the paged JSON API) or files (the whole-day "
        "NDJSON.gz file, streamed to disk and checked against its manifest)."))
    portal_sources: PortalSources | None = Field(None, description=(
        "The province slices the sliced entities (dossiers, process steps, feedback, ratings) are fetched in, "
        "as CODE=URL pairs separated by commas (H15=/tinh/H15,H39=/tinh/H39): a path is on the portal's host "
        "and uses its token, an http(s):// URL uses the token of the Airflow connection chiso_portal_<code>. "
        "Unset: one national extract per entity (docs/ingest.md, Sources)."))
    portal_read_timeout_seconds: Annotated[float, Field(gt=0)] = Field(60, description=(
        "Seconds the portal may stay silent on a request before it is abandoned and retried."))
    portal_max_page_bytes: Annotated[int, Field(gt=0)] = Field(4 << 20, description=(
        "Largest page (or manifest) the portal may send, in bytes after any Content-Encoding; a larger one "
        "fails the fetch (a national page of 500 dossiers is about 0.7 MB)."))
    portal_max_file_bytes: Annotated[int, Field(gt=0)] = Field(2 << 30, description=(
        "Largest whole-day file the portal may declare in its manifest, in bytes; the download itself is "
        "held to the manifest's declared size."))
    portal_request_deadline_seconds: Annotated[float, Field(gt=0)] = Field(900, description=(
        "Seconds one request to the portal may take in all, body included, however steadily it trickles."))
    portal_day_deadline_seconds: Annotated[int, Field(gt=0)] = Field(3600, description=(
        "Seconds the fetch of one entity's day may take in all, every page or the whole file included."))
    max_line_bytes: Annotated[int, Field(gt=0)] = Field(1 << 20, description=(
        "Longest line of a whole-day file once decompressed, in bytes; a longer one is read on in chunks "
        "and quarantined by reference, unkept (a dossier's line is about 1.5 kB)."))
    max_gzip_ratio: Annotated[int, Field(gt=0)] = Field(200, description=(
        "Most a whole-day file may expand when decompressed, as a multiple of its size (beyond 64 MiB); "
        "more stops the day's load as a decompression bomb."))
    data_docs_dir: Path | None = Field(None, description=(
        "Folder the Great Expectations Data Docs site is built into on every gate run "
        "(defaults to $CHISO_HOME/data_docs; the validation results it renders sit next to it)."))
    data_docs_url: str | None = Field(None, description=(
        "Base URL where the Data Docs folder is served (the compose stack: http://localhost:8081); "
        "alerts link to pages under it. Unset: alerts give the pages' paths in the folder."))
    report_hold_notice: Literal["none", "notice"] = Field("none", description=(
        "What report recipients get when a day's gate or task fails: none (nothing) or notice (once a "
        "day, the short notice 'Số liệu hôm nay đang được kiểm tra')."))
    docs_assets_dir: str | None = Field(None, description=(
        "node_modules folder holding the npm packages of docs_assets/package.json (bootstrap, jQuery, Font "
        "Awesome, vega…), copied into the Data Docs so they render offline. Unset: docs_assets/node_modules "
        "(make docs-assets)."))
    dbt_docs_dir: str | None = Field(None, description="Where the dbt docs are built (unset: $CHISO_HOME/dbt_docs).")
    report_batch_size: Annotated[int, Field(gt=0)] = Field(400, description=(
        "Recipients per mapped send_report task of the daily DAG: the night's e-mails are rendered and "
        "sent by batches of this many, which workers share (a national night: ~3,356 recipients)."))
    metabase_url: str | None = Field(None, description=(
        "Metabase's base URL (compose: http://metabase:3000). Unset: no Metabase is provisioned or notified."))
    metabase_api_key: str | None = Field(None, description=(
        "Metabase's MB_API_KEY: the publication asks Metabase to re-sync through /api/notify/db/:id with it."))
    metabase_database_id: str | None = Field(None, description=(
        "Id of the warehouse in Metabase (python -m chiso.bi.metabase prints it) for the re-sync notice."))
    metabase_admin_email: str | None = Field(None, description=(
        "E-mail of the Metabase admin that metabase-setup creates or logs in as."))
    metabase_admin_password: str | None = Field(None, description=(
        "Password of that admin (a secret; never in the repository)."))
    metabase_warehouse_url: str | None = Field(None, description=(
        "postgresql://LOGIN@HOST:PORT/DB of the read-only BI login Metabase connects as (no password)."))
    metabase_warehouse_password: str | None = Field(None, description="Password of that BI login (a secret).")
    bi_secrets_dir: str | None = Field(None, description=(
        "Folder of the BI logins' passwords, one file per login named after the role (chiso_bi_national, "
        "chiso_bi_ph15, ...), as Docker or Kubernetes secrets mount them; read by python -m chiso.bi.access "
        "setup and by publication (which sets the password of a login it creates). No file: no password."))
    bi_national_password: str | None = Field(None, description=(
        "Password of the national BI login when CHISO_BI_SECRETS_DIR has no file for it."))
    bi_role_prefix: str = Field("chiso_bi_", description=(
        "Prefix of the BI logins' role names: <prefix>national and <prefix>p<province portal code>."))
    cli: str | None = Field(None, description=(
        "Path of the chiso command where the DAGs run without a scheduler (the demo and `chiso run` set it): "
        "alerts then say to re-run a day with `chiso run` and give the run's log file; unset, they give the "
        "`airflow dags trigger` command and the task's log page."))
    # The simulator's own settings (it plays the portal, so it is configured apart).
    simulator_token: str = Field("demo-token", description="Token the portal simulator requires in X-Api-Token.")
    simulator_seed: int = Field(766, description="Seed that makes the simulator deterministic.")
    simulator_scenario: str = Field("cu_kuin_2024", description=(
        "Built-in world the simulator serves (chiso/simulator/scenarios.py)."))
    simulator_volume: Annotated[float, Field(gt=0)] = Field(1.0, description=(
        "Multiplier of the simulator's daily dossier volumes."))
    simulator_faults: str | None = Field(None, description=(
        "Faults the simulator plays per day (docs/simulator-faults.md)."))

    @field_validator("warehouse_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("postgresql", "postgres"):
            raise ValueError("not a postgresql:// URL")
        return value


def _variable(field_name: str) -> str:
    return f"{ENV_PREFIX}{field_name.upper()}"


def _default_text(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, date) else str(value)


@dataclass(frozen=True)
class Setting:
    name: str
    help: str
    default: str | None = None


SETTINGS: dict[str, Setting] = {
    _variable(name): Setting(_variable(name), field.description or "", _default_text(field.default))
    for name, field in ChisoSettings.model_fields.items()
}


def allowed(field_name: str) -> str:
    """What a setting accepts, in words, from its declared type."""
    field = ChisoSettings.model_fields[field_name]
    if field_name == "warehouse_url":
        return "a postgresql://user:password@host:port/database URL"
    if field_name == "portal_sources":
        from chiso.core.portal_sources import ALLOWED

        return ALLOWED
    annotation = field.annotation
    if get_origin(annotation) is type(None) or annotation is None:
        return "any text"
    args = [a for a in get_args(annotation) if a is not type(None)] if get_origin(annotation) else []
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(annotation))
    base = args[0] if len(args) == 1 else annotation
    bounds = ""
    for constraint in field.metadata:
        if isinstance(constraint, annotated_types.Gt):
            bounds = f" greater than {constraint.gt}"
        elif isinstance(constraint, annotated_types.Ge):
            bounds = f" of at least {constraint.ge}"
    if base is int:
        return f"a whole number{bounds}"
    if base is float:
        return f"a number{bounds} (decimal point, e.g. 1.5)"
    if base is date:
        return DATE_FORMATS_TEXT
    if base is Path:
        return "a file or folder path"
    return "text"


def _error_sentence(error: dict, env: dict[str, str]) -> str:
    field_name = str(error["loc"][0])
    variable = _variable(field_name)
    given = env.get(variable, error.get("input"))
    shown = mask_url(str(given)) if field_name.endswith("url") else str(given)
    return f"{variable}={shown!r} is not allowed{_why(field_name, given)}: it must be {allowed(field_name)}."


def _why(field_name: str, given) -> str:
    """What exactly is wrong with a value, for the settings whose syntax is more than a type."""
    if field_name != "portal_sources":
        return ""
    from chiso.core.portal_sources import parse_sources

    try:
        parse_sources(str(given))
    except ValueError as problem:
        return f" ({problem})"
    return ""


def validate(environ: dict[str, str] | None = None) -> ChisoSettings:
    """Every setting of the environment, typed; the first wrong one raises SettingError in one sentence."""
    env = dict(os.environ if environ is None else environ)
    values = {field: env[_variable(field)] for field in ChisoSettings.model_fields
              if env.get(_variable(field), "") != ""}
    try:
        return ChisoSettings(_env_file=None, **values) if environ is not None else ChisoSettings()
    except ValidationError as exc:
        raise SettingError(_error_sentence(exc.errors()[0], env)) from None


@cache
def _adapter(field_name: str) -> TypeAdapter:
    field = ChisoSettings.model_fields[field_name]
    return TypeAdapter(Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation)


def get(name: str) -> str | None:
    """Value of a declared setting as text: the environment first, then its default; a wrong value raises
    SettingError. Dates come back as YYYY-MM-DD whichever way they were written."""
    setting = SETTINGS[name]
    value = os.environ.get(name)
    if value in (None, ""):
        return setting.default
    field_name = name[len(ENV_PREFIX):].lower()
    try:
        typed = _adapter(field_name).validate_python(value)
        if field_name == "warehouse_url":
            ChisoSettings._postgres_url(typed)
    except (ValidationError, ValueError):
        raise SettingError(_error_sentence({"loc": (field_name,), "input": value}, {name: value})) from None
    return typed.isoformat() if isinstance(typed, date) else value


def require(name: str) -> str:
    value = get(name)
    if value is None:
        raise SettingError(f"Setting {name} is not set: {SETTINGS[name].help}")
    return value


def home() -> Path:
    return Path(require("CHISO_HOME"))


def landing_dir() -> Path:
    return Path(get("CHISO_LANDING_DIR") or home() / "landing")


def data_docs_dir() -> Path:
    """Where the gates write Data Docs (CHISO_DATA_DOCS_DIR, else under CHISO_HOME): read by the gates and
    by the docs site that serves them, so it is a setting, not either's."""
    return Path(get("CHISO_DATA_DOCS_DIR") or home() / "data_docs")


def cli_path() -> str:
    """How to call the chiso command from the repository without activating anything (printed by the
    demo and the alerts on this machine's stack)."""
    import sys

    return str(Path(sys.executable).with_name("chiso"))

