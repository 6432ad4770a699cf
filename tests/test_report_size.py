"""Every nightly e-mail stays under the 1 MB cap at national scale (issue 13, item 5), without losing a row.

The national world (chiso.simulator.scenarios.national: 34 provinces and 3,321 communes after 1/7/2025,
63 provinces, 696 districts and 10,035 communes before) is rendered at the render layer: a DailyReport
is synthesised from the world's units with plausible scores, day figures and plans' lists, so no
warehouse of 200,000 dossiers a day is needed. Long tables are cut in the body, with a sentence saying
how many rows were left out, and given in full in the attached workbook.
"""

from __future__ import annotations

import email
import email.policy
import io
import random
import re
import unicodedata
from collections import defaultdict
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest

from chiso.reports import text
from chiso.reports.daily import DailyReport, IndicatorColumn, IndicatorValue, PeerList, Score, UnitRow, render_daily
from chiso.reports.mail import build_message, message_bytes
from chiso.reports.recipients import Recipient, Scope, Unit, ancestors
from chiso.reports.send import MAX_MESSAGE_BYTES

AFTER, BEFORE = date(2025, 11, 12), date(2025, 6, 25)   # the 34-province and the 63-province shapes
CLASSES = ((90, "XUAT_SAC", "Xuất sắc", "Excellent"), (80, "TOT", "Tốt", "Good"), (70, "KHA", "Khá", "Fair"),
           (50, "TRUNG_BINH", "Trung bình", "Average"), (0, "YEU", "Yếu", "Weak"))
GROUP_MAX = dict(zip(text.GROUPS, (Decimal(10), Decimal(20), Decimal(20), Decimal(20), Decimal(10), Decimal(20))))
CENT = Decimal("0.01")


def _ranks(codes: list[str], totals: dict[str, Decimal]) -> dict[str, tuple[int, int]]:
    ordered = sorted(codes, key=lambda code: (-totals[code], code))
    return {code: (index, len(ordered)) for index, code in enumerate(ordered, start=1)}


def synthetic_report(day: date, seed: int = 766) -> DailyReport:
    """A national DailyReport as the marts would give it on ``day``: every unit of the world active that
    day, scored and ranked as fct_unit_scores ranks (provinces among provinces, other units inside their
    province and, before 1/7/2025, a commune inside its district), with the day's on-time and online
    figures and the plans' lists of units below 50% online (per district, per province's communes)."""
    from chiso.simulator.scenarios import national

    rng = random.Random(seed)
    world_units = [u for u in national().units if u.active_on(day)]
    catalogue = {u.code: Unit(u.code, u.name, u.kind, u.parent_code, u.kind != "PROVINCE") for u in world_units}
    province_of = {code: code if unit.kind == "PROVINCE" else ancestors(code, catalogue)[-1]
                   for code, unit in catalogue.items()}
    totals, groups, online = {}, {}, {}
    for code in catalogue:
        groups[code] = {g: (maximum * Decimal(rng.uniform(0.45, 1.0))).quantize(CENT) for g, maximum in GROUP_MAX.items()}
        totals[code] = sum(groups[code].values())
        online[code] = Decimal(rng.uniform(10, 95)).quantize(Decimal("0.1"))
    by_province, by_kind, by_district = defaultdict(list), defaultdict(list), defaultdict(list)
    for code, unit in catalogue.items():
        if unit.kind == "PROVINCE":
            by_province["*"].append(code)
            by_kind[("*", "PROVINCE")].append(code)
            continue
        by_province[province_of[code]].append(code)
        by_kind[(province_of[code], unit.kind)].append(code)
        parent = catalogue.get(unit.parent)
        if unit.kind == "COMMUNE" and parent is not None and parent.kind == "DISTRICT":
            by_district[parent.code].append(code)
    rank_province, rank_kind, rank_district = {}, {}, {}
    for members in by_province.values():
        rank_province.update(_ranks(members, totals))
    for members in by_kind.values():
        rank_kind.update(_ranks(members, totals))
    for members in by_district.values():
        rank_district.update(_ranks(members, totals))
    scores = {}
    for code in catalogue:
        floor, class_code, class_vi, class_en = next(c for c in CLASSES if totals[code] >= c[0])
        district = rank_district.get(code, (None, None))
        scores[code] = Score(code, groups[code], totals[code], class_code, class_vi, class_en,
                             *rank_province[code], *rank_kind[code], *district,
                             Decimal(rng.uniform(-1, 1)).quantize(CENT))
    trends = {code: [(day - timedelta(days=back), (totals[code] - Decimal(back) / 20).quantize(CENT))
                     for back in range(29, -1, -1)] for code in catalogue}
    indicators = [IndicatorColumn("ON_TIME", "Tỷ lệ hồ sơ giải quyết đúng hạn", "Dossiers resolved on time"),
                  IndicatorColumn("ONLINE_DOSSIER_SHARE", "Tỷ lệ hồ sơ trực tuyến", "Dossiers submitted online")]
    units = []
    for unit in sorted(catalogue.values(), key=lambda u: (u.name, u.code)):
        if not unit.is_evaluated:
            continue
        values = {}
        for column in indicators:
            denominator = rng.randint(5, 120)
            numerator = rng.randint(0, denominator)
            values[column.code] = IndicatorValue(numerator, denominator, (Decimal(100 * numerator) / denominator)
                                                 .quantize(CENT, ROUND_HALF_UP))
        units.append(UnitRow(unit.code, unit.name, values))
    lists = []
    peer_sets = [(code, members, "ONLINE_BELOW_50", "địa phương có tỷ lệ DVC trực tuyến dưới 50%")
                 for code, members in by_district.items()]
    peer_sets += [(province, [c for c in members if catalogue[c].kind == "COMMUNE"], "ONLINE_BELOW_50_PROVINCE",
                   "xã có tỷ lệ DVC trực tuyến dưới 50%") for province, members in by_province.items() if province != "*"]
    for peer_set, members, list_code, label in peer_sets:
        below = sorted((c for c in members if online[c] < 50), key=lambda c: (-online[c], catalogue[c].name))
        names = ", ".join(f"{text.short_unit_name(catalogue[c].name)} ({text.number(online[c], 1)}%)" for c in below)
        sentence = f"{len(below):02d}/{len(members):02d} {label}" + (f" gồm: {names}" if below else "")
        lists.append(PeerList(list_code, peer_set, below, sentence))
    technical = {"loads": [(entity, 1000, 1000, 0) for entity in ("dossiers", "units", "procedures")],
                 "gates": [("marts", True, 0, datetime_at(day))]}
    return DailyReport(day, indicators, units, catalogue, scores, trends, GROUP_MAX, [], lists, technical)


def datetime_at(day: date):
    from datetime import datetime

    return datetime(day.year, day.month, day.day, 6, 30)


@pytest.fixture(scope="module")
def national_after():
    return synthetic_report(AFTER)


@pytest.fixture(scope="module")
def national_before():
    return synthetic_report(BEFORE)


def message_of(report: DailyReport, recipient: Recipient) -> tuple[bytes, email.message.EmailMessage]:
    """The bytes chiso.reports.send sends (mail.message_bytes), and the message a client reads of them."""
    rendered = render_daily(report.for_recipient(recipient), recipient)
    raw = message_bytes(rendered, "chiso@localhost", recipient.email, "<m@chiso.local>")
    return raw, email.message_from_bytes(raw, policy=email.policy.default)


def _as_read(raw: bytes) -> list:
    """What a mail client reads of a message: headers, then every part's type, name, Content-ID,
    disposition and decoded content (text with its line ends normalised)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    read = [(str(message["Subject"]), str(message["From"]), str(message["To"]), str(message["Message-ID"]),
             str(message["X-Chiso-Publication"]), str(message["X-Chiso-Resend"]))]
    for part in message.walk():
        content = None
        if not part.is_multipart():
            content = part.get_content()
            if part.get_content_maintype() == "text":
                content = content.replace("\r\n", "\n").rstrip("\n")
        read.append((part.get_content_type(), part.get_filename(), str(part["Content-ID"]),
                     part.get_content_disposition(), content))
    return read


def test_the_message_written_directly_reads_as_the_standard_librarys(national_after):
    """mail.message_bytes (what is sent) and mail.build_message (the standard library's generator) give
    a reader the same message: headers, parts, names, Content-IDs, text and bytes; with no attachment,
    a workbook, a ZIP, in Vietnamese and in English."""
    report = national_after
    province = "000.00.00.H08"
    commune = next(c for c in units_of(report, "COMMUNE") if province_of(report, c) == province)
    headers = {"X-Chiso-Publication": "daily_indicators/2025-11-12/x", "X-Chiso-Resend": "thư bị mất"}
    for recipient in (Recipient("xa@national.example.vn", "UBND xã", Scope("commune", commune)),
                      Recipient("xa-en@national.example.vn", "Commune", Scope("commune", commune), language="en"),
                      Recipient("tinh@national.example.vn", "UBND tỉnh", Scope("province", province)),
                      Recipient("data@national.example.vn", "Nhóm kỹ thuật dữ liệu", Scope("team"))):
        rendered = render_daily(report.for_recipient(recipient), recipient)
        direct = message_bytes(rendered, "chiso@localhost", recipient.email, "<m@chiso.local>", headers)
        standard = build_message(rendered, "chiso@localhost", recipient.email, "<m@chiso.local>", headers).as_bytes()
        assert _as_read(direct) == _as_read(standard)
        assert abs(len(direct) - len(standard)) < 0.01 * len(standard)   # the same encodings, the same size
        assert all(len(line) <= 998 for line in direct.split(b"\r\n")) and b"\n" not in direct.replace(b"\r\n", b"")


def sheet_rows(message: email.message.EmailMessage, table: str) -> list[dict]:
    """The rows of one table of the message's attachment (a workbook's sheet or a ZIP's CSV file)."""
    import csv
    import zipfile

    attachment, = list(message.iter_attachments())
    data = attachment.get_content()
    if attachment.get_filename().endswith(".zip"):
        name = text.CSV_FILES[table]
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            content = archive.read(name).decode("utf-8")
        assert content.startswith("\ufeff")
        return list(csv.DictReader(io.StringIO(content.removeprefix("\ufeff"))))
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(data), read_only=True)[text.SHEETS["vi"][table]]
    header, *rows = sheet.iter_rows(values_only=True)
    return [dict(zip(header, row)) for row in rows]


def cut_of(html: str, table: str) -> dict:
    found = re.search(rf'<p class="muted" data-cut="{table}" data-shown="(\d+)" data-total="(\d+)" '
                      rf'data-left-out="(\d+)">(.*?)</p>', html, re.S)
    assert found, f"no note under the {table} table"
    shown, total, left, sentence = found.groups()
    return {"shown": int(shown), "total": int(total), "left_out": int(left), "sentence": sentence}


def province_of(report: DailyReport, code: str) -> str:
    unit = report.catalogue[code]
    return code if unit.kind == "PROVINCE" else ancestors(code, report.catalogue)[-1]


def units_of(report: DailyReport, kind: str) -> list[str]:
    return sorted(code for code, unit in report.catalogue.items() if unit.kind == kind)


@pytest.mark.parametrize("shape", ["after", "before"])
def test_every_national_email_is_under_the_cap_and_its_attachment_holds_every_row(shape, request):
    report = request.getfixturevalue(f"national_{shape}")
    province = "000.00.00.H08"  # Thanh Hóa: its own province in both shapes
    commune = next(c for c in units_of(report, "COMMUNE") if province_of(report, c) == province)
    team = Recipient("data@national.example.vn", "Nhóm kỹ thuật dữ liệu", Scope("team"))
    sizes = {}
    for recipient in (Recipient("xa@national.example.vn", "UBND xã", Scope("commune", commune)),
                      Recipient("tinh@national.example.vn", "UBND tỉnh Thanh Hóa", Scope("province", province)),
                      team):
        raw, message = message_of(report, recipient)
        sizes[recipient.scope.kind] = len(raw)
        assert len(raw) < MAX_MESSAGE_BYTES, f"{recipient.scope.kind}: {len(raw):,} bytes"
        html = message.get_body(("html",)).get_content()
        assert html == unicodedata.normalize("NFC", html)
        visible = recipient.units(report.catalogue)
        if recipient.scope.kind == "commune" and shape == "before":
            # Before 1/7/2025 a commune ranks among its district's ~14 communes: nothing to cut.
            assert "data-cut=" not in html and not list(message.iter_attachments())
            continue
        # The ranking: the body's rows and the left-out ones make up the attachment, every unit once.
        ranking = cut_of(html, "ranking")
        shown = re.findall(r'<tr data-peer-unit="([^"]+)"', html)
        sheet = sheet_rows(message, "ranking")
        codes = [row["Mã đơn vị"] for row in sheet]
        assert len(codes) == len(set(codes)) == ranking["total"] and set(shown) <= set(codes)
        assert ranking["left_out"] == ranking["total"] - len(shown) > 0
        assert f" {text.count(ranking['left_out'])} đơn vị còn lại" in ranking["sentence"] or \
            f"đầy đủ {text.count(ranking['total'])} đơn vị" in ranking["sentence"]
        if recipient.is_team:
            assert set(codes) == set(report.scores)               # every unit of the country
            assert set(shown) <= set(units_of(report, "PROVINCE"))  # the body ranks provinces only
            assert f"{text.count(len(report.scores))} đơn vị" in ranking["sentence"]
        elif recipient.scope.kind == "province":
            assert set(codes) == visible - {province}
        else:
            assert set(codes) == {c for c in units_of(report, "COMMUNE") if province_of(report, c) == province}
        for row in sheet:
            assert Decimal(str(row["Tổng điểm"])) == report.scores[row["Mã đơn vị"]].total
        # The day's figures: every evaluated unit in scope is in the attachment with the mart's numbers.
        if recipient.scope.kind != "commune":
            day = cut_of(html, "day")
            day_sheet = sheet_rows(message, "day")
            expected = {u.unit_code: u for u in report.units if u.unit_code in visible}
            assert {row["Mã đơn vị"] for row in day_sheet} == set(expected) and len(day_sheet) == day["total"]
            for row in day_sheet:
                value = expected[row["Mã đơn vị"]].values["ONLINE_DOSSIER_SHARE"]
                assert Decimal(str(row["Tỷ lệ hồ sơ trực tuyến (%)"])) == value.rate
                assert int(row["Tỷ lệ hồ sơ trực tuyến: tổng số hồ sơ"]) == value.denominator
            assert day["left_out"] == day["total"] - len(re.findall(r'<tr data-unit="', html))
            assert f"{text.count(day['total'] if recipient.is_team else day['left_out'])} đơn vị" in day["sentence"]
    print(f"\n{shape} 1/7/2025: " + ", ".join(f"{kind} {size:,} bytes" for kind, size in sizes.items()))


def test_the_team_sees_each_province_pooled_and_every_list_in_the_attachment(national_after):
    report = national_after
    team = Recipient("data@national.example.vn", "Nhóm kỹ thuật dữ liệu", Scope("team"))
    _raw, message = message_of(report, team)
    html = message.get_body(("html",)).get_content()
    pooled = re.findall(r'<tr data-province-pooled="([^"]+)">(.*?)</tr>', html, re.S)
    assert sorted(code for code, _ in pooled) == units_of(report, "PROVINCE") and 'data-unit="' not in html
    hanoi = dict(pooled)["000.00.00.H01"]
    rows = [u for u in report.units if province_of(report, u.unit_code) == "000.00.00.H01"]
    numerator = sum(u.values["ON_TIME"].numerator for u in rows)
    denominator = sum(u.values["ON_TIME"].denominator for u in rows)
    assert f"{numerator}/{denominator}" in hanoi
    lists = cut_of(html, "lists")
    assert lists["total"] == len(report.peer_lists) == 34 and len(re.findall(r"<li data-list=", html)) == lists["shown"]
    assert [row["Nội dung"] for row in sheet_rows(message, "lists")] == [p.sentence_vi for p in report.peer_lists]
    assert "Bảng đầy đủ trong tệp đính kèm: chiso-2025-11-12-tat-ca-don-vi-bang-day-du.zip." in \
        message.get_body(("plain",)).get_content()


def test_the_cut_never_drops_the_readers_own_unit(national_after):
    from chiso.reports import daily

    report = national_after
    province = "000.00.00.H16"   # Bắc Ninh: ~100 communes, every rank from the first to the last
    communes = [c for c in units_of(report, "COMMUNE") if province_of(report, c) == province]
    ranks = set()
    for code in communes:
        recipient = Recipient("xa@national.example.vn", "UBND xã", Scope("commune", code))
        context = daily.view(report.for_recipient(recipient), recipient)
        shown = [unit for unit, _ in context["peer_rows"]]
        assert code in shown, f"{code} (rank {report.scores[code].rank_kind}) is missing from its own ranking"
        assert len(shown) < len(communes) and "ranking" in context["cuts"], "the ranking was not cut"
        # ... with the communes ranked next to it, and the first and last few.
        rank = report.scores[code].rank_kind
        near = {u for u in communes if abs(report.scores[u].rank_kind - rank) <= daily.RANKING_NEIGHBOURS}
        ends = {u for u in communes if report.scores[u].rank_kind <= daily.RANKING_ENDS
                or report.scores[u].rank_kind > len(communes) - daily.RANKING_ENDS}
        assert near | ends == set(shown)
        assert sum(context["peer_gaps"].values()) + len(shown) == len(communes)
        # The ranking shown is the province's communes by their rank, nobody else's.
        assert [report.scores[u].rank_kind for u in shown] == sorted(report.scores[u].rank_kind for u in shown)
        assert {province_of(report, u) for u in shown} == {province}
        ranks.add(report.scores[code].rank_kind)
    assert ranks == set(range(1, len(communes) + 1))
    # Rendered, the reader's row is the highlighted one.
    last = max(communes, key=lambda c: report.scores[c].rank_kind)
    recipient = Recipient("xa@national.example.vn", "UBND xã", Scope("commune", last))
    html = render_daily(report.for_recipient(recipient), recipient).html
    assert re.findall(r'<tr data-peer-unit="([^"]+)" class="me">', html) == [last]


def test_a_district_keeps_its_own_row_in_a_cut_day_table(national_before, monkeypatch):
    from chiso.reports import daily

    monkeypatch.setattr(daily, "DAY_ROWS_MAX", 5)
    monkeypatch.setattr(daily, "DAY_ROWS_WORST", 3)
    report = national_before
    on_time = {u.unit_code: u.values["ON_TIME"].rate for u in report.units}
    district = max(units_of(report, "DISTRICT"), key=on_time.get)   # never among the lowest: kept as the reader's
    recipient = Recipient("huyen@national.example.vn", "UBND huyện", Scope("district", district))
    context = daily.view(report.for_recipient(recipient), recipient)
    shown = [u.unit_code for u in context["day_units"]]
    assert shown[0] == district and len(shown) == 4 and context["cuts"]["day"].left_out > 0
    rates = [u.values["ON_TIME"].rate for u in context["day_units"][1:]]
    others = sorted(u.values["ON_TIME"].rate for u in report.units
                    if u.unit_code in recipient.units(report.catalogue) and u.unit_code != district)
    assert rates == others[:3]   # the lowest on-time rates of the day, the reader's own row first


# ----------------------------------------------------------------------------- the charts show the figures

def _near(pixel: tuple[int, int, int], colour: str, tolerance: int = 40) -> bool:
    """The pixel has the colour (the PNG has a 64-colour palette and smoothed edges: roughly)."""
    wanted = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return sum(abs(a - b) for a, b in zip(pixel, wanted)) <= tolerance


def _images(message: email.message.EmailMessage) -> dict[str, bytes]:
    return {str(part["Content-ID"]).strip("<>").split(".")[0]: part.get_content()
            for part in message.walk() if part.get_content_type() == "image/png"}


def test_the_charts_draw_the_readers_figures(national_after):
    """A commune's two inline PNGs decode at the column's width, and the pixels sit where its figures put
    them: each group's bar ends at its score as a share of the group's maximum, every day of its total
    score is on its line, the peers' average runs below or above it as the marts have it."""
    from PIL import Image

    from chiso.reports import charts, daily

    report = national_after
    commune = units_of(report, "COMMUNE")[7]
    recipient = Recipient("xa@national.example.vn", "UBND xã", Scope("commune", commune))
    _raw, message = message_of(report, recipient)
    html = message.get_body(("html",)).get_content()
    images = _images(message)
    assert set(images) == {"groups", "trend"}
    assert f'src="cid:groups.{commune}@chiso"' in html and f'src="cid:trend.{commune}@chiso"' in html
    score = report.scores[commune]

    groups = Image.open(io.BytesIO(images["groups"]))
    assert groups.format == "PNG" and groups.width == 700
    names = [text.GROUP_NAMES["vi"][code] for code in text.GROUPS]
    layout = charts.groups_layout(names, has_target=False)
    assert groups.height == layout.height
    pixels = groups.convert("RGB")
    for index, code in enumerate(text.GROUPS):
        percent = float((100 * score.groups[code] / report.group_max[code]).quantize(Decimal("0.1")))
        y = round(layout.y(index))
        row = [x for x in range(groups.width) if _near(pixels.getpixel((x, y)), charts.ACCENT)]
        assert row, f"no bar for {code}"
        # The bar runs from 0 to the group's percentage of its maximum (to the pixel).
        assert abs(min(row) - layout.x(0)) <= 2 and abs(max(row) - layout.x(percent)) <= 2, (code, percent)

    trend = Image.open(io.BytesIO(images["trend"]))
    assert trend.format == "PNG" and trend.size == (700, charts.TREND_HEIGHT_PX)
    points = report.trends[commune]
    context = daily.view(report.for_recipient(recipient), recipient)
    average = daily.peer_average(report, [u for u, _ in context["all_peer_rows"]], commune)
    peers = [u for u, _ in context["all_peer_rows"] if u != commune]
    assert average[-1][1] == sum(report.scores[u].total for u in peers) / len(peers)   # the marts' figures
    layout = charts.trend_layout(points, average)
    pixels = trend.convert("RGB")

    def drawn_at(x: float, y: float, colour: str, reach: int = 2) -> bool:
        return any(_near(pixels.getpixel((round(x) + dx, round(y) + dy)), colour)
                   for dx in range(-reach, reach + 1) for dy in range(-reach, reach + 1))

    for day, total in points:
        assert drawn_at(layout.x(day), layout.y(float(total)), charts.ACCENT), (day, total)
    # The average is dashed: most of its days fall on a dash.
    on_dash = sum(drawn_at(layout.x(day), layout.y(float(value)), charts.MUTED) for day, value in average)
    assert on_dash >= 0.6 * len(average)
    # Nothing of the reader's line where its values are not: 5 points lower than its last day.
    last_day, last_total = points[-1]
    if float(last_total) - 5 > layout.low:
        assert not drawn_at(layout.x(last_day), layout.y(float(last_total) - 5), charts.ACCENT)


def test_charts_with_targets_and_in_english(national_after):
    """A group's target is a red mark at its percentage; the English e-mail's charts decode too."""
    from PIL import Image

    from chiso.reports import charts

    groups = [("Công khai, minh bạch", 51.9, None), ("Tiến độ giải quyết", 89.4, 80.0),
              ("Dịch vụ công trực tuyến", 98.6, None), ("Mức độ hài lòng", 61.8, 75.0)]
    image = Image.open(io.BytesIO(charts.groups_against_targets(groups, "chỉ tiêu"))).convert("RGB")
    layout = charts.groups_layout([g[0] for g in groups], has_target=True)
    for index, (_label, _percent, target) in enumerate(groups):
        y = round(layout.y(index))
        marks = [x for x in range(image.width) if _near(image.getpixel((x, y)), charts.TARGET)]
        if target is None:
            assert not marks
        else:
            assert marks and abs((min(marks) + max(marks)) / 2 - layout.x(target)) <= 2
    commune = units_of(national_after, "COMMUNE")[0]
    recipient = Recipient("xa@national.example.vn", "Commune", Scope("commune", commune), language="en")
    _raw, message = message_of(national_after, recipient)
    for data in _images(message).values():
        assert Image.open(io.BytesIO(data)).width == 700
    # Vietnamese tick labels: a decimal comma wherever a tick is not a whole number.
    assert charts._tick_label(72.5, [72.0, 72.5, 73.0]) == "72,5" and charts.decimal_comma(78.95, 2) == "78,95"
