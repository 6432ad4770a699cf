"""Great Expectations gates: nothing is published unless the day's data passes them.

Suites are JSON files in ``expectations/`` (one per checked model). Each expectation carries
``meta.severity``: ``block`` failures stop publication, ``warn`` failures are reported only. The
checkpoint runs in an ephemeral GX context against Postgres, so every check is SQL pushed down to
the warehouse; each run is recorded in ``ops.gate_runs``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from chiso import settings
from chiso.warehouse import OPS_SCHEMA, connect, sqlalchemy_url, warehouse_url

log = logging.getLogger(__name__)


@dataclass
class GateFailure:
    expectation: str
    column: str | None
    severity: str
    observed: str


@dataclass
class GateResult:
    suite: str
    business_date: date
    evaluated: int
    failures: list[GateFailure] = field(default_factory=list)

    @property
    def blocking(self) -> list[GateFailure]:
        return [f for f in self.failures if f.severity == "block"]

    @property
    def passed(self) -> bool:
        return not self.blocking

    def message(self) -> str:
        if not self.failures:
            return f"Gate {self.suite} for {self.business_date}: all {self.evaluated} expectations passed."
        lines = [f"Gate {self.suite} for {self.business_date}: {len(self.blocking)} blocking and "
                 f"{len(self.failures) - len(self.blocking)} warning failure(s) of {self.evaluated}:"]
        for failure in self.failures:
            where = f" on column {failure.column}" if failure.column else ""
            lines.append(f"  [{failure.severity}] {failure.expectation}{where}: {failure.observed}")
        return "\n".join(lines)


class GateFailed(RuntimeError):
    def __init__(self, result: GateResult):
        super().__init__(result.message())
        self.result = result


def load_suite_definition(suite: str) -> dict:
    path = Path(settings.require("CHISO_EXPECTATIONS_DIR")) / f"{suite}.json"
    definition = json.loads(path.read_text(encoding="utf-8"))
    for expectation in definition["expectations"]:
        severity = expectation.get("meta", {}).get("severity")
        if severity not in ("block", "warn"):
            raise ValueError(f"{path}: {expectation['type']} needs meta.severity block or warn, got {severity!r}")
    return definition


def _columns(kwargs: dict) -> str | None:
    if "column_A" in kwargs:
        return f"{kwargs['column_A']}, {kwargs['column_B']}"
    if "column_list" in kwargs:
        return ", ".join(kwargs["column_list"])
    return kwargs.get("column")


def _observed(result) -> str:
    details = result.result or {}
    for key in ("partial_unexpected_list", "observed_value", "details"):
        if details.get(key) not in (None, [], {}):
            return f"{key}={json.dumps(details[key], ensure_ascii=False, default=str)[:300]}"
    if details.get("unexpected_count"):
        return f"unexpected_count={details['unexpected_count']}"
    if result.exception_info and result.exception_info.get("raised_exception"):
        return f"exception: {result.exception_info.get('exception_message')}"
    return "failed"


def run_gate(suite: str, query: str, business_date: date, parameters: dict | None = None,
             url: str | None = None) -> GateResult:
    """Validate the rows of ``query`` against ``suite``; record and return the result."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    definition = load_suite_definition(suite)
    url = url or warehouse_url()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # keep task logs readable
    datasource = context.data_sources.add_postgres(name="warehouse", connection_string=sqlalchemy_url(url))
    asset = datasource.add_query_asset(name=f"{suite}_{business_date:%Y%m%d}", query=query)
    batch_definition = asset.add_batch_definition_whole_table("whole_day")
    gx_suite = context.suites.add(gx.ExpectationSuite(name=suite))
    for expectation in definition["expectations"]:
        gx_suite.add_expectation_configuration(
            ExpectationConfiguration(type=expectation["type"], kwargs=expectation["kwargs"],
                                     meta=expectation.get("meta", {}))
        )
    gx_suite.save()
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{suite}_validation", data=batch_definition, suite=gx_suite)
    )
    checkpoint = context.checkpoints.add(gx.Checkpoint(name=f"{suite}_gate", validation_definitions=[validation]))
    run = checkpoint.run(expectation_parameters=parameters or {})

    result = GateResult(suite, business_date, evaluated=0)
    for validation_result in run.run_results.values():
        for expectation_result in validation_result.results:
            result.evaluated += 1
            if expectation_result.success:
                continue
            config = expectation_result.expectation_config
            result.failures.append(GateFailure(
                expectation=config.type,
                column=_columns(config.kwargs),
                severity=config.meta.get("severity", "block"),
                observed=_observed(expectation_result),
            ))
    _record(result, url)
    log.info(result.message())
    return result


def _record(result: GateResult, url: str) -> None:
    failures = [failure.__dict__ for failure in result.failures]
    with connect(url) as conn:
        conn.execute(
            f"insert into {OPS_SCHEMA}.gate_runs (suite, business_date, success, failed_expectations) "
            f"values (%s, %s, %s, %s)",
            (result.suite, result.business_date, result.passed, json.dumps(failures, ensure_ascii=False)),
        )


def gate_indicator_values(business_date: date, url: str | None = None) -> GateResult:
    """The daily gate on fct_indicator_values; raises GateFailed on a blocking failure."""
    url = url or warehouse_url()
    with connect(url) as conn:
        units = [row[0] for row in conn.execute(
            # Every unit that exists on the day has values: evaluated units and the provinces pooling them.
            "select unit_code from marts.dim_units where valid_from <= %s "
            "and (valid_to is null or valid_to >= %s) order by 1", (business_date, business_date))]
    query = f"select * from marts.fct_indicator_values where business_date = '{business_date.isoformat()}'"
    result = run_gate("fct_indicator_values", query, business_date, {"active_unit_codes": units}, url)
    if not result.passed:
        raise GateFailed(result)
    return result
