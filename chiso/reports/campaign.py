"""Periodic and campaign reports: every N days during a campaign, an interim and a final report, each
as an HTML e-mail (with a chart), a printable HTML file and an Excel annex laid out like the plans'
"Phụ lục I" (unit, value at baseline, target, value now, status).

When a report is due comes from the plan: its first day is the earliest ``window_start`` of its
targets in ``reference.target_registry``; its rhythm (every 10 days, interim on day 30 or 50, final
on day 60 or 100, and the plan's own words for it) is a row of ``reference.target_plans`` (seed
``targets/target_plans.csv``): a new campaign needs rows in the seeds, no code. A report is due on the business
date that closes its period (day 10, 20, … of the campaign) and describes the campaign as of that
date; dags/chiso_periodic_reports.py sends it the next morning, once that date's nightly report is published.

A report the plan wants "trước ngày X" has a row in ``reference.report_deadlines`` (seed
``targets/report_deadlines.csv``) with its due date and its data cut-off: the report is then due on the
cut-off (the last complete day before a delivery on X - 1) instead of on its campaign day, so it reaches
its readers before X. Each periodic report covers the days since the previous report.
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from chiso.reports import charts, text
from chiso.reports.daily import STATUS_ORDER, PeerList, Score, environment
from chiso.reports.mail import Attachment, InlineImage, RenderedReport
from chiso.reports.recipients import Recipient, Unit
from chiso.core.warehouse import connect

REPORT_PREFIX = "campaign"


@dataclass(frozen=True)
class Rhythm:
    every_days: int
    interim_day: int
    final_day: int
    source_vi: str


KINDS = ("periodic", "interim", "final")


@dataclass(frozen=True)
class Deadline:
    """A report the plan wants before a day (reference.report_deadlines)."""
    due_before: date        # the plan's "trước ngày X": delivered on X - 1 at the latest
    data_cutoff: date       # the last day its figures cover (its business date)
    source_vi: str


@dataclass(frozen=True)
class Campaign:
    plan_id: str
    start: date             # day 1: the earliest window_start of the plan's targets
    rhythm: Rhythm
    deadlines: dict[str, Deadline] = field(default_factory=dict)   # by report kind (interim, final)

    def day(self, number: int) -> date:
        """The date of campaign day ``number`` (day 1 is ``start``)."""
        return self.start + timedelta(days=number - 1)

    def schedule(self) -> list["DueReport"]:
        """Every report of the campaign, in the order they are due: the periodic reports every N days,
        the interim and final reports on their days or, when the plan gives a due date, on its data
        cut-off. The interim and final reports take the place of the periodic report of their day."""
        rhythm = self.rhythm
        planned = []
        for kind, number in (("interim", rhythm.interim_day), ("final", rhythm.final_day)):
            deadline = self.deadlines.get(kind)
            planned.append((deadline.data_cutoff if deadline else self.day(number), kind, number, deadline))
        for day_number in range(rhythm.every_days, rhythm.final_day, rhythm.every_days):
            if day_number != rhythm.interim_day:
                planned.append((self.day(day_number), "periodic", day_number // rhythm.every_days, None))
        reports, previous = [], None
        for as_of, kind, number, deadline in sorted(planned, key=lambda p: (p[0], KINDS.index(p[1]))):
            period_start = self.start if kind != "periodic" or previous is None else previous + timedelta(days=1)
            reports.append(DueReport(self.plan_id, rhythm, kind, number, self.start, period_start, as_of,
                                     (as_of - self.start).days + 1, rhythm.final_day,
                                     deadline.due_before if deadline else None))
            previous = as_of if kind != "final" else previous
        return reports


@dataclass(frozen=True)
class DueReport:
    plan_id: str
    rhythm: Rhythm
    kind: str               # periodic, interim or final
    number: int             # the periodic report's number (1, 2, …); the rhythm's day (30, 60 …) otherwise
    campaign_start: date
    period_start: date      # first day the report covers
    as_of: date             # the business date it describes: its data cut-off (and the ledger's period)
    day_number: int         # day of the campaign of as_of
    length: int             # the campaign's days
    due_before: date | None = None   # the plan's "trước ngày X", when it gives one

    @property
    def delivered_on(self) -> date:
        """The morning it is sent: chiso_periodic_reports runs at 07:00 about the day before."""
        return self.as_of + timedelta(days=1)

    @property
    def report_code(self) -> str:
        return f"{REPORT_PREFIX}/{self.plan_id}/{self.kind}"

    def title(self, language: str = "vi") -> str:
        words = text.labels(language)
        if self.kind == "periodic":
            return words["periodic"].format(every=self.rhythm.every_days, number=self.number)
        return words[self.kind].format(days=self.number)

    def period_label(self, language: str = "vi") -> str:
        return text.labels(language)["campaign_period"].format(
            start=text.day(self.period_start), end=text.day(self.as_of), day=self.day_number, length=self.length)

    def deadline_label(self, language: str = "vi") -> str | None:
        """'Hạn báo cáo: trước ngày 10/05/2024; số liệu đến hết ngày 08/05/2024', for a report with a due date."""
        if self.due_before is None:
            return None
        return text.labels(language)["report_deadline"].format(due=text.day(self.due_before),
                                                                cutoff=text.day(self.as_of))

    def file_stem(self) -> str:
        return f"bao-cao-{self.plan_id.lower().replace('_', '-')}-{self.kind}-{self.as_of:%Y%m%d}"


def campaigns(url: str | None = None) -> dict[str, Campaign]:
    """The campaign plans (those with a reporting rhythm in reference.target_plans) that have targets,
    with the due dates of their reports (reference.report_deadlines)."""
    with connect(url) as conn:
        rows = conn.execute(
            "select plan.plan_id, min(target.window_start), plan.report_every_days, plan.interim_report_day, "
            "plan.final_report_day, plan.reporting_rhythm_vi "
            "from reference.target_plans as plan join reference.target_registry as target using (plan_id) "
            "where plan.report_every_days is not null group by 1, 3, 4, 5, 6").fetchall()
        deadlines = defaultdict(dict)
        for plan_id, kind, due_before, cutoff, source in conn.execute(
                "select plan_id, report_kind, due_before, data_cutoff, source_vi from reference.report_deadlines"):
            deadlines[plan_id][kind] = Deadline(due_before, cutoff, source)
    return {plan_id: Campaign(plan_id, start, Rhythm(every, interim, final, words), dict(deadlines[plan_id]))
            for plan_id, start, every, interim, final, words in rows}


def campaigns_from_seeds(seeds=None) -> dict[str, Campaign]:
    """:func:`campaigns` read from the seed files rather than the warehouse (``python -m chiso.reports
    schedule``, and the tests that need no warehouse)."""
    from chiso.transform import targets

    seeds = seeds or targets.SEEDS
    starts = targets.campaign_starts(targets.read_csv(seeds / "targets" / "target_registry.csv"))
    deadlines = defaultdict(dict)
    for _, row in targets.read_csv(seeds / "targets" / "report_deadlines.csv"):
        deadlines[row["plan_id"]][row["report_kind"]] = Deadline(date.fromisoformat(row["due_before"]),
                                                                 date.fromisoformat(row["data_cutoff"]), row["source_vi"])
    plans = {}
    for _, row in targets.read_csv(seeds / "targets" / "target_plans.csv"):
        if row.get("report_every_days") and row["plan_id"] in starts:
            rhythm = Rhythm(int(row["report_every_days"]), int(row["interim_report_day"]), int(row["final_report_day"]),
                            row["reporting_rhythm_vi"])
            plans[row["plan_id"]] = Campaign(row["plan_id"], starts[row["plan_id"]], rhythm,
                                             dict(deadlines[row["plan_id"]]))
    return plans


def due_on(business_date: date, plans: dict[str, Campaign]) -> list[DueReport]:
    """The campaign reports whose data cut-off is ``business_date`` (sent the next morning)."""
    return [report for _, plan in sorted(plans.items()) for report in plan.schedule() if report.as_of == business_date]


def due_reports(business_date: date, url: str | None = None) -> list[DueReport]:
    return due_on(business_date, campaigns(url))


def parse_report_code(report_code: str, as_of: date, url: str | None = None) -> DueReport:
    """The due report behind a ledger entry (for re-sending): 'campaign/<plan>/<kind>' and its date."""
    prefix, plan_id, kind = (report_code.split("/") + ["", ""])[:3]
    if prefix != REPORT_PREFIX or not plan_id or kind not in KINDS:
        raise ValueError(f"{report_code!r} is not a campaign report code (campaign/<plan>/<periodic|interim|final>)")
    for due in due_reports(as_of, url):
        if due.plan_id == plan_id and due.kind == kind:
            return due
    raise ValueError(f"No {kind} report of {plan_id} is due on {as_of}")


# ----------------------------------------------------------------------------- the report's data

@dataclass(frozen=True)
class AnnexRow:
    target_id: str
    unit_code: str
    unit_name: str
    indicator_code: str
    indicator_name_vi: str
    unit_of_measure: str
    comparator: str
    target_kind: str
    measure_period: str
    target_value: Decimal
    target_rule_vi: str | None
    baseline_date: date | None
    baseline_value: Decimal | None
    baseline_from_data: Decimal | None
    numerator: Decimal | None
    denominator: Decimal | None
    actual_value: Decimal | None
    judged_on: date | None
    judged_value: Decimal | None
    is_final: bool
    gap_points: Decimal | None
    gap_items: int | None
    deadline: date | None
    status_code: str
    status_vi: str

    @property
    def baseline(self) -> Decimal | None:
        """The plan's stated baseline, else the one measured on the baseline day."""
        return self.baseline_value if self.baseline_value is not None else self.baseline_from_data


@dataclass
class IndicatorBlock:
    indicator_code: str
    name_vi: str
    measure_period: str
    unit_of_measure: str
    baseline_date: date | None
    rows: list[AnnexRow]


@dataclass(frozen=True)
class HandlingRow:
    """One official's (internal.mart_handler_attainment) or one field's (marts.mart_field_attainment)
    dossiers in the window of the plan's processing-time target, as of the report's day."""
    unit_code: str
    unit_name: str
    name: str               # the official (NguoiXuLy), or the field's name
    detail: str | None      # the official's fields, or the field's code
    target_id: str
    indicator_code: str
    window_start: date
    handled: int
    ended: int
    on_time: int
    late: int
    open_overdue: int
    rate: Decimal | None
    target_value: Decimal
    is_met: bool | None
    status_vi: str

    @property
    def status_code(self) -> str:
        return "no_data" if self.is_met is None else ("met" if self.is_met else "not_met")


@dataclass(frozen=True)
class WhoDidWhat:
    """The section „Kết quả theo cán bộ, lĩnh vực“ as one recipient sees it (its units only)."""
    start: date
    end: date
    target_name: str
    target_text: str        # the targets' values, Vietnamese style ("100")
    handlers: list[HandlingRow]   # the recipient's units, missed first (lowest rate first), then met
    fields: list[HandlingRow]

    @property
    def missed(self) -> list[HandlingRow]:
        return [h for h in self.handlers if h.is_met is False]

    @property
    def met(self) -> list[HandlingRow]:
        return [h for h in self.handlers if h.is_met]

    def counts(self) -> dict[str, int]:
        return {"met": len(self.met), "not_met": len(self.missed), "total": len(self.handlers),
                "fields_met": sum(1 for f in self.fields if f.is_met), "fields": len(self.fields)}


@dataclass
class CampaignReport:
    due: DueReport
    document_vi: str
    issuer_vi: str
    rows: list[AnnexRow]
    catalogue: dict[str, Unit]
    scores: dict[str, Score] = field(default_factory=dict)
    peer_lists: list[PeerList] = field(default_factory=list)
    handlers: list[HandlingRow] = field(default_factory=list)
    fields: list[HandlingRow] = field(default_factory=list)
    plan_roles: frozenset[str] = frozenset()   # role_ids the plan names (reference.plan_recipients)

    @property
    def units(self) -> list[str]:
        return sorted({r.unit_code for r in self.rows})

    def is_internal(self, recipient: Recipient | None) -> bool:
        """A recipient the plan itself names (one of its roles): officials' names go to them only."""
        return recipient is not None and bool(set(recipient.roles) & self.plan_roles)

    def who_for(self, recipient: Recipient | None) -> WhoDidWhat | None:
        """Who did what for the plan's internal recipients, restricted to the units they see; None for
        anyone else (and when the plan has no processing-time target)."""
        if not self.is_internal(recipient) or not (self.handlers or self.fields):
            return None
        seen = recipient.units(self.catalogue)
        order = {code: index for index, code in enumerate(sorted(seen))}

        def mine(rows: list[HandlingRow]) -> list[HandlingRow]:
            return [r for r in rows if r.unit_code in seen]

        handlers = sorted(mine(self.handlers), key=lambda r: (r.is_met is not False, r.is_met is None,
                                                              r.rate if r.rate is not None else Decimal(0),
                                                              order[r.unit_code], r.name))
        fields = sorted(mine(self.fields), key=lambda r: (order[r.unit_code], r.name))
        if not handlers and not fields:
            return None
        rows = handlers + fields
        names = {r.target_id: r.indicator_name_vi for r in self.rows}
        target_ids = sorted({r.target_id for r in rows})
        return WhoDidWhat(min(r.window_start for r in rows), self.due.as_of,
                          names.get(target_ids[0], rows[0].indicator_code),
                          "/".join(sorted({text.number(r.target_value, 0) for r in rows})), handlers, fields)

    def blocks(self) -> list[IndicatorBlock]:
        """One block per (indicator, measure): the baseline-plus-points targets first (the plan's annex
        proper), then the others, each block's units in the registry's order of unit codes."""
        grouped: dict[tuple[str, str], list[AnnexRow]] = defaultdict(list)
        for row in self.rows:
            grouped[(row.indicator_code, row.measure_period)].append(row)
        blocks = [IndicatorBlock(code, rows[0].indicator_name_vi, measure, rows[0].unit_of_measure,
                                 next((r.baseline_date for r in rows if r.baseline_date), None),
                                 sorted(rows, key=lambda r: (self.catalogue.get(r.unit_code, Unit(r.unit_code, "", "")).kind
                                                             != "DISTRICT", r.unit_code)))
                  for (code, measure), rows in grouped.items()]
        return sorted(blocks, key=lambda b: (b.baseline_date is None, b.indicator_code, b.measure_period))

    def counts(self) -> dict[str, int]:
        counts = {status: 0 for status in STATUS_ORDER}
        for row in self.rows:
            counts[row.status_code] = counts.get(row.status_code, 0) + 1
        return counts


def build_campaign_report(due: DueReport, url: str | None = None) -> CampaignReport:
    with connect(url) as conn:
        plan = conn.execute("select source_document_vi, issuer_vi from reference.target_plans where plan_id = %s",
                            (due.plan_id,)).fetchone()
        if plan is None:
            raise ValueError(f"Plan {due.plan_id} is not in reference.target_plans")
        rows = [AnnexRow(*r) for r in conn.execute(
            """
            select target_id, unit_code, unit_name, indicator_code, indicator_name_vi, unit_of_measure, comparator,
                   target_kind, measure_period, target_value, target_rule_vi, baseline_date, baseline_value,
                   baseline_from_data, numerator, denominator, actual_value, judged_on, judged_value, is_final,
                   gap_points, gap_items, deadline, status_code, status_vi
            from marts.mart_target_attainment
            where plan_id = %s and business_date = %s
            order by target_id, unit_code
            """, (due.plan_id, due.as_of)).fetchall()]
        if not rows:
            raise ValueError(f"No attainment of {due.plan_id} as of {due.as_of} in marts.mart_target_attainment: "
                             f"build that business date first")
        catalogue = {code: Unit(code, name, kind, parent, evaluated) for code, name, kind, parent, evaluated in
                     conn.execute("select unit_code, unit_name, unit_kind, parent_unit_code, is_evaluated "
                                  "from marts.dim_units").fetchall()}
        units = sorted({r.unit_code for r in rows})
        scores = {}
        for r in conn.execute(
                """
                select s.unit_code, s.ckmb_score, s.tdgq_score, s.online_score, s.tttt_score, s.mdsh_score,
                       s.mdhl_score, s.total_score, s.class_code, s.class_name_vi, c.name_en, s.rank_in_peer_set,
                       s.peer_count, s.rank_in_kind, s.kind_peer_count, s.rank_in_district, s.district_peer_count,
                       s.change_since_previous_day
                from marts.fct_unit_scores as s left join reference.score_classes as c using (class_code)
                where s.business_date = %s and s.period_type = 'year' and s.unit_code = any(%s)
                """, (due.as_of, units)).fetchall():
            scores[r[0]] = Score(r[0], dict(zip(text.GROUPS, r[1:7])), r[7], r[8], r[9], r[10] or r[9], *r[11:18])
        parents = sorted({catalogue[u].parent for u in units if u in catalogue and catalogue[u].parent} | set(units))
        peer_lists = [PeerList(*r) for r in conn.execute(
            """select lists.list_code, lists.peer_set_unit_code, lists.member_unit_codes, lists.sentence_vi,
                      definition.comparator
               from marts.mart_peer_lists as lists join reference.peer_lists as definition using (list_code)
               where lists.business_date = %s and lists.peer_set_unit_code = any(%s)
               order by lists.peer_set_unit_code, lists.list_code""",
            (due.as_of, parents)).fetchall()]
        handlers, fields = _handling_rows(conn, due)
        plan_roles = frozenset(role for (role,) in conn.execute(
            "select role_id from reference.plan_recipients where plan_id = %s", (due.plan_id,)))
    return CampaignReport(due, plan[0], plan[1], rows, catalogue, scores, peer_lists, handlers, fields, plan_roles)


def _handling_rows(conn, due: DueReport) -> tuple[list[HandlingRow], list[HandlingRow]]:
    """The plan's officials (internal.mart_handler_attainment) and fields (marts.mart_field_attainment)
    as of the report's day; none when the warehouse has no internal schema yet."""
    if conn.execute("select to_regclass('internal.mart_handler_attainment')").fetchone()[0] is None:
        return [], []
    columns = ("unit_code, coalesce(unit_name, unit_code), {name}, {detail}, target_id, indicator_code, window_start, "
               "dossiers_handled, dossiers_ended, dossiers_on_time, dossiers_late, dossiers_open_overdue, on_time_rate, "
               "target_value, is_met, status_vi")
    handlers = [HandlingRow(*r) for r in conn.execute(
        f"select {columns.format(name='handler_name', detail='field_names')} from internal.mart_handler_attainment "
        "where plan_id = %s and business_date = %s order by unit_code, handler_name", (due.plan_id, due.as_of))]
    fields = [HandlingRow(*r) for r in conn.execute(
        f"select {columns.format(name='coalesce(field_name, field_code)', detail='field_code')} "
        "from marts.mart_field_attainment where plan_id = %s and business_date = %s order by unit_code, field_code",
        (due.plan_id, due.as_of))]
    return handlers, fields


def recipients_for(report: CampaignReport, recipients: list[Recipient]) -> list[Recipient]:
    """Those who asked for campaign reports and see at least one of the plan's units."""
    plan_units = set(report.units)
    return [r for r in recipients if r.wants("campaign") and r.units(report.catalogue) & plan_units]


# ----------------------------------------------------------------------------- rendering

def _context(report: CampaignReport, recipient: Recipient | None, language: str,
             who: WhoDidWhat | None = None) -> dict:
    words = text.labels(language)
    focus = recipient.scope.unit_code if recipient else None
    ranked = sorted(report.scores.items(),
                    key=lambda item: (item[1].rank_district or item[1].rank_kind or 10**6, item[0]))
    return {
        "words": words, "language": language, "recipient": recipient, "report": report, "due": report.due,
        "title": report.due.title(language), "period": report.due.period_label(language),
        "blocks": report.blocks(), "counts": report.counts(), "focus": focus, "ranked": ranked,
        "status_text": text.STATUS[language], "status_colours": text.STATUS_COLOURS,
        "rhythm": report.due.rhythm, "catalogue": report.catalogue,
        "footer_lines": text.footer_lines(language, recipient, None),
        "who": who,
    }


def chart_rows(block: IndicatorBlock, catalogue: dict[str, Unit]) -> list[AnnexRow]:
    """The rows of a block a chart compares: the units of its most frequent kind (the communes). A
    district's 100% target beside the communes' 5% would squash their bars to nothing; the district
    stays in the table."""
    kinds = [catalogue[r.unit_code].kind if r.unit_code in catalogue else "" for r in block.rows]
    common = max(set(kinds), key=lambda kind: (kinds.count(kind), kind)) if kinds else ""
    return [r for r, kind in zip(block.rows, kinds) if kind == common]


def draw_charts(report: CampaignReport, language: str = "vi") -> dict[str, InlineImage]:
    """One chart per baseline block of percentages: value now against baseline and target, per unit of
    one kind (:func:`chart_rows`)."""
    words = text.labels(language)
    images = {}
    for block in report.blocks():
        compared = chart_rows(block, report.catalogue)
        if block.baseline_date is None or block.unit_of_measure != "percent" or len(compared) < 2:
            continue
        rows = [(text.short_unit_name(r.unit_name), float(r.judged_value) if r.judged_value is not None else None,
                 float(r.target_value), float(r.baseline) if r.baseline is not None else None) for r in compared]
        key = f"{block.indicator_code}.{block.measure_period}"
        images[key] = InlineImage(f"annex.{key}.{report.due.as_of:%Y%m%d}@chiso",
                                  charts.units_against_targets(rows, words["target"], words["baseline_short"],
                                                               words["now"]),
                                  f"{block.indicator_code.lower()}-{block.measure_period}.png")
    return images


def render_html(report: CampaignReport, recipient: Recipient | None, images: dict[str, InlineImage],
                image_src=None, language: str | None = None, printable: bool = False,
                sender: str | None = None, who: WhoDidWhat | None = None) -> str:
    """The report's HTML; ``who`` (:meth:`CampaignReport.who_for`) adds „Kết quả theo cán bộ, lĩnh vực“,
    for the plan's internal recipients only."""
    import base64

    language = language or (recipient.language if recipient else "vi")
    if image_src is None:
        image_src = ((lambda image: "data:image/png;base64," + base64.b64encode(image.data).decode())
                     if printable else (lambda image: f"cid:{image.cid}"))
    context = _context(report, recipient, language, who)
    context["footer_lines"] = text.footer_lines(language, recipient, sender)
    html = environment().get_template("campaign_report.html.j2").render(
        **context, printable=printable,
        images={key: image_src(image) for key, image in images.items()},
        excel_name=f"{report.due.file_stem()}.xlsx")
    return text.nfc(html)


def render_subject(report: CampaignReport, language: str = "vi") -> str:
    words = text.labels(language)
    return text.nfc(words["campaign_subject"].format(title=report.due.title(language), plan=report.document_vi
                                                     .split("(")[0].strip()) + f" – {text.day(report.due.as_of)}")


def render_text(report: CampaignReport, language: str = "vi", recipient: Recipient | None = None,
                sender: str | None = None) -> str:
    words = text.labels(language)
    counts = report.counts()
    who = report.who_for(recipient)
    who_lines = [words["who"] + ": " + words["who_summary"].format(**who.counts()), ""] if who else []
    lines = [report.due.title(language), report.document_vi, report.due.period_label(language),
             *filter(None, [report.due.deadline_label(language)]), "",
             words["summary_text"].format(day=text.day(report.due.as_of), met=counts["met"], at_risk=counts["at_risk"],
                                          not_met=counts["not_met"], no_data=counts["no_data"],
                                          total=len(report.rows), units=len(report.units)), "",
             *who_lines,
             words["excel_attached"].format(name=f"{report.due.file_stem()}.xlsx"), "",
             *text.footer_lines(language, recipient, sender)]
    return text.nfc("\n".join(lines))


def render_campaign(report: CampaignReport, recipient: Recipient, sender: str | None = None) -> RenderedReport:
    """The recipient's campaign e-mail; ``sender`` (the From address) is named in the footer."""
    language = recipient.language
    images = draw_charts(report, language)
    stem = report.due.file_stem()
    who = report.who_for(recipient)   # the plan's own recipients only
    printable = render_html(report, None, images, language=language, printable=True, who=who)
    return RenderedReport(
        subject=render_subject(report, language),
        html=render_html(report, recipient, images, sender=sender, who=who),
        text=render_text(report, language, recipient, sender),
        images=list(images.values()),
        attachments=[Attachment(f"{stem}.xlsx", excel_annex(report, language, who)),
                     Attachment(f"{stem}.html", printable.encode("utf-8"), "text", "html")])


# ----------------------------------------------------------------------------- the Excel annex

def _float(value) -> float | None:
    return None if value is None else float(value)


# At most this many indicator blocks (4 columns each) per annex sheet: 2 + 12 columns print legibly on
# an A4 landscape page; seed 002's 7 indicators in one sheet were 30 columns.
ANNEX_BLOCKS_PER_SHEET = 3
# The detail sheet: mart_target_attainment's columns a reader needs, with Vietnamese headers; the unit of
# each (text, number, percent, date) decides its cell format.
DETAIL_COLUMNS = (
    ("target_id", "Mã chỉ tiêu", "Target", "text"), ("unit_code", "Mã đơn vị", "Unit code", "text"),
    ("unit_name", "Đơn vị", "Unit", "text"), ("indicator_code", "Mã chỉ số", "Indicator code", "text"),
    ("indicator_name_vi", "Chỉ số", "Indicator", "text"), ("measure_period", "Cách đo", "Measure", "measure"),
    ("comparator", "So sánh", "Comparator", "comparator"), ("target_value", "Chỉ tiêu", "Target value", "number"),
    ("baseline_date", "Ngày cơ sở", "Baseline day", "date"), ("baseline", "Giá trị cơ sở", "Baseline", "number"),
    ("numerator", "Số đạt (tử số)", "Numerator", "number"), ("denominator", "Tổng số (mẫu số)", "Denominator", "number"),
    ("judged_value", "Giá trị hiện tại", "Value now", "number"), ("judged_on", "Ngày đánh giá", "Judged on", "date"),
    ("gap_items", "Thiếu (hồ sơ)", "Missing (dossiers)", "count"), ("deadline", "Hạn", "Deadline", "date"),
    ("status_vi", "Đánh giá", "Status", "text"),
)
DATE_FORMAT = "dd/mm/yyyy"


def print_setup(sheet, title_rows: str | None = None, title_columns: str | None = None) -> None:
    """A4 landscape, fitted to the page's width (as many pages down as needed), narrow margins, the
    header rows (and unit columns) repeated on every page, page numbers in the footer."""
    from openpyxl.worksheet.page import PageMargins

    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.page_margins = PageMargins(left=0.4, right=0.4, top=0.6, bottom=0.6, header=0.3, footer=0.3)
    sheet.print_options.horizontalCentered = True
    if title_rows:
        sheet.print_title_rows = title_rows
    if title_columns:
        sheet.print_title_cols = title_columns
    sheet.oddFooter.center.text = "Trang &P/&N"


def excel_annex(report: CampaignReport, language: str = "vi", who: WhoDidWhat | None = None) -> bytes:
    """The annex as the plans lay it out: one row per unit, per indicator four columns (value at
    baseline, target, value now, status), at most ANNEX_BLOCKS_PER_SHEET indicators a sheet ("Phụ lục I",
    "Phụ lục I (2)" …); a detail sheet with every target's figures; with ``who`` (the plan's internal
    recipients only) the sheets "Theo lĩnh vực" and "Theo cán bộ". Every sheet prints on A4 landscape."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    words = text.labels(language)
    status_text = text.STATUS[language]
    workbook = Workbook()
    thin = Side(style="thin", color="9FB3C8")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    bold = Font(bold=True)
    header_fill = PatternFill("solid", fgColor="D9E2EC")
    centre = Alignment(horizontal="center", vertical="center", wrap_text=True)
    wrap = Alignment(vertical="top", wrap_text=True)

    blocks = [b for b in report.blocks()]
    units: list[str] = []
    for block in blocks:
        for row in block.rows:
            if row.unit_code not in units:
                units.append(row.unit_code)
    by_unit_block = {(row.unit_code, b.indicator_code, b.measure_period): row for b in blocks for row in b.rows}
    names = {r.unit_code: r.unit_name for r in report.rows}
    base_title = "Phụ lục I" if language == "vi" else "Annex I"
    pages = [blocks[i:i + ANNEX_BLOCKS_PER_SHEET] for i in range(0, len(blocks), ANNEX_BLOCKS_PER_SHEET)] or [[]]
    for page_number, page in enumerate(pages, start=1):
        sheet = workbook.active if page_number == 1 else workbook.create_sheet()
        sheet.title = base_title if page_number == 1 else f"{base_title} ({page_number})"
        width = 2 + 4 * len(page)
        sheet.cell(1, 1, words["annex"]).font = Font(bold=True, size=13)
        sheet.cell(2, 1, f"{report.document_vi}")
        sheet.cell(3, 1, " · ".join(filter(None, [report.due.title(language), report.due.period_label(language),
                                                  report.due.deadline_label(language)])))
        sheet.cell(4, 1, words["annex_note"].format(day=", ".join(sorted({text.day(b.baseline_date) for b in blocks
                                                                            if b.baseline_date})) or "—"))
        top, sub = 6, 7
        for column, label in ((1, words["stt"]), (2, words["unit"])):
            sheet.cell(top, column, label)
            sheet.merge_cells(start_row=top, start_column=column, end_row=sub, end_column=column)
        for index, block in enumerate(page):
            first = 3 + 4 * index
            suffix = " (%)" if block.unit_of_measure == "percent" else ""
            sheet.cell(top, first, f"{block.name_vi}{suffix} – {text.measure_name(block.measure_period, language)}")
            sheet.merge_cells(start_row=top, start_column=first, end_row=top, end_column=first + 3)
            baseline_day = f" {text.day(block.baseline_date)}" if block.baseline_date else ""
            for offset, label in enumerate((words["baseline_short"] + baseline_day, words["target"],
                                            f"{words['now']} {text.day(report.due.as_of)}", words["status"])):
                sheet.cell(sub, first + offset, label)
        for row_index in (top, sub):
            for column in range(1, width + 1):
                cell = sheet.cell(row_index, column)
                cell.font, cell.fill, cell.alignment, cell.border = bold, header_fill, centre, border
        for number, unit_code in enumerate(units, start=1):
            line = sub + number
            sheet.cell(line, 1, number)
            sheet.cell(line, 2, names[unit_code]).alignment = wrap
            for index, block in enumerate(page):
                first = 3 + 4 * index
                row = by_unit_block.get((unit_code, block.indicator_code, block.measure_period))
                if row is None:
                    continue
                values = (_float(row.baseline), _float(row.target_value), _float(row.judged_value),
                          status_text.get(row.status_code, row.status_vi))
                for offset, value in enumerate(values):
                    cell = sheet.cell(line, first + offset, value)
                    if offset < 3:
                        cell.number_format = "0.00"
            for column in range(1, width + 1):
                sheet.cell(line, column).border = border
        sheet.column_dimensions["A"].width = 5
        sheet.column_dimensions["B"].width = 24
        for column in range(3, width + 1):
            sheet.column_dimensions[get_column_letter(column)].width = 12
        sheet.row_dimensions[top].height = 45
        sheet.freeze_panes = sheet.cell(sub + 1, 3)
        print_setup(sheet, f"{top}:{sub}", "A:B")

    detail = workbook.create_sheet("Chi tiết" if language == "vi" else "Detail")
    detail.append([vi if language == "vi" else en for _name, vi, en, _kind in DETAIL_COLUMNS])
    for cell in detail[1]:
        cell.font, cell.fill, cell.alignment = bold, header_fill, centre
    comparators = {">=": "≥", "<=": "≤", ">": ">", "<": "<", "=": "="}
    for row in sorted(report.rows, key=lambda r: (r.target_id, r.unit_code)):
        values = []
        for name, _vi, _en, kind in DETAIL_COLUMNS:
            value = row.baseline if name == "baseline" else getattr(row, name)
            if kind == "measure":
                value = text.measure_name(value, language)
            elif kind == "comparator":
                value = comparators.get(value, value)
            values.append(float(value) if isinstance(value, Decimal) else value)
        detail.append(values)
    for column, (name, _vi, _en, kind) in enumerate(DETAIL_COLUMNS, start=1):
        letter = get_column_letter(column)
        for cell in detail[letter][1:]:
            if kind == "date":
                cell.number_format = DATE_FORMAT
            elif kind == "number":
                cell.number_format = "0.00"
            elif kind == "count":
                cell.number_format = "0"
            elif kind == "text":
                cell.alignment = wrap
        detail.column_dimensions[letter].width = {"unit_name": 22, "indicator_name_vi": 30, "status_vi": 12,
                                                  "target_id": 16}.get(name, 12)
    detail.row_dimensions[1].height = 32
    detail.freeze_panes = "C2"
    print_setup(detail, "1:1")
    if who is not None:
        _who_sheets(workbook, who, language, report.due.period_label(language))
    workbook.properties.creator = "chiso"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _who_sheets(workbook, who: WhoDidWhat, language: str, period: str) -> None:
    """"Theo lĩnh vực" and "Theo cán bộ": each field's and each official's dossiers, on-time rate and
    status against the plan's processing-time target (officials: missed first)."""
    from openpyxl.styles import Alignment, Font, PatternFill

    words = text.labels(language)
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="D9E2EC")
    centre = Alignment(horizontal="center", vertical="center", wrap_text=True)
    figures = [words["handled"], words["on_time"], words["late"], words["open_overdue"], words["on_time_rate"],
               f"{words['target']} (%)", words["status"]]
    status_text = text.STATUS[language]
    sheets = (
        (words["who_by_field"], [words["stt"], words["unit"], words["field"]] + figures, who.fields,
         lambda r: [r.unit_name, r.name], {"B": 24, "C": 34}),
        (words["who_by_handler"], [words["stt"], words["handler"], words["unit"], words["field"]] + figures,
         who.handlers, lambda r: [r.name, r.unit_name, r.detail], {"B": 22, "C": 22, "D": 30}),
    )
    note = words["who_note"].format(start=text.day(who.start), end=text.day(who.end), target_name=who.target_name,
                                    target=who.target_text)
    for title, headers, rows, leading, widths in sheets:
        sheet = workbook.create_sheet(title)
        sheet.cell(1, 1, f"{words['who']} – {title}").font = Font(bold=True, size=13)
        sheet.cell(2, 1, period)
        sheet.cell(3, 1, note)
        header_row = 5
        for column, label in enumerate(headers, start=1):
            cell = sheet.cell(header_row, column, label)
            cell.font, cell.fill, cell.alignment = bold, fill, centre
        for number, row in enumerate(rows, start=1):
            values = [number, *leading(row), row.handled, row.on_time, row.late, row.open_overdue, _float(row.rate),
                      _float(row.target_value), status_text.get(row.status_code, row.status_vi)]
            sheet.append(values)
            line = sheet.max_row
            for column in range(len(values) - 7 + 1, len(values) - 2 + 1):
                sheet.cell(line, column).number_format = "0" if column <= len(values) - 3 else "0.00"
        sheet.column_dimensions["A"].width = 5
        for letter, width in widths.items():
            sheet.column_dimensions[letter].width = width
        sheet.row_dimensions[header_row].height = 32
        sheet.freeze_panes = sheet.cell(header_row + 1, 1)
        print_setup(sheet, f"{header_row}:{header_row}")
