"""The nightly report: the day's indicator values per unit, as a Vietnamese HTML e-mail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import jinja2

from chiso.reports.recipients import Recipient
from chiso.warehouse import connect

REPORT_CODE = "daily_indicators"
# The nightly table shows the day's figures of these indicators for the units the 766 index scores
# (the full scorecard, charts and targets come with the report of issue #8).
HEADLINE_INDICATORS = ("ON_TIME", "ONLINE_DOSSIER_SHARE")
TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class IndicatorColumn:
    code: str
    name_vi: str


@dataclass(frozen=True)
class IndicatorValue:
    numerator: int
    denominator: int
    rate: Decimal | None


@dataclass(frozen=True)
class UnitRow:
    unit_code: str
    unit_name: str
    values: dict[str, IndicatorValue]


@dataclass(frozen=True)
class DailyReport:
    business_date: date
    indicators: list[IndicatorColumn]
    units: list[UnitRow]

    def for_recipient(self, recipient: Recipient) -> DailyReport:
        return DailyReport(self.business_date, self.indicators,
                           [u for u in self.units if recipient.sees(u.unit_code)])


def format_rate(rate: Decimal | None) -> str:
    """Vietnamese number style: decimal comma, two decimals ("72,50"); a dash when there is no rate."""
    return "—" if rate is None else f"{rate:.2f}".replace(".", ",")


def format_day(day: date) -> str:
    return day.strftime("%d/%m/%Y")


def build_daily_report(business_date: date, url: str | None = None) -> DailyReport:
    with connect(url) as conn:
        # Labels and order come from the rule registry: no indicator name is written twice.
        indicators = [IndicatorColumn(code, name) for code, name, _group in conn.execute(
            """
            select distinct r.indicator_code, r.name_vi, r.indicator_group
            from reference.rule_registry as r
            join marts.fct_indicator_values as v
              on v.indicator_code = r.indicator_code and v.rule_version = r.rule_version
            where v.business_date = %s and v.period_type = 'day' and v.indicator_code = any(%s)
            order by r.indicator_group desc, r.indicator_code
            """, (business_date, list(HEADLINE_INDICATORS))).fetchall()]
        rows = conn.execute(
            """
            select u.unit_code, u.unit_name, v.indicator_code, v.numerator, v.denominator, v.rate
            from marts.fct_indicator_values as v
            join marts.dim_units as u using (unit_code)
            where v.business_date = %s and v.period_type = 'day' and v.indicator_code = any(%s)
              and u.is_evaluated
            order by u.unit_name, u.unit_code
            """, (business_date, list(HEADLINE_INDICATORS))).fetchall()
    units: dict[str, UnitRow] = {}
    for unit_code, unit_name, code, numerator, denominator, rate in rows:
        unit = units.setdefault(unit_code, UnitRow(unit_code, unit_name, {}))
        unit.values[code] = IndicatorValue(numerator, denominator, rate)
    return DailyReport(business_date, indicators, list(units.values()))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined)
    env.filters["rate"] = format_rate
    env.filters["day"] = format_day
    return env


def render_subject(report: DailyReport) -> str:
    return f"[chiso] Báo cáo chỉ số phục vụ người dân, doanh nghiệp ngày {format_day(report.business_date)}"


def render_html(report: DailyReport, recipient: Recipient) -> str:
    return _environment().get_template("daily_report.html.j2").render(report=report, recipient=recipient)
