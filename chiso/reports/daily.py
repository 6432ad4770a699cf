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
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import jinja2

from chiso.reports import charts, text
from chiso.reports.mail import InlineImage, RenderedReport
from chiso.reports.recipients import Recipient, Unit
from chiso.warehouse import connect

REPORT_CODE = "daily_indicators"
# The day table shows the day's figures of these indicators for the units the 766 index scores.
HEADLINE_INDICATORS = ("ON_TIME", "ONLINE_DOSSIER_SHARE")
TEMPLATES = Path(__file__).parent / "templates"
TREND_DAYS = 30
STATUS_ORDER = {"not_met": 0, "at_risk": 1, "no_data": 2, "met": 3}


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

    def for_recipient(self, recipient: Recipient) -> DailyReport:
        """The same report restricted to the units the recipient sees (the day table and targets)."""
        visible = recipient.units(self.catalogue) if self.catalogue else None
        keep = (lambda code: recipient.sees(code)) if visible is None else (lambda code: code in visible)
        return DailyReport(self.business_date, self.indicators, [u for u in self.units if keep(u.unit_code)],
                           self.catalogue, self.scores, self.trends, self.group_max,
                           [t for t in self.targets if keep(t.unit_code)], self.peer_lists, self.technical)


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
        rows = conn.execute(
            """
            select u.unit_code, u.unit_name, v.indicator_code, v.numerator, v.denominator, v.rate
            from marts.fct_indicator_values as v
            join marts.dim_units as u using (unit_code)
            where v.business_date = %s and v.period_type = 'day' and v.indicator_code = any(%s)
              and u.is_evaluated
            order by u.unit_name, u.unit_code
            """, (business_date, list(HEADLINE_INDICATORS))).fetchall()
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
            """select list_code, peer_set_unit_code, member_unit_codes, sentence_vi from marts.mart_peer_lists
               where business_date = %s order by peer_set_unit_code, list_code""", (business_date,)).fetchall()]
    units: dict[str, UnitRow] = {}
    for unit_code, unit_name, code, numerator, denominator, rate in rows:
        unit = units.setdefault(unit_code, UnitRow(unit_code, unit_name, {}))
        unit.values[code] = IndicatorValue(numerator, denominator, rate)
    return DailyReport(business_date, indicators, list(units.values()), catalogue, scores, dict(trends),
                       group_max, targets, peer_lists)


def add_technical_facts(report: DailyReport, url: str | None = None) -> None:
    """What the data team wants beside the figures: the day's loads, quarantine and gate runs."""
    with connect(url) as conn:
        loads = conn.execute(
            """select entity, rows_in_manifest, rows_loaded, rows_quarantined from raw.load_ledger
               where business_date = %s and status = 'loaded' order by entity""", (report.business_date,)).fetchall()
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
    """The units of the peers' table and the rank to show ('district', 'kind' or 'province')."""
    catalogue, scored = report.catalogue, report.scores
    scope = recipient.scope.kind
    focus_unit = catalogue.get(focus) if focus else None
    if scope == "commune" and focus_unit is not None:
        parent = catalogue.get(focus_unit.parent) if focus_unit.parent else None
        if parent is not None and parent.kind == "DISTRICT":
            return [u for u in scored if catalogue.get(u) and catalogue[u].parent == parent.code
                    and catalogue[u].kind == "COMMUNE"], "district"
        return [u for u in scored if catalogue.get(u) and catalogue[u].kind == "COMMUNE"], "kind"
    if scope == "district":
        return [u for u in scored if catalogue.get(u) and catalogue[u].parent == focus
                and catalogue[u].kind == "COMMUNE"], "district"
    visible = recipient.units(catalogue)
    return [u for u in scored if u in visible and catalogue.get(u) and catalogue[u].kind != "PROVINCE"], "province"


def _rank(score: Score, by: str) -> tuple[int | None, int | None]:
    if by == "district" and score.rank_district is not None:
        return score.rank_district, score.district_count
    if by == "kind":
        return score.rank_kind, score.kind_count
    return score.rank_province, score.province_count


def view(report: DailyReport, recipient: Recipient) -> dict:
    """Everything the template needs for one recipient, in the recipient's language."""
    language = recipient.language
    words = text.labels(language)
    catalogue = report.catalogue
    visible = recipient.units(catalogue)
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
    lists = [p for p in report.peer_lists
             if p.peer_set_unit_code in visible or p.peer_set_unit_code in focus_ancestors]
    peers, rank_by = peer_units(report, recipient, focus)
    peer_rows = sorted(((u, report.scores[u]) for u in peers), key=lambda item: (_rank(item[1], rank_by)[0] or 10**6,
                                                                                     item[0]))
    return {
        "words": words, "language": language, "recipient": recipient, "business_date": report.business_date,
        "focus": focus_unit, "score": score, "groups": groups, "targets": targets, "off_track": off_track,
        "peer_lists": lists, "peer_rows": peer_rows, "rank_by": rank_by, "catalogue": catalogue,
        "indicators": report.indicators, "day_units": [u for u in report.units if u.unit_code in visible],
        "status_text": text.STATUS[language], "status_colours": text.STATUS_COLOURS,
        "kinds": text.UNIT_KINDS[language], "technical": report.technical if recipient.is_team else None,
        "rank": _rank,
    }


# ----------------------------------------------------------------------------- rendering

def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["rate"] = text.number
    env.filters["num"] = text.number
    env.filters["signed"] = text.signed
    env.filters["day"] = text.day
    env.filters["short"] = text.short_unit_name
    env.globals["measure_name"] = text.measure_name
    return env


def render_subject(report: DailyReport, language: str = "vi") -> str:
    return text.nfc(text.labels(language)["daily_subject"].format(day=text.day(report.business_date)))


def draw_charts(report: DailyReport, context: dict) -> dict[str, InlineImage]:
    words = context["words"]
    focus = context["focus"]
    images = {}
    if focus is not None and report.trends.get(focus.code):
        peers = [u for u, _ in context["peer_rows"] if u != focus.code]
        by_day: dict[date, list[Decimal]] = defaultdict(list)
        for unit in peers:
            for day, total in report.trends.get(unit, []):
                by_day[day].append(total)
        average = [(day, sum(values) / len(values)) for day, values in sorted(by_day.items())]
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
    lines += ["", words["footer"]]
    return text.nfc("\n".join(lines))


def render_daily(report: DailyReport, recipient: Recipient) -> RenderedReport:
    context = view(report, recipient)
    images = draw_charts(report, context)
    return RenderedReport(subject=render_subject(report, recipient.language),
                          html=render_html(report, recipient, images, context),
                          text=render_text(report, context), images=list(images.values()))
