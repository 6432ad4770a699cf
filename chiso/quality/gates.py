"""Great Expectations gates: nothing is published unless the day's data passes them.

One suite per layer in ``expectations/`` (``raw.json``, ``staging.json``, ``marts.json``; docs/quality.md).
A layer's file lists *batches*: a SQL query over the warehouse for the business date and the
expectations on it. The query runs once per gate run, into a table of ``gate_batches`` that the GX
asset points at (MaterialisedBatches), so every expectation is evaluated by Postgres on the small
materialised batch, never by pulling rows into Python nor by re-running the query. Each expectation carries ``meta.severity``: ``block`` failures stop publication,
``warn`` failures are reported and the day is published with a notice.

Every run of a layer is recorded in ``ops.gate_runs`` (one row) and ``ops.validation_results`` (one row
per expectation: suite, layer, severity, success, observed value, sample of failing rows), and renders
GX Data Docs into ``CHISO_DATA_DOCS_DIR`` (the validation results accumulate in a file store next to
it, so the site's index lists every run).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from chiso.core import settings
from chiso.core.settings import data_docs_dir
from chiso.core.warehouse import OPS_SCHEMA, connect, sqlalchemy_url, warehouse_url

log = logging.getLogger(__name__)

LAYERS = ("raw", "staging", "marts")
SEVERITIES = ("block", "warn")
SAMPLE_ROWS = 5
DATA_DOCS_SITE = "chiso"


@dataclass
class GateFailure:
    suite: str  # layer.batch
    expectation: str  # GX expectation type
    name: str | None  # meta.name: what the expectation checks, in words
    column: str | None
    severity: str
    observed: str  # the observed value and sample failing values, as text
    why: str | None = None
    sample: list | None = None

    def line(self) -> str:
        where = f" on column {self.column}" if self.column else ""
        named = f" {self.name}:" if self.name else ""
        return f"  [{self.severity}] {self.suite}:{named} {self.expectation}{where}: {self.observed}"


@dataclass
class GateResult:
    suite: str  # the layer
    business_date: date
    evaluated: int = 0
    failures: list[GateFailure] = field(default_factory=list)
    data_docs: list[str] = field(default_factory=list)  # the validation pages of this run
    gate_run_id: int | None = None

    @property
    def blocking(self) -> list[GateFailure]:
        return [f for f in self.failures if f.severity == "block"]

    @property
    def warnings(self) -> list[GateFailure]:
        return [f for f in self.failures if f.severity == "warn"]

    @property
    def passed(self) -> bool:
        return not self.blocking

    def message(self) -> str:
        if not self.failures:
            return f"Gate {self.suite} for {self.business_date}: all {self.evaluated} expectations passed."
        lines = [f"Gate {self.suite} for {self.business_date}: {len(self.blocking)} blocking and "
                 f"{len(self.warnings)} warning failure(s) of {self.evaluated}:"]
        lines += [failure.line() for failure in self.blocking + self.warnings]
        if self.data_docs:
            lines.append("  Data Docs: " + " ".join(self.data_docs))
        return "\n".join(lines)


class GateFailed(RuntimeError):
    def __init__(self, result: GateResult | list[GateResult]):
        results = result if isinstance(result, list) else [result]
        super().__init__("\n".join(r.message() for r in results))
        self.results = results
        self.result = next(r for r in results if not r.passed)

    def __reduce__(self):
        # Rebuilt from its results, not from its message: a gate run in a worker process (a benchmark's
        # stage, an executor's pool) must reach the parent as this error, not as a pickling failure.
        return (GateFailed, (self.results,))


# ------------------------------------------------------------------------- suites as code


def suite_path(layer: str) -> Path:
    return Path(settings.require("CHISO_EXPECTATIONS_DIR")) / f"{layer}.json"


def load_suite_definition(layer: str) -> dict:
    """The layer's suite file, checked: every batch has a query, every expectation a severity."""
    path = suite_path(layer)
    definition = json.loads(path.read_text(encoding="utf-8"))
    if not definition.get("batches"):
        raise ValueError(f"{path}: no batches")
    for batch in definition["batches"]:
        if not batch.get("name") or not batch.get("query") or not batch.get("expectations"):
            raise ValueError(f"{path}: every batch needs a name, a query and expectations")
        for expectation in batch["expectations"]:
            severity = expectation.get("meta", {}).get("severity")
            if severity not in SEVERITIES:
                raise ValueError(f"{path}: {batch['name']}: {expectation['type']} needs meta.severity "
                                 f"block or warn, got {severity!r}")
    return definition


_PLACEHOLDER = re.compile(r"(?<!:):(business_date|contract_fields_([a-z_]+))\b")


def render_sql(text: str, business_date: date) -> str:
    """Substitute the suites' placeholders: ``:business_date`` and ``:contract_fields_<entity>``."""
    from chiso.contract import ENTITIES

    def replace(match: re.Match) -> str:
        if match.group(1) == "business_date":
            return f"date '{business_date.isoformat()}'"
        entity = ENTITIES[match.group(2)]
        return "array[" + ", ".join("'" + name.replace("'", "''") + "'" for name in entity.fields) + "]::text[]"

    return _PLACEHOLDER.sub(replace, text)


def _render_kwargs(value, business_date: date):
    if isinstance(value, str):
        return render_sql(value, business_date)
    if isinstance(value, dict):
        return {key: _render_kwargs(item, business_date) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_kwargs(item, business_date) for item in value]
    return value


# ------------------------------------------------------------------------- running a layer




def validation_store_dir() -> Path:
    # Outside the served site: GX's raw validation results (the site renders them).
    return data_docs_dir().parent / "gx_validation_results"


def _context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults())
    config.stores["validation_results_store"] = {
        "class_name": "ValidationResultsStore",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                          "base_directory": str(validation_store_dir())},
    }
    config.data_docs_sites = {DATA_DOCS_SITE: {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(data_docs_dir())},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }}
    config.progress_bars = ProgressBarsConfig(globally=False)  # keep task logs readable
    return gx.get_context(mode="ephemeral", project_config=config)


SEVERITY_MEANS = {"block": "a failure stops publication", "warn": "a failure is published with a notice"}


def _notes(meta: dict) -> list[str] | None:
    """What Data Docs show under an expectation's note icon (Markdown): why it exists, what its failure does."""
    if not meta.get("why"):
        return None
    return [f"**{meta.get('name', '')}** ({meta['severity']}: {SEVERITY_MEANS[meta['severity']]}): {meta['why']}"]


def _description(expectation_type: str, meta: dict) -> str | None:
    """Data Docs show a custom SQL expectation by its description, instead of its query: the reason, in
    words. (GX renders it as a template: a literal $ is written $$.)"""
    if expectation_type != "unexpected_rows_expectation" or not meta.get("why"):
        return None
    why = meta["why"][0].upper() + meta["why"][1:]
    return (f"{why} (rule {meta.get('name', '')}, {meta['severity']}: {SEVERITY_MEANS[meta['severity']]})"
            .replace("$", "$$"))


def _columns(kwargs: dict) -> str | None:
    if "column_A" in kwargs:
        return f"{kwargs['column_A']}, {kwargs['column_B']}"
    if "column_list" in kwargs:
        return ", ".join(kwargs["column_list"])
    return kwargs.get("column")


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _observed(result) -> tuple[str, object, list | None]:
    """(text for people, observed value, sample of failing values) of a failed expectation."""
    details = result.result or {}
    observed = details.get("observed_value")
    if observed is None and "unexpected_count" in details:
        observed = {"unexpected_count": details.get("unexpected_count"),
                    "unexpected_percent": details.get("unexpected_percent")}
    sample = details.get("partial_unexpected_list") or None
    if sample is None and details.get("details", {}).get("unexpected_rows"):
        sample = details["details"]["unexpected_rows"]
    if sample is not None:
        sample = list(sample)[:SAMPLE_ROWS]
    parts = []
    if observed is not None:
        parts.append(f"observed {_json(observed)}")
    if sample:
        parts.append(f"e.g. {_json(sample)[:400]}")
    messages = _exception_messages(result.exception_info)
    if messages:
        parts.append("exception: " + "; ".join(messages)[:500])
    return "; ".join(parts) or "failed", observed, sample


def _gx_rows_query(query: str) -> str:
    """An unexpected_rows_query as GX must receive it. The suites alias every ``{batch}`` themselves
    (``{batch} as batch_rows``, ``{batch} b``); GX adds its own alias unless the query has a JOIN, so a
    query without one is wrapped in one that has."""
    from great_expectations.expectations.metrics.query_metric_provider import _query_has_join_clause

    if _query_has_join_clause(query):
        return query
    return f"select unexpected.* from ({query}) as unexpected left join (select 1) as no_alias_from_gx on true"


def _exception_messages(info) -> list[str]:
    """GX reports errors as {"raised_exception": ..., "exception_message": ...}, or a dict of those."""
    if not isinstance(info, dict):
        return []
    if info.get("raised_exception"):
        return [str(info.get("exception_message"))]
    return [message for value in info.values() for message in _exception_messages(value)]


def _sample_unexpected_rows(url: str, batch_relation: str, rows_query: str) -> list[dict]:
    """The first failing rows of an unexpected_rows_expectation, asked of Postgres directly (GX only
    returns them in its COMPLETE result format, which would also fetch every failing value of the
    column expectations). ``batch_relation`` is the batch's materialised table, or its query in
    parentheses."""
    from psycopg.rows import dict_row

    sql = rows_query.replace("{batch}", batch_relation)
    with connect(url) as conn, conn.cursor(row_factory=dict_row) as cursor:
        cursor.execute(f"select * from ({sql}) as failing limit {SAMPLE_ROWS}")
        return [{key: value for key, value in row.items()} for row in cursor.fetchall()]


# ------------------------------------------------------------------------- materialised batches

BATCH_SCHEMA = "gate_batches"
# Session advisory locks (key1, key2): key1 says "a gate run", key2 is the run's token, which also ends
# the names of its tables. A live run holds its lock; a table whose lock nobody holds is an orphan.
BATCH_RUN_LOCK_KEY = 0x63686973  # "chis"
_TOKEN = re.compile(r"__([0-9a-f]{8})$")


class MaterialisedBatches:
    """The batches of one gate run, each materialised once into an UNLOGGED table of ``gate_batches``.

    GX evaluates every expectation of a batch as its own SQL over the batch (a query asset's query is
    re-run each time: 13 passes over the day's JSONB dossiers for the raw suite). A temporary table
    would not do: GX reads through its own SQLAlchemy connection. So each batch's query runs once
    here, into ``gate_batches.<layer>__<batch>__<token>``, is analysed, and GX's asset is that table.

    The run holds a session advisory lock on its token for as long as its tables exist, so concurrent
    runs (two days, two layers) never share a name, and a table whose lock nobody holds belongs to a
    run that died without cleaning up (a killed worker): every run drops those before it starts.
    Leaving the context drops this run's tables, whether the run passed, failed or raised.
    """

    def __init__(self, url: str, layer: str):
        self.url, self.layer = url, layer
        self.tables: list[str] = []
        self._conn = None
        self.token: int | None = None

    def __enter__(self) -> MaterialisedBatches:
        import psycopg

        self._conn = psycopg.connect(self.url, autocommit=True)
        try:
            with self._conn.transaction():
                # One creator at a time: concurrent "create schema if not exists" can collide.
                self._conn.execute("select pg_advisory_xact_lock(%s, 0)", (BATCH_RUN_LOCK_KEY,))
                self._conn.execute(f"create schema if not exists {BATCH_SCHEMA}")
            self.drop_orphans()
            while self.token is None:
                token = secrets.randbelow(2**31 - 1) + 1
                if self._conn.execute("select pg_try_advisory_lock(%s, %s)", (BATCH_RUN_LOCK_KEY, token)).fetchone()[0]:
                    self.token = token
        except BaseException:
            self._conn.close()
            raise
        return self

    def drop_orphans(self) -> list[str]:
        """Drop the batch tables of runs that are no longer alive (nobody holds their token's lock)."""
        names = [name for (name,) in self._conn.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = %s and c.relkind in ('r', 'p')", (BATCH_SCHEMA,)).fetchall()]
        dropped = []
        for name in names:
            match = _TOKEN.search(name)
            if not match:
                continue
            token = int(match.group(1), 16)
            if not self._conn.execute("select pg_try_advisory_lock(%s, %s)", (BATCH_RUN_LOCK_KEY, token)).fetchone()[0]:
                continue  # its run is alive
            try:
                self._conn.execute(f'drop table if exists {BATCH_SCHEMA}."{name}"')
                dropped.append(name)
            finally:
                self._conn.execute("select pg_advisory_unlock(%s, %s)", (BATCH_RUN_LOCK_KEY, token))
        if dropped:
            log.info("dropped %d batch table(s) left by gate runs that died: %s", len(dropped), ", ".join(dropped))
        return dropped

    def table_name(self, batch: str) -> str:
        name = f"{self.layer}__{batch}__{self.token:08x}"
        if len(name) > 63:  # Postgres identifiers: keep the token, shorten the rest
            name = f"{name[:50]}__{self.token:08x}"
        return name

    def materialise(self, batch: str, query: str) -> str:
        """Run ``query`` once into a fresh UNLOGGED table, analyse it; returns the table's name."""
        name = self.table_name(batch)
        self.tables.append(name)
        self._conn.execute(f'drop table if exists {BATCH_SCHEMA}."{name}"')
        self._conn.execute(f'create unlogged table {BATCH_SCHEMA}."{name}" as {query}')
        # Statistics, so that the expectations' own queries (joins to the marts, group bys) are planned
        # on the batch's real size rather than on an empty table's guesses.
        self._conn.execute(f'analyze {BATCH_SCHEMA}."{name}"')
        return name

    def __exit__(self, *exc) -> None:
        try:
            # Readers are done (GX's engine is disposed first); a lock timeout only guards against a
            # stray reader keeping the drop waiting forever: the next run's sweep would drop it.
            self._conn.execute("set lock_timeout = '60s'")
            for name in self.tables:
                try:
                    self._conn.execute(f'drop table if exists {BATCH_SCHEMA}."{name}"')
                except Exception as error:  # noqa: BLE001 - never hide the run's own outcome
                    log.warning("could not drop %s.%s (the next gate run will): %s", BATCH_SCHEMA, name, error)
        finally:
            self._conn.close()  # ends the session: its advisory lock goes with it


def run_layer(layer: str, business_date: date, url: str | None = None, run_name: str | None = None, *,
              materialise_batches: bool = True) -> GateResult:
    """Validate the business date's data of ``layer`` against its suite; record and return the result.

    Each batch's query runs once, into a table of ``gate_batches`` that every expectation (and every
    failing-row sample) reads, and that is dropped when the run ends (MaterialisedBatches).
    ``materialise_batches=False`` is the former way, a GX query asset that re-runs the batch's query
    for each expectation: kept for scripts/bench_gates.py to measure the difference."""
    definition = load_suite_definition(layer)
    url = url or warehouse_url()
    with MaterialisedBatches(url, layer) if materialise_batches else nullcontext() as batches:
        return _run_layer(definition, layer, business_date, url, run_name, batches)


def _run_layer(definition: dict, layer: str, business_date: date, url: str, run_name: str | None,
               batches: MaterialisedBatches | None) -> GateResult:
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    context = _context()
    # GX finds the batch tables through the search path (its per-asset schema_name is deprecated); the
    # suites name every warehouse relation with its schema, so nothing else resolves differently.
    engine_kwargs = {"connect_args": {"options": f"-c search_path={BATCH_SCHEMA},public"}} if batches else {}
    datasource = context.data_sources.add_postgres(name="warehouse", connection_string=sqlalchemy_url(url),
                                                   kwargs=engine_kwargs)
    try:
        validations, batch_relations = [], {}
        for batch in definition["batches"]:
            suite_name = f"{layer}.{batch['name']}"
            query = render_sql(batch["query"], business_date)
            if not query.lstrip().lower().startswith("select "):  # GX's query assets start with SELECT
                query = f"select * from ({query}) as {batch['name']}"
            if batches is not None:
                table = batches.materialise(batch["name"], query)
                batch_relations[suite_name] = f'{BATCH_SCHEMA}."{table}"'
                asset = datasource.add_table_asset(name=batch["name"], table_name=table)
            else:
                batch_relations[suite_name] = f"({query})"
                asset = datasource.add_query_asset(name=batch["name"], query=query)
            batch_definition = asset.add_batch_definition_whole_table(business_date.isoformat())
            suite = context.suites.add(gx.ExpectationSuite(name=suite_name, meta={"layer": layer}))
            for expectation in batch["expectations"]:
                kwargs = _render_kwargs(expectation["kwargs"], business_date)
                if "unexpected_rows_query" in kwargs:
                    kwargs["unexpected_rows_query"] = _gx_rows_query(kwargs["unexpected_rows_query"])
                # add_expectation keeps every distinct expectation (add_expectation_configuration would
                # upsert by domain: two checks of one column, or two unexpected-rows queries, would merge).
                meta = expectation.get("meta", {})
                suite.add_expectation(ExpectationConfiguration(
                    type=expectation["type"], kwargs=kwargs, meta=meta, notes=_notes(meta),
                    description=_description(expectation["type"], meta)).to_domain_obj())
            suite.save()
            validations.append(context.validation_definitions.add(
                gx.ValidationDefinition(name=suite_name, data=batch_definition, suite=suite)))
        checkpoint = context.checkpoints.add(gx.Checkpoint(name=f"{layer}_gate", validation_definitions=validations))
        run_id = RunIdentifier(run_name=run_name or f"{business_date.isoformat()}",
                               run_time=datetime.now(timezone.utc))
        run = checkpoint.run(run_id=run_id)
        return _collect(run, context, layer, business_date, url, batch_relations)
    finally:
        # GX's pooled connections would otherwise outlive the run (and could hold the batch tables).
        datasource.get_engine().dispose()


def _collect(run, context, layer: str, business_date: date, url: str, batch_relations: dict) -> GateResult:
    """The checkpoint's results as a GateResult, with failing-row samples; recorded in ops."""
    result = GateResult(layer, business_date)
    rows = []  # for ops.validation_results
    for identifier, validation_result in run.run_results.items():
        suite_name = validation_result.suite_name
        for expectation_result in validation_result.results:
            result.evaluated += 1
            config = expectation_result.expectation_config
            meta = config.meta or {}
            text, observed, sample = _observed(expectation_result)
            if not expectation_result.success and config.type == "unexpected_rows_expectation":
                try:
                    sample = _sample_unexpected_rows(url, batch_relations[suite_name],
                                                     config.kwargs["unexpected_rows_query"])
                    text = f"{text}; e.g. {_json(sample)[:400]}"
                except Exception as exc:  # the sample is a courtesy; the verdict stands without it
                    log.warning("could not sample the failing rows of %s: %s", meta.get("name"), exc)
            failure = GateFailure(suite=suite_name, expectation=config.type, name=meta.get("name"),
                                  column=_columns(config.kwargs), severity=meta.get("severity", "block"),
                                  observed=text, why=meta.get("why"), sample=sample)
            if not expectation_result.success:
                result.failures.append(failure)
            rows.append((failure, bool(expectation_result.success), observed, identifier))
    result.data_docs = _build_data_docs(context, list(run.run_results), result)
    pages = {identifier: _data_docs_page(context, identifier) for identifier in run.run_results}
    rows = [(failure, success, observed, pages[identifier]) for failure, success, observed, identifier in rows]
    _record(result, rows, url)
    (log.info if not result.failures else log.warning)(result.message())
    return result


def _data_docs_page(context, identifier) -> str | None:
    """Path of the validation's page, relative to the Data Docs folder."""
    try:
        urls = context.get_docs_sites_urls(resource_identifier=identifier, site_name=DATA_DOCS_SITE)
    except Exception:  # noqa: BLE001
        return None
    for entry in urls or []:
        url = entry.get("site_url") or ""
        prefix = data_docs_dir().resolve().as_uri() + "/"
        if url.startswith(prefix):
            return url[len(prefix):]
        if url.startswith("file://"):
            return url[len("file://"):]
    return None


def _build_data_docs(context, identifiers, result: GateResult) -> list[str]:
    """Render this run's validation pages and the index; returns where to read the failing ones."""
    try:
        context.build_data_docs(site_names=[DATA_DOCS_SITE], resource_identifiers=identifiers)
    except Exception as exc:  # noqa: BLE001 - Data Docs must never decide whether a gate passes
        log.warning("Data Docs were not built: %s", exc)
        return []
    built = [page for page in (_data_docs_page(context, identifier) for identifier in identifiers) if page]
    _make_offline(["index.html", *built])
    failing = {failure.suite for failure in result.failures}
    pages = []
    for identifier in identifiers:
        page = _data_docs_page(context, identifier)
        if page and (not failing or any(f"/{suite.replace('.', '/')}/" in f"/{page}" for suite in failing)):
            pages.append(data_docs_link(page))
    return pages or [data_docs_link("index.html")]


def rebuild_data_docs_index() -> None:
    """Rebuild the Data Docs index from the validation results still stored (after a purge): only
    the newest result's page is rendered again, the index lists what remains."""
    context = _context()
    stored = context.validation_results_store.list_keys()
    newest = max(stored, key=lambda key: str(key.run_id.run_time), default=None)
    context.build_data_docs(site_names=[DATA_DOCS_SITE], resource_identifiers=[newest] if newest else None)
    pages = [_data_docs_page(context, newest)] if newest else []
    _make_offline(["index.html", *[page for page in pages if page]])


def _make_offline(pages: list[str]) -> None:
    """Point the pages just built at the site's own copies of their CSS, JS and fonts (chiso.docs_site.offline),
    so that they render on a closed network."""
    from chiso.docs_site.offline import AssetsMissing, make_data_docs_offline

    site = data_docs_dir()
    try:
        make_data_docs_offline(site, [site / page for page in pages])
    except AssetsMissing as exc:  # Data Docs must never decide whether a gate passes
        log.warning("Data Docs need the internet to render: %s", exc)


def data_docs_link(page: str) -> str:
    """Where a person reads a Data Docs page: CHISO_DATA_DOCS_URL (the served site) or the folder."""
    base = settings.get("CHISO_DATA_DOCS_URL")
    if base:
        return base.rstrip("/") + "/" + page
    return str(data_docs_dir() / page)


def _record(result: GateResult, rows: list, url: str) -> None:
    failures = [{key: value for key, value in failure.__dict__.items() if key != "sample"}
                for failure in result.failures]
    with connect(url) as conn:
        (result.gate_run_id,) = conn.execute(
            f"insert into {OPS_SCHEMA}.gate_runs (suite, business_date, success, failed_expectations) "
            f"values (%s, %s, %s, %s) returning gate_run_id",
            (result.suite, result.business_date, result.passed, _json(failures)),
        ).fetchone()
        with conn.cursor() as cursor:
            cursor.executemany(
                f"insert into {OPS_SCHEMA}.validation_results (gate_run_id, business_date, layer, suite, "
                f"expectation_type, expectation_name, column_names, severity, success, observed_value, sample, "
                f"data_docs_page) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(result.gate_run_id, result.business_date, result.suite, failure.suite, failure.expectation,
                  failure.name, failure.column, failure.severity, success,
                  None if observed is None else _json(observed),
                  None if success or failure.sample is None else _json(failure.sample), page)
                 for failure, success, observed, page in rows],
            )


# ------------------------------------------------------------------------- the daily gates


def run_gate(layers: list[str] | tuple[str, ...], business_date: date, url: str | None = None) -> list[GateResult]:
    """Run each layer's suite (all of them, so that one report names every problem); raise GateFailed
    if any has a blocking failure."""
    results = [run_layer(layer, business_date, url) for layer in layers]
    if not all(result.passed for result in results):
        raise GateFailed(results)
    return results


def gate_raw(business_date: date, url: str | None = None) -> list[GateResult]:
    return run_gate(["raw"], business_date, url)


def gate_built(business_date: date, url: str | None = None) -> list[GateResult]:
    """Staging/intermediate and marts, after dbt built them and before anything is published."""
    return run_gate(["staging", "marts"], business_date, url)


def warnings_of(business_date: date, url: str | None = None) -> list[dict]:
    """The warn failures of the latest run of each layer for the day (what a publication notes)."""
    with connect(url) as conn:
        rows = conn.execute(f"""
            select distinct on (suite) suite, failed_expectations from {OPS_SCHEMA}.gate_runs
            where business_date = %s order by suite, gate_run_id desc""", (business_date,)).fetchall()
    return [failure for _, failures in rows for failure in failures if failure.get("severity") == "warn"]
