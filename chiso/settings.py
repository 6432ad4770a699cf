"""Every environment setting chiso reads, in one place.

The docker-compose test checks the stack's environment against ``SETTINGS``, so a name used
anywhere in the code must be declared here and read through ``get``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Setting:
    name: str
    help: str
    default: str | None = None


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        Setting(
            "CHISO_WAREHOUSE_URL",
            "Postgres URL of the warehouse (postgresql://user:pass@host:port/db). "
            "Unset for the demo: it starts a local Postgres under CHISO_HOME.",
        ),
        Setting("CHISO_HOME", "Working directory for landing files, Airflow home, local Postgres, mail.",
                str(REPO_ROOT / ".work")),
        Setting("CHISO_LANDING_DIR", "Immutable landing zone (defaults to $CHISO_HOME/landing)."),
        Setting("CHISO_RECIPIENTS_FILE", "YAML list of report recipients.",
                str(REPO_ROOT / "config" / "recipients.yml")),
        Setting("CHISO_DBT_PROJECT_DIR", "dbt project directory.", str(REPO_ROOT / "dbt_project")),
        Setting("CHISO_EXPECTATIONS_DIR", "Great Expectations suites.", str(REPO_ROOT / "expectations")),
        Setting("CHISO_PIPELINE_START", "First business date the daily DAG catches up from (YYYY-MM-DD).",
                "2026-11-01"),
        Setting("CHISO_PORTAL_CONN_ID", "Airflow connection of the portal (host, port, password = token).",
                "chiso_portal"),
        Setting("CHISO_SMTP_CONN_ID", "Airflow connection of the SMTP server for reports.", "chiso_smtp"),
        Setting("CHISO_PSEUDONYM_CONN_ID",
                "Airflow connection whose password is the HMAC key for applicants' personal data.",
                "chiso_pseudonym_key"),
        Setting("CHISO_DEMO_MODE",
                "true only for the demo and tests: accepts any non-empty pseudonymisation key. Otherwise a key that "
                "is known, says it is a demo or test key, or is shorter than 32 bytes stops the load.", "false"),
        Setting("CHISO_RETRY_DELAY_SECONDS", "First retry delay of the daily DAG's tasks (doubles each try).",
                "60"),
        Setting("CHISO_TASK_TIMEOUT_SECONDS",
                "Longest any task of chiso's DAGs may run (Airflow's execution_timeout) before it is stopped and "
                "retried; a fetch task gets CHISO_PORTAL_DAY_DEADLINE_SECONDS plus 10 minutes instead, so that "
                "the fetch's own deadline, with its clearer message, comes first.", "10800"),
        Setting("CHISO_ALLOW_NEW_COLUMNS",
                "true: columns the contract does not know are kept in the raw record (and logged) instead of "
                "stopping the load.", "false"),
        Setting("CHISO_LANDING_RETENTION_DAYS",
                "Landed extracts (they hold personal data) older than this many days are deleted by chiso_housekeeping.",
                "90"),
        Setting("CHISO_RAW_RETENTION_DAYS",
                "The raw layer's monthly partitions lying entirely before this many days ago are dropped by "
                "chiso_housekeeping (their loads marked purged in raw.load_ledger); 0 keeps the raw layer for ever.",
                "0"),
        Setting("CHISO_QUALITY_RETENTION_DAYS",
                "The quality gates' validation results, Data Docs pages and ops.validation_results rows of business "
                "dates older than this many days are deleted by chiso_housekeeping (ops.gate_runs is kept).", "90"),
        Setting("CHISO_PORTAL_PAGE_SIZE", "Rows per page requested from the portal.", "500"),
        Setting("CHISO_PORTAL_TRANSFER",
                "How a day's extract is downloaded: pages (the paged JSON API) or files (the whole-day "
                "NDJSON.gz file, streamed to disk and checked against its manifest).", "pages"),
        Setting("CHISO_PORTAL_READ_TIMEOUT_SECONDS",
                "Seconds the portal may stay silent on a request before it is abandoned and retried.", "60"),
        Setting("CHISO_PORTAL_MAX_PAGE_BYTES",
                "Largest page (or manifest) the portal may send, in bytes after any Content-Encoding; a larger one "
                "fails the fetch (a national page of 500 dossiers is about 0.7 MB).", str(4 << 20)),
        Setting("CHISO_PORTAL_MAX_FILE_BYTES",
                "Largest whole-day file the portal may declare in its manifest, in bytes; the download itself is "
                "held to the manifest's declared size.", str(2 << 30)),
        Setting("CHISO_PORTAL_REQUEST_DEADLINE_SECONDS",
                "Seconds one request to the portal may take in all, body included, however steadily it trickles.",
                "900"),
        Setting("CHISO_PORTAL_DAY_DEADLINE_SECONDS",
                "Seconds the fetch of one entity's day may take in all, every page or the whole file included.",
                "3600"),
        Setting("CHISO_MAX_LINE_BYTES",
                "Longest line of a whole-day file once decompressed, in bytes; a longer one is read on in chunks "
                "and quarantined by reference, unkept (a dossier's line is about 1.5 kB).", str(1 << 20)),
        Setting("CHISO_MAX_GZIP_RATIO",
                "Most a whole-day file may expand when decompressed, as a multiple of its size (beyond 64 MiB); "
                "more stops the day's load as a decompression bomb.", "200"),
        Setting("CHISO_DATA_DOCS_DIR",
                "Folder the Great Expectations Data Docs site is built into on every gate run "
                "(defaults to $CHISO_HOME/data_docs; the validation results it renders sit next to it)."),
        Setting("CHISO_DATA_DOCS_URL",
                "Base URL where the Data Docs folder is served (the compose stack: http://localhost:8081); "
                "alerts link to pages under it. Unset: alerts give the pages' paths in the folder."),
        Setting("CHISO_REPORT_BATCH_SIZE",
                "Recipients per mapped send_report task of the daily DAG: the night's e-mails are rendered and "
                "sent by batches of this many, which workers share (a national night: ~3,356 recipients).",
                "400"),
        Setting("CHISO_REPORT_HOLD_NOTICE",
                "What report recipients get when a day's gate or task fails: none (nothing) or notice (once a "
                "day, the short notice 'Số liệu hôm nay đang được kiểm tra').", "none"),
        # The simulator's own settings (it plays the portal, so it is configured apart).
        Setting("CHISO_SIMULATOR_TOKEN", "Token the portal simulator requires in X-Api-Token.",
                "demo-token"),
        Setting("CHISO_SIMULATOR_SEED", "Seed that makes the simulator deterministic.", "766"),
        Setting("CHISO_SIMULATOR_SCENARIO", "Built-in world the simulator serves (chiso/simulator/scenarios.py).",
                "cu_kuin_2024"),
        Setting("CHISO_SIMULATOR_VOLUME", "Multiplier of the simulator's daily dossier volumes.", "1.0"),
        Setting("CHISO_SIMULATOR_FAULTS", "Faults the simulator plays per day (docs/simulator-faults.md)."),
    ]
}


def get(name: str) -> str | None:
    """Value of a declared setting: the environment first, then its default."""
    setting = SETTINGS[name]
    value = os.environ.get(name)
    if value not in (None, ""):
        return value
    return setting.default


def require(name: str) -> str:
    value = get(name)
    if value is None:
        raise RuntimeError(f"Setting {name} is not set: {SETTINGS[name].help}")
    return value


def home() -> Path:
    return Path(require("CHISO_HOME"))


def landing_dir() -> Path:
    return Path(get("CHISO_LANDING_DIR") or home() / "landing")
