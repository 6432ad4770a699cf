"""The nightly e-mail: each recipient's units as of the business date, as an HTML e-mail with charts.

What one recipient reads (templates/daily_report.html.j2):

* the focus unit's total score (year to date, the portal's view), its change since the previous day,
  its class and rank "x/y" (in the district, in the province, among units of its kind);
* the six group scores against their maxima, and a chart of each group against its target;
* a chart of the total score over the last 30 days beside the peers' average;
* the targets in force (mart_target_attainment): target, value now, đạt / chưa đạt / có nguy cơ and
  the gap in dossiers;
* the units below the plans' thresholds (mart_peer_lists) and the targets off track;
* the peers' table (a commune sees its district's communes, a district its communes, a province every
  unit), the recipient's own unit highlighted;
* the day's on-time and online figures per unit in scope (with machine-readable markers: every
  figure carries ``data-unit`` / ``data-indicator`` or ``data-figure`` attributes).

Everything a recipient may see is read once per business date (:func:`build_daily_report`); each
recipient's view is a filter of it (:meth:`DailyReport.view`).

Every message stays under the sender's 1 MB cap (chiso.reports.send.MAX_MESSAGE_BYTES) at national
scale: a table longer than the reader needs is cut in the body, with a sentence saying how many rows
were left out, and given in full in an attachment (:func:`full_tables`): an Excel workbook, or for
a scope spanning several provinces (the data team, ~3,900 units: a workbook alone would be 390 KB, 1.2 MB
before 1/7/2025) CSV files in a ZIP, a third of the size:

* the ranking: the top and bottom :data:`RANKING_ENDS` and the reader's own unit with
  :data:`RANKING_NEIGHBOURS` on either side, once it is longer than :data:`RANKING_ROWS_MAX`; a scope
  spanning several provinces (the data team) sees the provinces ranked among themselves;
* the day's figures: the reader's own row and the :data:`DAY_ROWS_WORST` units with the lowest first
  headline rate, once longer than :data:`DAY_ROWS_MAX`; several provinces: pooled per province;
* the plans' lists (the reader's own peer sets first) and the off-track targets, past their maxima.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path

import jinja2

from chiso.core.calendar import CalendarDay, day_off_reason
from chiso.reports import charts, day_notes, restatements, text
from chiso.reports.mail import Attachment, InlineImage, RenderedReport
from chiso.reports.recipients import Recipient, Unit, ancestors, mailbox_for
from chiso.core.warehouse import connect

REPORT_CODE = "daily_indicators"
# The day table shows the day's figures of these indicators for the units the 766 index scores.
HEADLINE_INDICATORS = ("ONLINE_DOSSIER_SHARE",)
# The day's on-time figure is DAY_ON_TIME (seed report_day_measures, marts.mart_day_on_time: dossiers
# that ended or fell overdue that day), not ON_TIME's day value: ON_TIME counts a day's received
# dossiers still open and not yet due as on time, so it read 100 for every unit by construction.
DAY_MEASURES = ("DAY_ON_TIME",)
TEMPLATES = Path(__file__).parent / "templates"
TREND_DAYS = 30
STATUS_ORDER = {"not_met": 0, "at_risk": 1, "no_data": 2, "met": 3}
# How long a table may grow in the body before it is cut (the full table goes in the attachment).
# A national commune ranks among ~100 communes of its province, the data team sees ~3,900 units: uncut,
# their e-mails were 1.16 MB and 3.09 MB (10,000 communes before 1/7/2025: 9.5 MB).
RANKING_ROWS_MAX, RANKING_ENDS, RANKING_NEIGHBOURS = 40, 10, 3
DAY_ROWS_MAX, DAY_ROWS_WORST = 40, 20
LISTS_MAX = 10
# Off-track targets of other units: past this many, the body shows a summary per target and the
# OFF_TRACK_MAX largest gaps (a district's 37 all-red rows made a 10,000 px e-mail); all in the attachment.
OFF_TRACK_MAX = 10


@dataclass(frozen=True)
class IndicatorColumn:
    code: str
    name_vi: str
    name_en: str = ""


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
class Score:
    unit_code: str
    groups: dict[str, Decimal]
    total: Decimal
    class_code: str
    class_vi: str
    class_en: str
    rank_province: int | None
    province_count: int | None
    rank_kind: int | None
    kind_count: int | None
    rank_district: int | None
    district_count: int | None
    change: Decimal | None


@dataclass(frozen=True)
class TargetStatus:
    target_id: str
    plan_id: str
    unit_code: str
    unit_name: str
    indicator_code: str
    indicator_name_vi: str
    unit_of_measure: str
    comparator: str
    measure_period: str
    target_value: Decimal
    actual_value: Decimal | None
    judged_value: Decimal | None
    numerator: Decimal | None
    denominator: Decimal | None
    gap_points: Decimal | None
    gap_items: int | None
    deadline: date | None
    is_final: bool
    status_code: str
    status_vi: str


@dataclass(frozen=True)
class PeerList:
    list_code: str
    peer_set_unit_code: str
    member_unit_codes: list[str]
    sentence_vi: str
    comparator: str = "<"   # the list's test (reference.peer_lists): < or <= lists units below its threshold
    indicator_code: str | None = None
    threshold: Decimal | None = None

    @property
    def is_below(self) -> bool:
        return self.comparator in ("<", "<=")


@dataclass(frozen=True)
class ChangeReason:
    """Why a unit's total (year to date) moved since the previous day: the indicator whose score moved
    most, and by how many items (marts.fct_indicator_values, year period, day over day)."""
    unit_code: str
    change: Decimal | None
    indicator_code: str
    indicator_name_vi: str
    indicator_name_en: str
    item_kind: str            # what the indicator counts: dossier, procedure or feedback (its denominator)
    score_delta: Decimal
    numerator_delta: int
    denominator_delta: int
    rate_before: Decimal | None
    rate_now: Decimal | None


@dataclass
class DailyReport:
    business_date: date
    indicators: list[IndicatorColumn]
    units: list[UnitRow]                       # the day table (evaluated units with values)
    catalogue: dict[str, Unit] = field(default_factory=dict)
    scores: dict[str, Score] = field(default_factory=dict)
    trends: dict[str, list[tuple[date, Decimal]]] = field(default_factory=dict)
    group_max: dict[str, Decimal] = field(default_factory=dict)
    targets: list[TargetStatus] = field(default_factory=list)
    peer_lists: list[PeerList] = field(default_factory=list)
    technical: dict = field(default_factory=dict)
    calendar_day: CalendarDay | None = None                   # the business date in marts.dim_calendar
    day_off_reasons: dict[str, str | None] = field(default_factory=dict)   # by language; None: working day
    change_reasons: dict[str, ChangeReason] = field(default_factory=dict)
    # Shared by every recipient's view of the night: the province of each unit, and the attached
    # workbooks by content (a province's ~100 communes all attach the same ranking: built once).
    shared: dict = field(default_factory=dict, repr=False, compare=False)

    def for_recipient(self, recipient: Recipient) -> DailyReport:
        """The same report restricted to the units the recipient sees (the day table and targets).

        The work is proportional to the recipient's units, not to the country's: a commune's view
        looks its one row up (the 3,321 communes of a national night each scanned every unit)."""
        if not self.catalogue:
            return dataclasses.replace(self, units=[u for u in self.units if recipient.sees(u.unit_code)],
                                       targets=[t for t in self.targets if recipient.sees(t.unit_code)])
        visible = self.visible_units(recipient)
        return dataclasses.replace(self, units=self._rows_of("units", self.units, visible),
                                   targets=self._rows_of("targets", self.targets, visible))

    def visible_units(self, recipient: Recipient) -> frozenset[str]:
        """recipient.units(catalogue), once a night per scope (a province's walks every unit's ancestors)."""
        key = ("visible", recipient.scope)
        if key not in self.shared:
            self.shared[key] = frozenset(recipient.units(self.catalogue))
        return self.shared[key]

    def _rows_of(self, name: str, rows: list, visible: frozenset[str]) -> list:
        """The rows (UnitRow or TargetStatus) of the visible units, in the report's order."""
        if len(visible) * 4 >= len(self.catalogue):   # most of the country: one pass is quicker
            return [row for row in rows if row.unit_code in visible]
        key = ("rows_by_unit", name)
        by_unit = self.shared.get(key)
        if by_unit is None:
            by_unit = defaultdict(list)
            for position, row in enumerate(rows):
                by_unit[row.unit_code].append((position, row))
            by_unit = self.shared[key] = dict(by_unit)
        found = [item for code in visible for item in by_unit.get(code, ())]
        return [row for _position, row in sorted(found, key=lambda item: item[0])]

    def communes_under(self, kind: str, code: str) -> list[str]:
        """The scored communes whose parent (kind "parent") or province (kind "province") is ``code``, in
        the order of ``scores``; indexed once a night."""
        key = ("communes_under", kind)
        index = self.shared.get(key)
        if index is None:
            index = defaultdict(list)
            for unit_code in self.scores:
                unit = self.catalogue.get(unit_code)
                if unit is not None and unit.kind == "COMMUNE":
                    index[unit.parent if kind == "parent" else self.province_of(unit_code)].append(unit_code)
            index = self.shared[key] = dict(index)
        return index.get(code, [])

    def province_of(self, unit_code: str) -> str | None:
        """The province a unit belongs to (a province is its own), from the catalogue."""
        provinces = self.shared.get("province_of")
        if provinces is None:
            provinces = self.shared["province_of"] = {
                code: code if unit.kind == "PROVINCE" else
                next((a for a in ancestors(code, self.catalogue) if self.catalogue[a].kind == "PROVINCE"), None)
                for code, unit in self.catalogue.items()}
        return provinces.get(unit_code)


def format_rate(rate: Decimal | None) -> str:
    """Vietnamese number style: decimal comma, two decimals ("72,50"); a dash when there is no rate."""
    return text.number(rate)


def format_day(day: date) -> str:
    return text.day(day)


# ----------------------------------------------------------------------------- reading the marts

def build_daily_report(business_date: date, url: str | None = None) -> DailyReport:
    with connect(url) as conn:
        # Labels and order come from the rule registry: no indicator name is written twice.
        indicators = [IndicatorColumn(code, name, name_en or name) for code, name, name_en, _group in conn.execute(
            """
            select distinct r.indicator_code, r.name_vi, r.name_en, r.indicator_group
            from reference.rule_registry as r
            join marts.fct_indicator_values as v
              on v.indicator_code = r.indicator_code and v.rule_version = r.rule_version
            where v.business_date = %s and v.period_type = 'day' and v.indicator_code = any(%s)
            order by r.indicator_group desc, r.indicator_code
            """, (business_date, list(HEADLINE_INDICATORS))).fetchall()]
        indicators = [IndicatorColumn(code, name, name_en or name) for code, name, name_en in conn.execute(
            """select measure_code, name_vi, name_en from reference.report_day_measures
               where measure_code = any(%s) order by measure_code""", (list(DAY_MEASURES),)).fetchall()] + indicators
        rows = conn.execute(
            """
            select u.unit_code, u.unit_name, v.indicator_code, v.numerator, v.denominator, v.rate
            from marts.fct_indicator_values as v
            join marts.dim_units as u using (unit_code)
            where v.business_date = %s and v.period_type = 'day' and v.indicator_code = any(%s)
              and u.is_evaluated
            union all
            select u.unit_code, u.unit_name, m.measure_code, m.numerator, m.denominator, m.rate
            from marts.mart_day_on_time as m
            join marts.dim_units as u using (unit_code)
            where m.business_date = %s and m.measure_code = any(%s) and u.is_evaluated
            order by 2, 1
            """, (business_date, list(HEADLINE_INDICATORS), business_date, list(DAY_MEASURES))).fetchall()
        catalogue = {code: Unit(code, name, kind, parent, evaluated) for code, name, kind, parent, evaluated in
                     conn.execute("select unit_code, unit_name, unit_kind, parent_unit_code, is_evaluated "
                                  "from marts.dim_units order by unit_code").fetchall()}
        score_rows = conn.execute(
            """
            select s.unit_code, s.ckmb_score, s.tdgq_score, s.online_score, s.tttt_score, s.mdsh_score, s.mdhl_score,
                   s.total_score, s.class_code, s.class_name_vi, c.name_en, s.rank_in_peer_set, s.peer_count,
                   s.rank_in_kind, s.kind_peer_count, s.rank_in_district, s.district_peer_count,
                   s.change_since_previous_day, s.rule_version
            from marts.fct_unit_scores as s
            left join reference.score_classes as c using (class_code)
            where s.business_date = %s and s.period_type = 'year'
            """, (business_date,)).fetchall()
        scores, rule_version = {}, None
        for r in score_rows:
            scores[r[0]] = Score(r[0], dict(zip(text.GROUPS, r[1:7])), r[7], r[8], r[9], r[10] or r[9], *r[11:18])
            rule_version = r[18]
        trends: dict[str, list[tuple[date, Decimal]]] = defaultdict(list)
        for unit_code, day, total in conn.execute(
                """select unit_code, business_date, total_score from marts.fct_unit_scores
                   where period_type = 'year' and business_date between %s and %s
                   order by unit_code, business_date""",
                (business_date - timedelta(days=TREND_DAYS - 1), business_date)).fetchall():
            trends[unit_code].append((day, total))
        group_max = dict(conn.execute(
            """select indicator_group, sum(max_points) from reference.rule_registry
               where rule_version = %s and is_scored group by indicator_group""", (rule_version,)).fetchall())
        targets = [TargetStatus(*r) for r in conn.execute(
            """
            select target_id, plan_id, unit_code, unit_name, indicator_code, indicator_name_vi, unit_of_measure,
                   comparator, measure_period, target_value, actual_value, judged_value, numerator, denominator,
                   gap_points, gap_items, deadline, is_final, status_code, status_vi
            from marts.mart_target_attainment where business_date = %s
            order by unit_code, target_id
            """, (business_date,)).fetchall()]
        peer_lists = [PeerList(*r) for r in conn.execute(
            """select lists.list_code, lists.peer_set_unit_code, lists.member_unit_codes, lists.sentence_vi,
                      definition.comparator, definition.indicator_code, definition.threshold
               from marts.mart_peer_lists as lists join reference.peer_lists as definition using (list_code)
               where lists.business_date = %s order by lists.peer_set_unit_code, lists.list_code""",
            (business_date,)).fetchall()]
        calendar_day, day_off = read_calendar_day(conn, business_date)
        change_reasons = read_change_reasons(conn, business_date)
    units: dict[str, UnitRow] = {}
    for unit_code, unit_name, code, numerator, denominator, rate in rows:
        unit = units.setdefault(unit_code, UnitRow(unit_code, unit_name, {}))
        unit.values[code] = IndicatorValue(numerator, denominator, rate)
    report = DailyReport(business_date, indicators, list(units.values()), catalogue, scores, dict(trends),
                         group_max, targets, peer_lists, calendar_day=calendar_day, day_off_reasons=day_off,
                         change_reasons=change_reasons)
    # Figures earlier e-mails showed that tonight's publication restated (docs/publication.md).
    restatements.attach(report, HEADLINE_INDICATORS, url)
    return report


def read_calendar_day(conn, business_date: date) -> tuple[CalendarDay | None, dict[str, str | None]]:
    """The business date in marts.dim_calendar and, in each language, why it is not a working day (None
    on a working day): the weekend and holiday policy of docs/calendar.md."""
    row = conn.execute(
        """select calendar_date, is_weekend, is_public_holiday, holiday_name_vi, is_compensatory_day_off,
                  is_makeup_working_day, is_working_day, working_day_number, holiday_name_en, decision_reason_vi
           from marts.dim_calendar where calendar_date = %s""", (business_date,)).fetchone()
    if row is None:
        return None, {}
    day = CalendarDay(*row[:8])
    return day, {language: day_off_reason(day, language, row[8], row[9]) for language in ("vi", "en")}


def read_change_reasons(conn, business_date: date) -> dict[str, ChangeReason]:
    """Per unit, the scored indicator whose score (year to date) moved most since the previous day, with
    how many items its numerator and denominator gained: the line saying why the total changed. On
    1 January the year starts again: no line."""
    if business_date.month == 1 and business_date.day == 1:
        return {}
    rows = conn.execute(
        """
        select distinct on (today.unit_code)
               today.unit_code, scores.change_since_previous_day, today.indicator_code, rules.name_vi,
               rules.name_en, rules.denominator_definition,
               today.score - coalesce(before.score, 0), today.numerator - coalesce(before.numerator, 0),
               today.denominator - coalesce(before.denominator, 0), before.rate, today.rate
        from marts.fct_indicator_values as today
        join marts.fct_unit_scores as scores
          on scores.unit_code = today.unit_code and scores.business_date = today.business_date
         and scores.period_type = 'year'
        join reference.rule_registry as rules
          on rules.indicator_code = today.indicator_code and rules.rule_version = today.rule_version
        left join marts.fct_indicator_values as before
          on before.unit_code = today.unit_code and before.indicator_code = today.indicator_code
         and before.period_type = 'year' and before.business_date = today.business_date - 1
        where today.business_date = %s and today.period_type = 'year' and today.is_scored
          and today.score is distinct from before.score
        order by today.unit_code, abs(today.score - coalesce(before.score, 0)) desc nulls last, today.indicator_code
        """, (business_date,)).fetchall()
    return {r[0]: ChangeReason(r[0], r[1], r[2], r[3], r[4] or r[3], _item_kind(r[5]), r[6], int(r[7] or 0),
                               int(r[8] or 0), r[9], r[10]) for r in rows if r[6] is not None}


def _item_kind(denominator_definition: str | None) -> str:
    """What an indicator counts, from its denominator's definition in the rule registry."""
    words = (denominator_definition or "").lower()
    if words.startswith("procedures") or words.startswith("public procedures"):
        return "procedure"
    if words.startswith("pakn"):
        return "feedback"
    return "dossier"


def add_technical_facts(report: DailyReport, url: str | None = None) -> None:
    """What the data team wants beside the figures: the day's loads, quarantine and gate runs."""
    with connect(url) as conn:
        loads = conn.execute(
            # An entity fetched by province slices (chiso.ingest.sources) is one line, its slices summed.
            """select entity, sum(rows_in_manifest)::int, sum(rows_loaded)::int, sum(rows_quarantined)::int
               from raw.load_ledger where business_date = %s and status = 'loaded'
               group by entity order by entity""", (report.business_date,)).fetchall()
        gates = conn.execute(
            """select suite, success, jsonb_array_length(failed_expectations), run_at from ops.gate_runs
               where business_date = %s order by gate_run_id desc limit 3""", (report.business_date,)).fetchall()
    report.technical = {"loads": loads, "gates": gates}


# ----------------------------------------------------------------------------- one recipient's view

@dataclass
class GroupLine:
    code: str
    name: str
    score: Decimal
    max_points: Decimal
    percent: Decimal
    target: Decimal | None
    target_status: str | None


def peer_units(report: DailyReport, recipient: Recipient, focus: str | None) -> tuple[list[str], str]:
    """The units of the peers' table and the rank to show ('district', 'kind' or 'province').

    The ranks come from fct_unit_scores, which ranks a unit inside its province (and, until 30/6/2025,
    a commune inside its district), and a province among the provinces: a table never mixes two
    provinces' ranks. A scope spanning several provinces (the data team) sees the provinces."""
    catalogue, scored = report.catalogue, report.scores
    scope = recipient.scope.kind
    focus_unit = catalogue.get(focus) if focus else None
    if scope == "commune" and focus_unit is not None:
        parent = catalogue.get(focus_unit.parent) if focus_unit.parent else None
        if parent is not None and parent.kind == "DISTRICT":
            return report.communes_under("parent", parent.code), "district"
        return report.communes_under("province", report.province_of(focus)), "kind"
    if scope == "district":
        return report.communes_under("parent", focus), "district"
    visible = report.visible_units(recipient)
    provinces = [u for u in scored if u in visible and catalogue.get(u) and catalogue[u].kind == "PROVINCE"]
    if len(provinces) > 1:
        return provinces, "province"
    return [u for u in scored if u in visible and catalogue.get(u) and catalogue[u].kind != "PROVINCE"], "province"


def _rank(score: Score, by: str) -> tuple[int | None, int | None]:
    if by == "district" and score.rank_district is not None:
        return score.rank_district, score.district_count
    if by == "kind":
        return score.rank_kind, score.kind_count
    return score.rank_province, score.province_count


# ----------------------------------------------------------------------------- cutting long tables

@dataclass(frozen=True)
class Cut:
    """A table shown in part in the body and in full in the attachment."""
    sheet: str          # where the full table is: the workbook's sheet, or the ZIP's CSV file
    shown: int          # rows in the body (summary rows, when summarised)
    total: int          # rows in the attachment
    note: str           # the sentence under the table, in the reader's language
    pooled: bool = False  # the body shows sums over the rows, not rows: every row is left out

    @property
    def left_out(self) -> int:
        return self.total if self.pooled else max(self.total - self.shown, 0)


def cut_ranking(rows: list, focus: str | None) -> tuple[list, dict[int, int]]:
    """The rows of a ranking the reader needs: the top and bottom RANKING_ENDS and the reader's own row
    with RANKING_NEIGHBOURS either side. Returns the rows kept and, by position in them, how many rows
    were skipped just before that row."""
    if len(rows) <= RANKING_ROWS_MAX:
        return rows, {}
    keep = set(range(RANKING_ENDS)) | set(range(len(rows) - RANKING_ENDS, len(rows)))
    own = next((index for index, (code, _score) in enumerate(rows) if code == focus), None)
    if own is not None:
        keep |= set(range(max(own - RANKING_NEIGHBOURS, 0), min(own + RANKING_NEIGHBOURS + 1, len(rows))))
    shown, gaps, previous = [], {}, -1
    for index in sorted(keep):
        if index > previous + 1:
            gaps[len(shown)] = index - previous - 1
        shown.append(rows[index])
        previous = index
    return shown, gaps


def _lowest_first(rows: list[UnitRow], indicator: str) -> list[UnitRow]:
    """Lowest rate first; a unit without dossiers that day (no rate) last."""
    def key(row: UnitRow):
        value = row.values.get(indicator)
        rate = value.rate if value is not None else None
        return (rate is None, rate if rate is not None else 0, row.unit_name, row.unit_code)
    return sorted(rows, key=key)


def pooled_by_province(report: DailyReport, rows: list[UnitRow]) -> list[UnitRow]:
    """The day's figures summed over each province's units (numerators and denominators pooled, as the
    province's own figures are): the data team's summary when its scope spans several provinces."""
    sums: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for row in rows:
        province = report.province_of(row.unit_code)
        for code, value in row.values.items():
            pooled = sums[province][code]
            pooled[0] += value.numerator or 0
            pooled[1] += value.denominator or 0
    summary = []
    for province, values in sums.items():
        unit = report.catalogue.get(province)
        summary.append(UnitRow(province or "", unit.name if unit else "—", {
            code: IndicatorValue(numerator, denominator,
                                 (Decimal(100 * numerator) / denominator).quantize(Decimal("0.01"), ROUND_HALF_UP)
                                 if denominator else None)
            for code, (numerator, denominator) in values.items()}))
    return sorted(summary, key=lambda row: (row.unit_name, row.unit_code))


def attachment_name(report: DailyReport, recipient: Recipient, as_csv: bool) -> str:
    scope = mailbox_for(recipient.scope.unit_code) if recipient.scope.unit_code else "tat-ca-don-vi"
    return f"chiso-{report.business_date:%Y-%m-%d}-{scope}-bang-day-du.{'zip' if as_csv else 'xlsx'}"


def view(report: DailyReport, recipient: Recipient) -> dict:
    """Everything the template needs for one recipient, in the recipient's language."""
    language = recipient.language
    words = text.labels(language)
    catalogue = report.catalogue
    visible = report.visible_units(recipient)
    focus = recipient.focus_unit(catalogue)
    focus_unit = catalogue.get(focus) if focus else None
    score = report.scores.get(focus) if focus else None
    # Group targets of the focus unit (a group target is a % of the group's maximum).
    group_targets = {t.indicator_code: t for t in report.targets if t.unit_code == focus and t.indicator_code in text.GROUPS}
    groups = []
    if score is not None:
        for code in text.GROUPS:
            maximum = Decimal(report.group_max.get(code) or 0)
            value = Decimal(score.groups.get(code) or 0)
            target = group_targets.get(code)
            groups.append(GroupLine(code, text.GROUP_NAMES[language][code], value, maximum,
                                    (100 * value / maximum).quantize(Decimal("0.1")) if maximum else Decimal(0),
                                    target.target_value if target else None,
                                    target.status_code if target else None))
    targets = sorted((t for t in report.targets if t.unit_code in visible),
                     key=lambda t: (t.unit_code != focus, STATUS_ORDER.get(t.status_code, 9), t.unit_name,
                                    t.target_id))
    off_track = [t for t in targets if t.status_code in ("not_met", "at_risk")]
    focus_ancestors = {focus_unit.parent} if focus_unit and focus_unit.parent else set()
    all_lists = distinct_lists([p for p in report.peer_lists
                                if p.peer_set_unit_code in visible or p.peer_set_unit_code in focus_ancestors],
                               [focus, *focus_ancestors])
    peers, rank_by = peer_units(report, recipient, focus)
    all_peer_rows = sorted(((u, report.scores[u]) for u in peers),
                           key=lambda item: (_rank(item[1], rank_by)[0] or 10**6, item[0]))
    all_day_units = [u for u in report.units if u.unit_code in visible]

    shown = cut_long_tables(report, recipient, focus_unit, all_peer_rows, rank_by, all_day_units, all_lists,
                            [t for t in off_track if t.unit_code != (focus or "")])
    return {
        "words": words, "language": language, "recipient": recipient, "business_date": report.business_date,
        "focus": focus_unit, "score": score, "groups": groups, "targets": targets, "off_track": off_track,
        "all_peer_rows": all_peer_rows, "rank_by": rank_by, "catalogue": catalogue, "indicators": report.indicators,
        "status_text": text.STATUS[language], "status_colours": text.STATUS_COLOURS,
        "kinds": text.UNIT_KINDS[language], "technical": report.technical if recipient.is_team else None,
        "rank": _rank, "off_track_max": OFF_TRACK_MAX,
        "footer_lines": text.footer_lines(language, recipient, None),
        "restatements": restatements.for_reader(report, visible, language),
        **shown,   # peer_rows, peer_gaps, day_units, day_pooled, peer_lists, cuts, attachment
        **day_context(report, language, focus, shown["peer_rows"]),
        **off_track_context([t for t in off_track if t.unit_code != (focus or "")], language),
    }


@dataclass(frozen=True)
class OffTrackSummary:
    """One target of the plans across the units off track on it: how many not met, at risk, and the
    dossiers missing in all."""
    indicator_name_vi: str
    measure_period: str
    not_met: int
    at_risk: int
    gap_items: int | None


def off_track_context(others: list[TargetStatus], language: str) -> dict:
    """The other units' off-track targets as the body shows them: all of them when few; else a summary
    per target (indicator and measure) and the OFF_TRACK_MAX with the largest gap in dossiers (not met
    before at risk)."""
    said = text.OFF_TRACK_SUMMARY_WORDS.get(language, text.OFF_TRACK_SUMMARY_WORDS["vi"])
    if len(others) <= OFF_TRACK_MAX:
        return {"off_track_shown": others, "off_track_summary": [], "summary_words": said}
    worst = sorted(others, key=lambda t: (STATUS_ORDER.get(t.status_code, 9), -(t.gap_items or 0), t.unit_name,
                                          t.target_id))[:OFF_TRACK_MAX]
    groups: dict[tuple[str, str], list[TargetStatus]] = defaultdict(list)
    for t in others:
        groups[(t.indicator_name_vi, t.measure_period)].append(t)
    summary = [OffTrackSummary(name, measure, sum(t.status_code == "not_met" for t in rows),
                               sum(t.status_code == "at_risk" for t in rows),
                               sum(t.gap_items for t in rows if t.gap_items is not None)
                               if any(t.gap_items is not None for t in rows) else None)
               for (name, measure), rows in groups.items()]
    summary.sort(key=lambda s: (-(s.not_met + s.at_risk), s.indicator_name_vi))
    return {"off_track_shown": worst, "off_track_summary": summary, "summary_words": said}


def day_context(report: DailyReport, language: str, focus: str | None, peer_rows: list) -> dict:
    """The day itself: the day-off notice (None on a working day) and why each unit's score moved (the
    reader's unit first, then the units of its peers' table as shown)."""
    units = list(dict.fromkeys(([focus] if focus else []) + [code for code, _score in peer_rows]))
    return {"day_off": day_notes.day_off_notice(report, language),
            "change_lines": day_notes.change_lines(report, units, language),
            "day_words": day_notes.words(language)}


def distinct_lists(lists: list[PeerList], own_sets: list) -> list[PeerList]:
    """One bullet per list of units: two plans' lists with the same test (indicator, comparator,
    threshold) naming the same units (a district's communes and its province's, when the province has
    one district) are one list for the reader. The one of the nearest of ``own_sets`` (the reader's
    unit, then its parent) is kept."""
    nearness = {code: index for index, code in enumerate(own_sets)}
    def key(p: PeerList):
        return (p.indicator_code, p.comparator, p.threshold, frozenset(p.member_unit_codes or ()))
    preferred = {}
    for p in sorted(lists, key=lambda p: nearness.get(p.peer_set_unit_code, len(own_sets))):
        if p.indicator_code is None:
            continue
        preferred.setdefault(key(p), p)
    return [p for p in lists if p.indicator_code is None or preferred[key(p)] is p]


def cut_long_tables(report: DailyReport, recipient: Recipient, focus_unit: Unit | None, all_peer_rows: list,
                    rank_by: str, all_day_units: list[UnitRow], all_lists: list[PeerList],
                    off_track_others: list[TargetStatus]) -> dict:
    """What the body shows of each table, the sentence under each cut one saying where the rest is, and
    the attachment holding every row of the cut tables (None when nothing was cut)."""
    language, words, catalogue = recipient.language, text.labels(recipient.language), report.catalogue
    focus = focus_unit.code if focus_unit is not None else None
    focus_ancestors = {focus_unit.parent} if focus_unit and focus_unit.parent else set()
    visible = report.visible_units(recipient)
    # Several provinces in scope: CSV in a ZIP (a workbook of every unit would not fit the cap).
    as_csv = recipient.scope.kind in ("all", "team") and len({report.province_of(u) for u in visible} - {None}) > 1
    file_name = attachment_name(report, recipient, as_csv)
    cuts: dict[str, Cut] = {}

    def count(n: int) -> str:
        return text.count(n, language)

    def note(key: str, table: str, shown: int, total: int, pooled: bool = False, **more) -> Cut:
        sheet = text.CSV_FILES[table] if as_csv else text.SHEETS[language][table]
        where = words["where_csv" if as_csv else "where_sheet"].format(sheet=sheet)
        sentence = words[key].format(shown=count(shown), total=count(total), left=count(total - shown),
                                     file=file_name, where=where, **more)
        return Cut(sheet, shown, total, text.nfc(sentence), pooled)

    ranking_sheet_rows = all_peer_rows
    summarised = (recipient.scope.kind in ("all", "team") and len(all_peer_rows) > 1
                  and all(catalogue[code].kind == "PROVINCE" for code, _ in all_peer_rows))
    if summarised:
        # The sheet has every unit in scope: the provinces among themselves, then each province's units.
        def by_province(item):
            province = catalogue.get(report.province_of(item[0]) or "")
            return (province.name if province else "", _rank(item[1], rank_by)[0] or 10**6, item[0])
        ranking_sheet_rows = all_peer_rows + sorted(
            ((code, s) for code, s in report.scores.items()
             if code in visible and code in catalogue and catalogue[code].kind != "PROVINCE"), key=by_province)
    peer_rows, peer_gaps = cut_ranking(all_peer_rows, focus)
    if summarised:
        cuts["ranking"] = note("cut_ranking_provinces", "ranking", len(peer_rows), len(ranking_sheet_rows))
        if peer_gaps:
            cuts["ranking"] = note("cut_ranking_provinces_ends", "ranking", len(peer_rows),
                                   len(ranking_sheet_rows), provinces=count(len(all_peer_rows)))
    elif peer_gaps:
        near = words["cut_near"].format(unit=text.short_unit_name(focus_unit.name)) \
            if focus_unit is not None and any(code == focus for code, _ in peer_rows) else ""
        cuts["ranking"] = note("cut_ranking", "ranking", len(peer_rows), len(all_peer_rows),
                               ends=count(RANKING_ENDS), near=near)

    day_units, day_pooled = all_day_units, False
    provinces_in_day = {report.province_of(u.unit_code) for u in all_day_units}
    if recipient.scope.kind in ("all", "team") and len(provinces_in_day) > 1:
        day_units, day_pooled = pooled_by_province(report, all_day_units), True
        cuts["day"] = note("cut_day_provinces", "day", len(day_units), len(all_day_units), pooled=True)
    elif len(all_day_units) > DAY_ROWS_MAX and report.indicators:
        first = report.indicators[0]
        own = [u for u in all_day_units if u.unit_code == focus]
        worst = [u for u in _lowest_first(all_day_units, first.code) if u.unit_code != focus][:DAY_ROWS_WORST]
        day_units = own + worst
        indicator_name = first.name_vi if language == "vi" else first.name_en or first.name_vi
        if language == "vi":  # "Tỷ lệ hồ sơ …" inside a sentence
            indicator_name = indicator_name[:1].lower() + indicator_name[1:]
        cuts["day"] = note("cut_day", "day", len(day_units), len(all_day_units),
                           worst=count(len(worst)), indicator=indicator_name)

    lists = all_lists
    if len(all_lists) > LISTS_MAX:
        own_sets = {focus} | focus_ancestors
        lists = sorted(all_lists, key=lambda p: (p.peer_set_unit_code not in own_sets, -len(p.member_unit_codes or []),
                                                 p.peer_set_unit_code, p.list_code))[:LISTS_MAX]
        lists = [p for p in all_lists if p in lists]  # in the marts' order
        cuts["lists"] = note("cut_lists", "lists", len(lists), len(all_lists))

    if len(off_track_others) > OFF_TRACK_MAX:
        cuts["off_track"] = note("cut_off_track", "targets", OFF_TRACK_MAX, len(off_track_others))

    attachment = None
    if cuts:
        ranking = ranking_sheet_rows if "ranking" in cuts else None
        day_rows = all_day_units if "day" in cuts else None
        lists_rows = all_lists if "lists" in cuts else None
        targets_rows = off_track_others if "off_track" in cuts else None
        # Which rows the attachment holds names it for the night (the marts do not change during a
        # send): the ~100 communes of a province skip building its tables again just to find them equal.
        which = ("attachment", language, as_csv, rank_by,
                 None if ranking is None else tuple(code for code, _ in ranking),
                 None if day_rows is None else tuple(u.unit_code for u in day_rows),
                 None if lists_rows is None else tuple((p.peer_set_unit_code, p.list_code) for p in lists_rows),
                 None if targets_rows is None else tuple((t.unit_code, t.target_id) for t in targets_rows))
        data = report.shared.get(which)
        if data is None:
            tables = full_tables(report, language, ranking, rank_by, day_rows, lists_rows, targets_rows)
            data = report.shared[which] = encode_once(report, csv_zip if as_csv else workbook, tables, language)
        attachment = Attachment(file_name, data, "application", "zip") if as_csv else Attachment(file_name, data)

    return {"peer_rows": peer_rows, "peer_gaps": peer_gaps, "day_units": day_units, "day_pooled": day_pooled,
            "peer_lists": lists, "cuts": cuts, "attachment": attachment}


def full_tables(report: DailyReport, language: str, ranking: list | None, rank_by: str,
                day_units: list[UnitRow] | None, lists: list[PeerList] | None,
                targets: list[TargetStatus] | None) -> list[tuple[str, tuple, list[tuple]]]:
    """The tables the body cut, every row, with the body's columns plus the unit's code and province:
    (table, header, rows) for the attachment."""
    headers = text.SHEET_HEADERS[language]
    kinds = text.UNIT_KINDS[language]
    catalogue = report.catalogue

    def province_name(code: str) -> str:
        province = catalogue.get(report.province_of(code) or "")
        return province.name if province else ""

    tables = []
    if ranking is not None:
        rows = []
        for code, s in ranking:
            unit = catalogue.get(code)
            rank, of = _rank(s, "province" if unit is not None and unit.kind == "PROVINCE" else rank_by)
            rows.append((code, unit.name if unit else code, kinds.get(unit.kind, unit.kind) if unit else "",
                         province_name(code), rank, of, s.total, s.class_vi if language == "vi" else s.class_en,
                         s.change))
        tables.append(("ranking", headers["ranking"], rows))
    if day_units is not None:
        header = list(headers["day"])
        for indicator in report.indicators:
            name = indicator.name_vi if language == "vi" else indicator.name_en or indicator.name_vi
            header += [f"{name} (%)", f"{name}: {headers['numerator']}", f"{name}: {headers['denominator']}"]
        rows = []
        for row in day_units:
            cells = [row.unit_code, row.unit_name, province_name(row.unit_code)]
            for indicator in report.indicators:
                value = row.values.get(indicator.code)
                cells += [value.rate, value.numerator, value.denominator] if value else [None, None, None]
            rows.append(tuple(cells))
        tables.append(("day", tuple(header), rows))
    if lists is not None:
        tables.append(("lists", headers["lists"], [
            (p.peer_set_unit_code, catalogue[p.peer_set_unit_code].name if p.peer_set_unit_code in catalogue else "",
             p.list_code, len(p.member_unit_codes or []), p.sentence_vi) for p in lists]))
    if targets is not None:
        tables.append(("targets", headers["targets"], [
            (t.unit_code, t.unit_name, t.plan_id, t.target_id, t.indicator_name_vi, t.measure_period, t.comparator,
             t.target_value, t.judged_value, text.STATUS[language].get(t.status_code, t.status_vi), t.gap_items,
             t.deadline) for t in targets]))
    return [(table, tuple(text.nfc(str(cell)) for cell in header), rows) for table, header, rows in tables]


def encode_once(report: DailyReport, encode, tables: list[tuple[str, tuple, list[tuple]]], language: str) -> bytes:
    """``encode(tables, language)`` once per distinct content for the night: the ~100 communes of a
    province attach the same ranking, so it is built once, not 100 times."""
    key = (encode.__name__, language, tuple((table, header, tuple(rows)) for table, header, rows in tables))
    if key not in report.shared:
        report.shared[key] = encode(tables, language)
    return report.shared[key]


def workbook(tables: list[tuple[str, tuple, list[tuple]]], language: str) -> bytes:
    """An Excel workbook, one sheet per table; numbers stay numbers (Excel shows them in the reader's
    locale, 70,48 in Vietnamese)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    for table, header, rows in tables:
        sheet = book.create_sheet(text.SHEETS[language][table])
        sheet.append(list(header))
        for row in rows:
            sheet.append([text.nfc(cell) if isinstance(cell, str) else cell for cell in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def csv_zip(tables: list[tuple[str, tuple, list[tuple]]], language: str) -> bytes:
    """CSV files (UTF-8 with a byte-order mark, so Excel reads the Vietnamese; numbers with a decimal
    point, for machines) in a ZIP, one per table."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for table, header, rows in tables:
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\r\n")
            writer.writerow(header)
            writer.writerows(tuple("" if cell is None else text.nfc(cell) if isinstance(cell, str) else cell
                                   for cell in row) for row in rows)
            archive.writestr(text.CSV_FILES[table], "\ufeff" + out.getvalue())
    return buffer.getvalue()


# ----------------------------------------------------------------------------- rendering

@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """One environment per process: Jinja compiles each template once and keeps it (a new environment
    per e-mail compiled the templates again for every recipient, 50 ms of each e-mail)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["rate"] = text.number
    env.filters["num"] = text.number
    env.filters["signed"] = text.signed
    env.filters["day"] = text.day
    env.filters["short"] = text.short_unit_name
    env.filters["grouped"] = text.count
    env.globals["measure_name"] = text.measure_name
    return env


def render_subject(report: DailyReport, language: str = "vi") -> str:
    return text.nfc(text.labels(language)["daily_subject"].format(day=text.day(report.business_date)))


def peer_average(report: DailyReport, peers: list[str], leave_out: str) -> list[tuple[date, Decimal]]:
    """The average total per day of ``peers`` without ``leave_out`` (the reader). The ~100 communes of a
    province share one peer set: its sums per day are added up once a night, and each reader's own line
    is taken out of them (exact: the totals are decimals)."""
    key = ("peer_sums", frozenset(peers))
    sums = report.shared.get(key)
    if sums is None:
        sums = defaultdict(lambda: [Decimal(0), 0])
        for unit in peers:
            for day, total in report.trends.get(unit, []):
                sums[day][0] += total
                sums[day][1] += 1
        sums = report.shared[key] = dict(sums)
    own = dict(report.trends.get(leave_out, [])) if leave_out in peers else {}
    average = []
    for day, (total, count) in sorted(sums.items()):
        if day in own:
            total, count = total - own[day], count - 1
        if count:
            average.append((day, total / count))
    return average


def draw_charts(report: DailyReport, context: dict) -> dict[str, InlineImage]:
    words = context["words"]
    focus = context["focus"]
    images = {}
    if focus is not None and report.trends.get(focus.code):
        # every peer, not only the rows shown, the reader left out
        average = peer_average(report, [u for u, _ in context["all_peer_rows"]], focus.code)
        average_label = "trung bình các đơn vị so sánh" if context["language"] == "vi" else "peers' average"
        images["trend"] = InlineImage(f"trend.{focus.code}@chiso", charts.score_trend(
            report.trends[focus.code], average or None, text.short_unit_name(focus.name), average_label,
            words["points"]), f"diem-tong-{focus.code}.png")
    if context["groups"]:
        images["groups"] = InlineImage(f"groups.{focus.code}@chiso", charts.groups_against_targets(
            [(g.name, float(g.percent), float(g.target) if g.target is not None else None) for g in context["groups"]],
            words["target"]), f"nhom-chi-so-{focus.code}.png")
    return images


def render_html(report: DailyReport, recipient: Recipient, images: dict[str, InlineImage] | None = None,
                context: dict | None = None, image_src=None) -> str:
    """The e-mail's HTML. ``image_src(image)`` gives each chart's src (default ``cid:…``; a file path
    when rendering for a browser)."""
    context = context or view(report, recipient)
    src = image_src or (lambda image: f"cid:{image.cid}")
    html = environment().get_template("daily_report.html.j2").render(
        **context, images={key: src(image) for key, image in (images or {}).items()})
    return text.nfc(html)


def render_text(report: DailyReport, context: dict) -> str:
    words, score, focus = context["words"], context["score"], context["focus"]
    lines = [words["daily_title"], f"{words['day']} {text.day(report.business_date)}", ""]
    if focus is not None and score is not None:
        lines.append(f"{focus.name}: {words['total']} {text.number(score.total)}{words['of_100']} "
                     f"({text.signed(score.change)}), {words['class']}: "
                     f"{score.class_vi if context['language'] == 'vi' else score.class_en}")
    for target in context["off_track"][:10]:
        lines.append(f"- {target.unit_name}: {target.indicator_name_vi} {text.number(target.judged_value)} / "
                     f"{text.number(target.target_value)} ({context['status_text'].get(target.status_code)})")
    lines += restatements.text_lines(context["restatements"])
    if context["attachment"] is not None:
        lines += ["", words["full_tables_attached"].format(file=context["attachment"].filename)]
    lines += ["", *context["footer_lines"]]
    return text.nfc("\n".join(lines))


def render_daily(report: DailyReport, recipient: Recipient, sender: str | None = None) -> RenderedReport:
    """The recipient's e-mail; ``sender`` (the From address) is named in the footer."""
    context = view(report, recipient)
    context["footer_lines"] = text.footer_lines(recipient.language, recipient, sender)
    images = draw_charts(report, context)
    return RenderedReport(subject=render_subject(report, recipient.language),
                          html=render_html(report, recipient, images, context),
                          text=render_text(report, context), images=list(images.values()),
                          attachments=[context["attachment"]] if context["attachment"] is not None else [])
