"""What each task of the daily DAG does. The DAG file only wires these together.

Functions here take plain values; the few that need Airflow (connections, the run's context) import
``airflow.sdk`` lazily so that the rest of chiso works without an Airflow runtime.
"""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

from chiso.core import settings
# (the business date of a run has its own module: the alerts, which this one imports, need it too)
from chiso.orchestration.business_date import business_date_of_run, resolve_business_date  # noqa: F401

log = logging.getLogger(__name__)


def portal_from_connection(conn_id: str, source: str = "national"):
    """The portal of the Airflow connection, or of one of its province slices (``source``, a code of
    CHISO_PORTAL_SOURCES: a path on the portal's host with its token, or an absolute URL with the token
    of the connection chiso_portal_<code>)."""
    from airflow.sdk import Connection

    from chiso.ingest.fetch import Portal
    from chiso.ingest.sources import source_named

    where = source_named(source)
    if where.is_absolute:
        conn_id = where.conn_id
        token = Connection.get(conn_id).password
        if not token:
            raise ValueError(f"Airflow connection {conn_id} has no password: it must hold the token of {where.url}")
        return Portal(base_url=where.url.rstrip("/"), token=token,
                      page_size=int(settings.require("CHISO_PORTAL_PAGE_SIZE")),
                      transfer=settings.require("CHISO_PORTAL_TRANSFER"),
                      read_timeout=float(settings.require("CHISO_PORTAL_READ_TIMEOUT_SECONDS")))
    conn = Connection.get(conn_id)
    host = conn.host or "127.0.0.1"
    if "://" in host:
        base_url = host
    else:
        base_url = f"{conn.schema or 'http'}://{host}"
        if conn.port:
            base_url += f":{conn.port}"
    if not conn.password:
        raise ValueError(f"Airflow connection {conn_id} has no password: it must hold the portal token")
    return Portal(base_url=where.base_url(base_url), token=conn.password,
                  page_size=int(settings.require("CHISO_PORTAL_PAGE_SIZE")),
                  transfer=settings.require("CHISO_PORTAL_TRANSFER"),
                  read_timeout=float(settings.require("CHISO_PORTAL_READ_TIMEOUT_SECONDS")))


def pseudonymiser_from_connection(conn_id: str):
    from airflow.sdk import Connection

    from chiso.ingest.pseudonymise import Pseudonymiser, check_key

    key = Connection.get(conn_id).password or ""
    check_key(key, demo=settings.get("CHISO_DEMO_MODE") == "true")
    return Pseudonymiser(key)


def sources_of(entity: str) -> list[str]:
    """The codes of the slices ``entity``'s day is fetched in: the provinces of CHISO_PORTAL_SOURCES for
    an entity the contract slices, else ``national`` (docs/ingest.md, "Sources")."""
    from chiso.ingest.sources import sources_for

    return [source.code for source in sources_for(entity)]


def fetch(entity: str, business_date: date, source: str = "national") -> str:
    """Download the day's extract of ``entity`` (pages or the whole-day file: CHISO_PORTAL_TRANSFER),
    or of its ``source`` slice."""
    from chiso.ingest.fetch import fetch_day

    portal = portal_from_connection(settings.require("CHISO_PORTAL_CONN_ID"), source)
    return str(fetch_day(portal, entity, business_date, settings.landing_dir(), source))


def land(entity: str, business_date: date, fetched: str, source: str = "national") -> str:
    """Verify and land the fetched extract; on a checksum mismatch fetch it once more, then fail loudly."""
    import shutil

    from chiso.ingest.landing import LandingError
    from chiso.ingest.landing import land as land_extract

    try:
        return str(land_extract(Path(fetched), settings.landing_dir(), entity, business_date, source))
    except LandingError as first:
        log.warning("%s; fetching %s %s again", first, entity, business_date)
        shutil.rmtree(fetched, ignore_errors=True)
        refetched = fetch(entity, business_date, source)
        try:
            return str(land_extract(Path(refetched), settings.landing_dir(), entity, business_date, source))
        except LandingError as second:
            raise LandingError(f"{entity} {business_date} disagrees with its manifest even after a re-fetch: "
                               f"{second}") from second


def load(entity: str, business_date: date, landed: str, source: str = "national") -> dict:
    """Load the landed extract (of the ``source`` slice) once; loads of other slices stay as they are."""
    from chiso.ingest.load import load_extract
    from chiso.core.warehouse import analyze_loaded_day, connect, ensure_schema

    ensure_schema()
    pseudonymiser = pseudonymiser_from_connection(settings.require("CHISO_PSEUDONYM_CONN_ID"))
    with connect() as conn:
        result = load_extract(conn, entity, business_date, Path(landed), pseudonymiser, source=source,
                              sources=tuple(sources_of(entity)))
        if not result.skipped:
            analyze_loaded_day(conn, entity, business_date)
        return result.as_dict()


# dbt tests over a change feed's whole history (staging views of dossiers, ratings, PAKN).
HISTORY_SCAN_TESTS = "tag:history_scan"


def transform(business_date: date | None = None) -> None:
    from chiso.transform.runner import run_dbt

    # Seeds are small reference data: recreate them every time, so that a seed whose columns changed
    # between releases never fails the build; then build and test everything else.
    run_dbt(["build", "--select", "resource_type:seed", "--full-refresh", "--indirect-selection", "cautious"])
    # Stale raw sources (freshness errors in _portal__sources.yml) stop the build like a failed dbt test.
    # Freshness speaks of the newest day only: re-running or backfilling an older day after a pause must
    # not be refused because nothing new arrived meanwhile (that day's own extracts are checked by the
    # raw gate).
    if business_date is None or _is_latest_business_date(business_date):
        run_dbt(["source", "freshness"])
    else:
        log.info("%s is not the latest loaded business date: source freshness is not checked", business_date)
    # The marts are built incrementally (docs/engine-incremental.md). A day whose last gate failed is
    # rebuilt completely: whatever made the gate fail may sit in the incremental state, and re-running
    # the day after a fix must not carry it over.
    rebuild = business_date is not None and _last_gate_failed(business_date)
    if rebuild:
        log.warning("The last gate of %s failed: rebuilding the marts completely", business_date)
    # Tests that scan the history of a change feed's staging view (tag history_scan) are not run here:
    # they grow with every day loaded, and the night's rows are checked by the staging gate and by the
    # incremental marts' tests (which test what this build wrote). chiso_housekeeping runs them.
    run_dbt(["build", "--exclude", "resource_type:seed", HISTORY_SCAN_TESTS,
             *(["--full-refresh"] if rebuild else [])])


def check_history() -> None:
    """The dbt tests over whole change-feed histories (tag history_scan), off the nightly path."""
    from chiso.transform.runner import run_dbt

    run_dbt(["test", "--select", HISTORY_SCAN_TESTS])


def _is_latest_business_date(business_date: date) -> bool:
    from chiso.core.warehouse import RAW_SCHEMA, connect

    with connect() as conn:
        (latest,) = conn.execute(f"select max(business_date) from {RAW_SCHEMA}.load_ledger "
                                 "where entity = 'dossiers' and status = 'loaded'").fetchone()
    return latest is None or business_date >= latest


def _last_gate_failed(business_date: date) -> bool:
    from chiso.core.warehouse import OPS_SCHEMA, connect, ensure_schema

    ensure_schema()
    with connect() as conn:
        # The latest run of each layer's gate (raw runs before the build, staging and marts after it).
        row = conn.execute(f"select bool_or(not success) from (select distinct on (suite) success "
                           f"from {OPS_SCHEMA}.gate_runs where business_date = %s "
                           "order by suite, gate_run_id desc) as latest", (business_date,)).fetchone()
    return bool(row and row[0])


# An empty extract of these is never a quiet day: the catalogues are whole snapshots, and a day without
# a single dossier is far likelier a portal that failed to export than a province that did no work.
MUST_HAVE_ROWS = ("units", "procedures", "dossiers")
WAIVABLE_WHEN_EMPTY = ("dossiers",)  # a person may confirm that a day really had no dossiers


class EmptyExtract(RuntimeError):
    """The day's extract of an entity that is never empty has no rows: nothing is published."""


def check_extracts_have_rows(business_date: date, accept_empty_day: bool = False) -> dict[str, int]:
    """Rows loaded per entity for the day; raises EmptyExtract if one of MUST_HAVE_ROWS has none
    (an empty extract, or one whose every row was quarantined).

    Without this check an empty dossiers extract would publish a report of zero dossiers that looks
    like any other day's. ``accept_empty_day`` (the run's conf) lets a person who checked with the
    portal publish such a day anyway; an empty catalogue is never accepted.
    """
    from chiso.core.warehouse import RAW_SCHEMA, connect

    with connect() as conn:
        # A sliced entity's slices summed (chiso.ingest.sources).
        ledger = {entity: (in_manifest, loaded) for entity, in_manifest, loaded in conn.execute(
            f"select entity, sum(rows_in_manifest)::int, sum(rows_loaded)::int from {RAW_SCHEMA}.load_ledger "
            f"where business_date = %s and status = 'loaded' group by entity", (business_date,)).fetchall()}
    empty = [entity for entity in MUST_HAVE_ROWS if not ledger.get(entity, (0, 0))[1]]
    if accept_empty_day and empty:
        waived = [entity for entity in empty if entity in WAIVABLE_WHEN_EMPTY]
        log.warning("%s: the run's conf accepts an empty day; publishing without rows of %s", business_date,
                    ", ".join(waived) or "nothing")
        empty = [entity for entity in empty if entity not in WAIVABLE_WHEN_EMPTY]
    if empty:
        counts = ", ".join(f"{e}: {ledger.get(e, (0, 0))[0]} in the manifest, {ledger.get(e, (0, 0))[1]} loaded"
                           for e in empty)
        hint = ""
        if set(empty) <= set(WAIVABLE_WHEN_EMPTY):
            hint = (f" If the portal confirms that the day really had none, run the day again with conf "
                    f'{{"business_date": "{business_date}", "accept_empty_day": true}}.')
        raise EmptyExtract(f"The extract of {business_date} has no rows of {', '.join(empty)} ({counts}): "
                           f"nothing is published rather than a report of zeros.{hint}")
    return {entity: loaded for entity, (_, loaded) in ledger.items()}


class MissingSlice(RuntimeError):
    """A configured slice of a sliced entity's day (CHISO_PORTAL_SOURCES) is not loaded: nothing is published."""


def check_every_slice_loaded(business_date: date) -> None:
    """Every entity of the day is loaded in every slice it comes in (chiso.ingest.sources): a day that
    lacks one province's dossiers would publish that province's figures as zeros and the nation's short."""
    from chiso.contract import ENTITIES
    from chiso.core.warehouse import RAW_SCHEMA, connect

    with connect() as conn:
        loaded = set(conn.execute(f"select entity, source from {RAW_SCHEMA}.load_ledger "
                                  f"where business_date = %s and status = 'loaded'", (business_date,)).fetchall())
    missing = [(entity, code) for entity in ENTITIES for code in sources_of(entity)
               if code != "national" and (entity, code) not in loaded]
    if missing:
        slices = ", ".join(f"{entity} of {code}" for entity, code in missing)
        raise MissingSlice(f"The extract of {business_date} lacks slices that CHISO_PORTAL_SOURCES names ({slices}): "
                           f"nothing is published until every province's slice is loaded.")


def raw_gate(business_date: date, accept_empty_day: bool = False) -> str:
    """Before the build: every configured slice is loaded, every extract that must have rows has some,
    then the raw layer's GX suite."""
    from chiso.quality.gates import gate_raw

    check_every_slice_loaded(business_date)
    check_extracts_have_rows(business_date, accept_empty_day)
    return "\n".join(result.message() for result in gate_raw(business_date))


def gate(business_date: date) -> str:
    """After the build, before publication: the staging/intermediate and marts suites (docs/quality.md)."""
    from chiso.quality.gates import gate_built

    return "\n".join(result.message() for result in gate_built(business_date))


def publish_reporting(business_date: date) -> dict:
    """Expose the audited marts to the reporting schema and the BI role (write-audit-publish); a day
    that passed with warn-level failures is published with them noted, and the engineers are told."""
    from chiso.orchestration.alerts import warning_notice
    from chiso.quality.gates import warnings_of
    from chiso.publish.publication import publish as publish_marts

    warnings = warnings_of(business_date)
    publication = publish_marts(business_date, warnings)
    warning_notice(business_date, warnings)
    # BI tools see the new day at once (a no-op unless Metabase is configured).
    from chiso.bi.metabase import notify_sync

    return {"relations": len(publication.relations), "warnings": len(warnings),
            "rows_written": sum(publication.rows_written.values()), "metabase_notified": notify_sync()}


def send_daily_report(business_date: date) -> dict:
    """The nightly e-mail (chiso.reports), once per recipient through the Airflow SMTP connection.

    Raises (so the task retries, then fails) when a recipient could not be served; those served are
    in ops.report_deliveries and are not sent again by the retry."""
    from chiso.reports.send import send_daily

    return send_daily(business_date)


def recipient_batches() -> list[dict]:
    """The nightly e-mail's recipients cut into batches of CHISO_REPORT_BATCH_SIZE, in the recipients
    file's order: one mapped send task each, which Celery workers share (docs/performance.md).

    A batch is named by its number and the number of batches, never by its members: the tasks read
    the file themselves (a mapped task's arguments are stored in Airflow's database, and addresses
    have no business there). At least one batch, so that a night without recipients still records
    its publication."""
    from chiso.reports.recipients import load_recipients

    size = int(settings.require("CHISO_REPORT_BATCH_SIZE"))
    if size < 1:
        raise ValueError(f"CHISO_REPORT_BATCH_SIZE must be at least 1, got {size}")
    count = sum(1 for recipient in load_recipients() if recipient.wants("daily"))
    batches = max(1, -(-count // size))
    return [{"batch": number, "batches": batches} for number in range(1, batches + 1)]


def send_daily_report_batch(business_date: date, batch: int, batches: int) -> dict:
    """One batch of the nightly e-mail (:func:`recipient_batches`): the ``batch``-th of ``batches``
    equal slices of the recipients who want it, sent exactly once per recipient like the whole night."""
    from chiso.reports.recipients import load_recipients
    from chiso.reports.send import send_daily

    everyone = [recipient for recipient in load_recipients() if recipient.wants("daily")]
    if not 1 <= batch <= batches:
        raise ValueError(f"Batch {batch} of {batches} does not exist")
    size = -(-len(everyone) // batches)
    return send_daily(business_date, recipients=everyone[(batch - 1) * size:batch * size],
                      batch=f"{batch}/{batches}")


def publish(business_date: date, delivery: dict | list[dict]) -> bool:
    """Record the nightly report of the day as published (ops.publications), once; ``delivery`` is
    what the send returned, or the list of what each batch's send returned."""
    from chiso.reports.daily import REPORT_CODE
    from chiso.reports.delivery import record_publication

    deliveries = [delivery] if isinstance(delivery, dict) else list(delivery)
    recipients = sum(len(each["sent"]) + len(each["already_sent"]) for each in deliveries)
    first = record_publication(REPORT_CODE, business_date, recipients)
    log.info("%s %s %s", REPORT_CODE, business_date, "published" if first else "was already published")
    return first


def daily_report_published(business_date: date) -> bool:
    """The nightly report of the day is in ops.publications (the periodic reports wait for it)."""
    from chiso.reports.daily import REPORT_CODE
    from chiso.core.warehouse import OPS_SCHEMA, connect, ensure_schema

    ensure_schema()
    with connect() as conn:
        return conn.execute(f"select 1 from {OPS_SCHEMA}.publications where report_code = %s and business_date = %s",
                            (REPORT_CODE, business_date)).fetchone() is not None


def campaign_reports_due(business_date: date) -> list[str]:
    """The campaign reports whose period closes on the day (report codes; chiso.reports.campaign)."""
    from chiso.reports.campaign import due_reports

    return [due.report_code for due in due_reports(business_date)]


def send_campaign_reports(business_date: date) -> dict:
    """Every campaign report due on the day, with its Excel annex, once per recipient; each fully
    delivered report is recorded in ops.publications."""
    from chiso.reports.send import send_campaign_reports as send

    return send(business_date)
