"""What happened to each business day: loaded, gated, published, sent (``chiso status``).

Reads only the ops tables the pipeline writes (raw.load_ledger, ops.gate_runs,
ops.reporting_publications, ops.report_deliveries), so it answers for any warehouse, whoever ran it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from chiso.core.warehouse import OPS_SCHEMA, RAW_SCHEMA, connect

STATUS_SQL = f"""
with days as (
    select business_date from {RAW_SCHEMA}.load_ledger
    union select business_date from {OPS_SCHEMA}.gate_runs
    union select business_date from {OPS_SCHEMA}.reporting_publications
    union select business_date from {OPS_SCHEMA}.report_deliveries
), loads as (
    select business_date, count(distinct entity) as entities, coalesce(sum(rows_loaded), 0) as rows_loaded,
           coalesce(sum(rows_quarantined), 0) as rows_quarantined
    from {RAW_SCHEMA}.load_ledger where status in ('loaded', 'purged') group by business_date
), latest_gates as (
    select distinct on (business_date, suite) business_date, suite, success
    from {OPS_SCHEMA}.gate_runs order by business_date, suite, gate_run_id desc
), gates as (
    select business_date, count(*) as suites, count(*) filter (where success) as passed,
           string_agg(suite, ', ' order by suite) filter (where not success) as failed
    from latest_gates group by business_date
), publications as (
    select distinct on (business_date) business_date, published_at, jsonb_array_length(warnings) as warnings
    from {OPS_SCHEMA}.reporting_publications order by business_date, publication_id desc
), deliveries as (
    select business_date, count(*) as messages, count(distinct report_code) as reports
    from {OPS_SCHEMA}.report_deliveries group by business_date
)
select d.business_date, l.entities, l.rows_loaded, l.rows_quarantined, g.suites, g.passed, g.failed,
       p.published_at, p.warnings, s.messages, s.reports
from days d
left join loads l using (business_date) left join gates g using (business_date)
left join publications p using (business_date) left join deliveries s using (business_date)
where d.business_date between %s and %s
order by d.business_date
"""


@dataclass(frozen=True)
class DayStatus:
    business_date: date
    entities_loaded: int
    rows_loaded: int
    rows_quarantined: int
    gate_suites: int
    gates_passed: int
    failed_suites: str | None
    published_at: object | None
    publication_warnings: int
    messages_sent: int
    reports_sent: int

    @property
    def gated(self) -> str:
        if not self.gate_suites:
            return "not run"
        if self.failed_suites:
            return f"FAILED: {self.failed_suites}"
        return f"{self.gates_passed}/{self.gate_suites} passed"

    @property
    def warnings(self) -> str:
        parts = []
        if self.rows_quarantined:
            parts.append(f"{self.rows_quarantined:,} quarantined")
        if self.publication_warnings:
            parts.append(f"{self.publication_warnings} gate warning(s)")
        return "; ".join(parts) or "—"


def day_status(first: date = date.min, last: date = date.max, url: str | None = None) -> list[DayStatus]:
    with connect(url) as conn:
        rows = conn.execute(STATUS_SQL, (first, last)).fetchall()
    return [DayStatus(day, entities or 0, int(loaded or 0), int(quarantined or 0), suites or 0, passed or 0, failed,
                      published, warnings or 0, messages or 0, reports or 0)
            for day, entities, loaded, quarantined, suites, passed, failed, published, warnings, messages, reports
            in rows]


def status_table(days: list[DayStatus]):
    """The days as a rich Table (plain text when the output is not a terminal)."""
    from rich.table import Table

    table = Table(title="chiso status: per business day", title_justify="left")
    for header, justify in [("day", "left"), ("entities", "right"), ("rows loaded", "right"), ("gates", "left"),
                            ("published", "left"), ("e-mails", "right"), ("reports", "right"),
                            ("warnings", "left")]:
        table.add_column(header, justify=justify, no_wrap=header != "warnings")
    for day in days:
        table.add_row(day.business_date.isoformat(), str(day.entities_loaded), f"{day.rows_loaded:,}", day.gated,
                      day.published_at.strftime("%Y-%m-%d %H:%M") if day.published_at else "no",
                      str(day.messages_sent), str(day.reports_sent), day.warnings)
    return table
