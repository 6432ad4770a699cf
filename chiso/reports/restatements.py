"""The nightly e-mail's „Số liệu điều chỉnh“ block: figures an earlier e-mail showed that tonight's
publication restated, by how much and why (docs/publication.md "As published").

The figures come from ``ops.published_indicator_values`` (chiso.publish.published_values): the restatements the
publications of the report's business date recorded, of the values the e-mails show (the headline
indicators' day values and their year to date), for days before the report's. One line per series
(unit, indicator, period): its latest restated day, the value as last reported and as known now, the
reason; other restated days of the series are counted on the line. At most :data:`LINES_MAX` lines, the
largest changes first, and the count of the rest.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from chiso.publish.published_values import REASONS
from chiso.reports import text
from chiso.core.warehouse import connect

LINES_MAX = 5
PERIODS = ("day", "year")   # the e-mail shows the day's figures and the year to date
SHARED_KEY = "restatements"

WORDS = {
    "vi": {
        "title": "Số liệu điều chỉnh",
        "intro": "Một số số liệu đã gửi trong báo cáo các ngày trước được tính lại với dữ liệu mới nhận:",
        "day": "{indicator} ngày {day} của {unit}",
        "year": "{indicator} năm của {unit} tính đến {day}",
        "line": "{figure}: đã báo cáo {before} ({before_num}/{before_den}), nay {now} ({now_num}/{now_den}) — do {why}",
        "and": " và ",
        "earlier_days": "; cùng điều chỉnh {count} ngày trước đó",
        "more": "Và {count} số liệu khác được điều chỉnh (xem reporting.mart_value_restatements).",
    },
    "en": {
        "title": "Restated figures",
        "intro": "Figures sent in earlier days' reports were recomputed with data received since:",
        "day": "{indicator} on {day}, {unit}",
        "year": "{indicator}, year to {day}, {unit}",
        "line": "{figure}: reported {before} ({before_num}/{before_den}), now {now} ({now_num}/{now_den}) — because of {why}",
        "and": " and ",
        "earlier_days": "; {count} earlier days restated too",
        "more": "And {count} other restated figures (see reporting.mart_value_restatements).",
    },
}


@dataclass(frozen=True)
class Restatement:
    unit_code: str
    unit_name: str
    indicator_code: str
    indicator_name: str
    period_type: str
    as_of_date: date
    before: tuple[Decimal | None, Decimal | None, Decimal | None]   # numerator, denominator, rate
    now: tuple[Decimal | None, Decimal | None, Decimal | None]
    late_dossiers: int
    corrected_dossiers: int
    rule_version_changed: bool
    earlier_days: int = 0   # other restated days of the same series

    @property
    def change(self) -> Decimal:
        if self.before[2] is None or self.now[2] is None:
            return Decimal(0)
        return abs(self.now[2] - self.before[2])


def attach(report, indicators: list[str], url: str | None = None) -> None:
    """Read the restatements of the report's business date, per unit, into the report (once a night)."""
    with connect(url) as conn:
        rows = conn.execute(
            """
            select r.unit_code, coalesce(u.unit_name, r.unit_code), r.indicator_code,
                   coalesce(registry.name_vi, r.indicator_code), coalesce(registry.name_en, r.indicator_code),
                   r.period_type, r.as_of_date,
                   previous.numerator, previous.denominator, previous.rate, r.numerator, r.denominator, r.rate,
                   r.late_dossiers, r.corrected_dossiers, r.rule_version_changed
            from ops.reporting_publications as publication
            join ops.published_indicator_values as r using (publication_id)
            join ops.published_indicator_values as previous
              on previous.unit_code = r.unit_code and previous.indicator_code = r.indicator_code
             and previous.period_type = r.period_type and previous.as_of_date = r.as_of_date
             and previous.publication_id = r.previous_publication_id
            left join marts.dim_units as u on u.unit_code = r.unit_code
            left join reference.rule_registry as registry
              on registry.indicator_code = r.indicator_code and registry.rule_version = r.rule_version
            where publication.business_date = %s and r.as_of_date < %s
              and r.indicator_code = any(%s) and r.period_type = any(%s)
            order by r.unit_code, r.indicator_code, r.period_type, r.as_of_date desc, r.publication_id desc
            """, (report.business_date, report.business_date, list(indicators), list(PERIODS))).fetchall()
    series: dict[tuple, list] = defaultdict(list)
    for row in rows:
        series[row[0], row[2], row[5]].append(row)
    by_unit: dict[str, dict[str, list[Restatement]]] = defaultdict(lambda: {"vi": [], "en": []})
    for (unit_code, _indicator, _period), members in series.items():
        latest = members[0]   # the latest restated day of the series (its latest publication)
        days = {m[6] for m in members}
        for language, name in (("vi", latest[3]), ("en", latest[4])):
            by_unit[unit_code][language].append(Restatement(
                latest[0], latest[1], latest[2], name, latest[5], latest[6], tuple(latest[7:10]),
                tuple(latest[10:13]), latest[13] or 0, latest[14] or 0, bool(latest[15]), len(days) - 1))
    report.shared[SHARED_KEY] = dict(by_unit)


def _why(item: Restatement, language: str) -> str:
    index = 0 if language == "vi" else 1
    causes = []
    if item.rule_version_changed:
        causes.append(REASONS["rule_version"][index])
    if item.late_dossiers:
        causes.append(f"{item.late_dossiers} {REASONS['late_dossiers'][index]}")
    if item.corrected_dossiers:
        causes.append(f"{item.corrected_dossiers} {REASONS['corrected_versions'][index]}")
    return WORDS[language]["and"].join(causes) or REASONS["other_data"][index]


def _line(item: Restatement, language: str) -> str:
    words = WORDS[language]
    figure = words[item.period_type].format(indicator=item.indicator_name, unit=text.short_unit_name(item.unit_name),
                                            day=text.day(item.as_of_date))
    line = words["line"].format(
        figure=figure, before=text.number(item.before[2]), before_num=text.number(item.before[0], 0),
        before_den=text.number(item.before[1], 0), now=text.number(item.now[2]), now_num=text.number(item.now[0], 0),
        now_den=text.number(item.now[1], 0), why=_why(item, language))
    if item.earlier_days:
        line += words["earlier_days"].format(count=item.earlier_days)
    return text.nfc(line)


def for_reader(report, visible_units, language: str) -> dict | None:
    """The block for one reader: the restated series of the units they see, largest changes first."""
    by_unit = report.shared.get(SHARED_KEY) or {}
    language = language if language in WORDS else "vi"
    items = [item for unit in visible_units for item in by_unit.get(unit, {}).get(language, ())]
    if not items:
        return None
    items.sort(key=lambda item: (-item.change, item.unit_name, item.indicator_code, item.period_type))
    words = WORDS[language]
    shown = items[:LINES_MAX]
    return {
        "title": words["title"], "intro": words["intro"],
        "lines": [{"unit_code": i.unit_code, "indicator_code": i.indicator_code, "period_type": i.period_type,
                   "text": _line(i, language)} for i in shown],
        "more": words["more"].format(count=len(items) - len(shown)) if len(items) > len(shown) else None,
    }


def text_lines(block: dict | None) -> list[str]:
    """The block in the plain-text part of the e-mail."""
    if not block:
        return []
    lines = ["", block["title"], block["intro"], *(f"- {line['text']}" for line in block["lines"])]
    return lines + ([block["more"]] if block["more"] else [])
