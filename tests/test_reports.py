"""Reports leaders read (issue #8): the nightly e-mail's figures against the marts, each scope's view,
the campaign reports' schedule and Excel annex, exactly-once delivery through an SMTP outage and a
deliberate re-send, and both reports as a person sees them in headless Chromium.

One warehouse is built for the module without Airflow (chiso.orchestration.backfill + dbt): Cư Kuin (cu_kuin_2024)
from 8/11/2024 to 24/11/2024, the eve of its 60-day campaign (15/11) to the campaign's day 10, when
the first 10-day report falls due.
"""

from __future__ import annotations

import email
import email.policy
import io
import json
import re
import shutil
import subprocess
import unicodedata
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from chiso.orchestration.backfill import backfill, days_between
from chiso.dev.mailcatcher import MailCatcher
from chiso.reports import campaign, text
from chiso.reports.daily import REPORT_CODE, add_technical_facts, build_daily_report, render_daily
from chiso.reports.delivery import DeliveryFailed
from chiso.reports.recipients import Recipient, Scope, load_recipients
from chiso.core.settings import REPO_ROOT
from chiso.transform.runner import run_dbt

FIRST, DAY = date(2024, 11, 8), date(2024, 11, 24)   # DAY: campaign day 10
EA_KTUR, DISTRICT, PROVINCE = "000.37.27.H15", "000.00.27.H15", "000.00.00.H15"
COMMUNES = [f"000.{n}.27.H15" for n in range(31, 39)]
PLAN = "KH_CUKUIN_60NGAY_2024"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "reports"
RECIPIENTS_YML = f"""
recipients:
  - {{email: tinh@daklak.example.vn, name: Văn phòng UBND tỉnh Đắk Lắk, scope: {{province: {PROVINCE}}}}}
  - {{email: huyen@cukuin.example.vn, name: UBND huyện Cư Kuin, scope: {{district: {DISTRICT}}}}}
  - {{email: chutich@eaktur.example.vn, name: Chủ tịch UBND xã Ea Ktur, scope: {{commune: {EA_KTUR}}}}}
  - {{email: data@chiso.example.vn, name: Nhóm kỹ thuật dữ liệu, scope: team, reports: [daily]}}
"""
COMMUNE = Recipient("chutich@eaktur.example.vn", "Chủ tịch UBND xã Ea Ktur", Scope("commune", EA_KTUR))


def query(url, sql, params=None):
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def warehouse(make_database, tmp_path_factory):
    url = make_database("chiso_reports")
    backfill(url, "cu_kuin_2024", days_between(FIRST, DAY), seed=766)
    run_dbt(["build", "--target-path", str(tmp_path_factory.mktemp("dbt_target")),
             "--log-path", str(tmp_path_factory.mktemp("dbt_logs"))], url)
    return url


@pytest.fixture(scope="module")
def report(warehouse):
    return build_daily_report(DAY, warehouse)


@pytest.fixture
def recipients(tmp_path, monkeypatch):
    path = tmp_path / "recipients.yml"
    path.write_text(RECIPIENTS_YML, encoding="utf-8")
    monkeypatch.setenv("CHISO_RECIPIENTS_FILE", str(path))
    return load_recipients(path)


def figures(html: str, attribute: str, value: str, end: str) -> dict[str, str]:
    """data-figure → its text, inside the part of the page from ``attribute="value"`` to ``end``."""
    start = html.index(f'{attribute}="{value}"')
    region = html[start:html.index(end, start)]
    return {name: re.sub(r"<[^>]+>", "", inner).strip()
            for name, inner in re.findall(r'data-figure="([a-z_]+)"[^>]*>(.*?)</(?:b|td|span)>', region, re.S)}


# ----------------------------------------------------------------------------- the nightly e-mail

def test_the_commune_email_shows_the_marts_figures(warehouse, report):
    html = render_daily(report.for_recipient(COMMUNE), COMMUNE).html
    (total, change, class_vi, rank, peers, rank_p, count_p), = query(warehouse, """
        select total_score, change_since_previous_day, class_name_vi, rank_in_district, district_peer_count,
               rank_in_peer_set, peer_count
        from marts.fct_unit_scores where business_date = %s and unit_code = %s and period_type = 'year'""",
                                                                    (DAY, EA_KTUR))
    card = figures(html, "data-focus-unit", EA_KTUR, "<h2")
    assert card["total_score"] == text.number(total)
    assert card["change"] == text.signed(change)
    assert card["class"] == class_vi and card["rank_district"] == f"{rank}/{peers}" == "7/8"
    assert card["rank_province"] == f"{rank_p}/{count_p}"
    # The six groups.
    groups = query(warehouse, """select ckmb_score, tdgq_score, online_score, tttt_score, mdsh_score, mdhl_score
                                 from marts.fct_unit_scores where business_date = %s and unit_code = %s
                                 and period_type = 'year'""", (DAY, EA_KTUR))[0]
    for code, score in zip(text.GROUPS, groups):
        assert figures(html, "data-group", code, "</tr>")["group_score"] == text.number(score)
    # Every target of the commune: value now, status and gap in dossiers.
    targets = query(warehouse, """select target_id, judged_value, status_code, status_vi, gap_items, unit_of_measure
                                  from marts.mart_target_attainment where business_date = %s and unit_code = %s""",
                    (DAY, EA_KTUR))
    assert len(targets) == 6 and {t[2] for t in targets} <= {"met", "at_risk", "not_met"}
    assert {t[5] for t in targets} == {"percent"}
    for target_id, value, status, status_vi, gap, _ in targets:
        row = re.search(rf'<tr data-target="{target_id}" data-target-unit="{EA_KTUR}">(.*?)</tr>', html, re.S).group(1)
        # The value now carries its unit, as the target beside it does ("Hiện tại" 31,20%, not 31,20).
        now = "—" if value is None else f"{text.number(value)}</span>%"
        assert f'data-figure="target_value_now">{now}' in row
        assert f'data-status="{status}"' in row and f">{status_vi}<" in row
        assert f'data-figure="gap_items">{gap if gap is not None else "—"}<' in row
    assert "Tỷ lệ hồ sơ trực tuyến" in html and "có nguy cơ" in html
    # Each rate says its period: the groups year to date, the day's table the day, each target its measure.
    assert re.search(r'<h2 data-period="year">Điểm sáu nhóm chỉ số <span[^>]*>\(từ 01/01/2024 đến hết 24/11/2024\)', html)
    assert re.search(r'<h2 data-period="day">Chỉ số trong ngày <span[^>]*>\(ngày 24/11/2024\)', html)
    for target_id, *_ in targets:
        row = re.search(rf'<tr data-target="{target_id}" data-target-unit="{EA_KTUR}">(.*?)</tr>', html, re.S).group(1)
        assert re.search(r"10 ngày gần nhất|tháng đến nay|năm đến nay", row), target_id
    # The peers' table: the district's 8 communes by district rank, Ea Ktur highlighted.
    peers_in_html = re.findall(r'<tr data-peer-unit="([^"]+)"( class="me")?>', html)
    assert sorted(code for code, _ in peers_in_html) == COMMUNES
    assert [code for code, me in peers_in_html if me] == [EA_KTUR]
    # Units below the plans' thresholds, as the plan writes them; a list of units above a threshold is
    # not under "Đơn vị dưới ngưỡng" but under its own heading.
    assert "02/08 địa phương có tỷ lệ DVC trực tuyến dưới 50% gồm: xã Ea Tiêu" in html
    comparators = dict(query(warehouse, "select list_code, comparator from reference.peer_lists"))
    below = html[html.index('data-section="lists-below"'):html.index("<h2", html.index('data-section="lists-below"'))]
    above = html[html.index('data-section="lists-above"'):html.index("<h2", html.index('data-section="lists-above"'))]
    assert re.findall(r'data-list="([A-Z0-9_]+)"', below) and \
        {comparators[c] for c in re.findall(r'data-list="([A-Z0-9_]+)"', below)} <= {"<", "<="}
    assert "ONLINE_ABOVE_50" in re.findall(r'data-list="([A-Z0-9_]+)"', above) and "trên 50%" not in below
    assert {comparators[c] for c in re.findall(r'data-list="([A-Z0-9_]+)"', above)} <= {">", ">="}
    assert "Đơn vị trên ngưỡng" in above
    # The day's figures: only the commune's own row carries data-unit markers.
    assert re.findall(r'data-unit="([^"]+)"', html) == [EA_KTUR]
    assert html == unicodedata.normalize("NFC", html)


def test_each_scope_sees_its_units(warehouse, report):
    from chiso.reports.daily import add_technical_facts

    district = Recipient("h@x.vn", "UBND huyện Cư Kuin", Scope("district", DISTRICT))
    province = Recipient("t@x.vn", "Tỉnh", Scope("province", PROVINCE), language="en")
    team = Recipient("d@x.vn", "Nhóm kỹ thuật", Scope("team"))
    html = render_daily(report.for_recipient(district), district).html
    assert set(re.findall(r'data-unit="([^"]+)"', html)) == {DISTRICT, *COMMUNES}
    assert 'data-focus-unit="000.00.27.H15"' in html and "class=\"me\"" not in html
    assert re.findall(r'data-target-unit="([^"]+)"', html) and \
        set(re.findall(r'data-target-unit="([^"]+)"', html)) <= {DISTRICT, *COMMUNES}
    rendered = render_daily(report.for_recipient(province), province)
    assert rendered.subject == "[chiso] Public service index report of 24/11/2024"
    assert f'data-focus-unit="{PROVINCE}"' in rendered.html and "Total score" in rendered.html
    assert len(set(re.findall(r'data-peer-unit="([^"]+)"', rendered.html))) == 9  # district + 8 communes
    assert "Thông tin kỹ thuật" not in rendered.html
    add_technical_facts(report, warehouse)  # what send_daily adds when the team is a recipient
    team_html = render_daily(report.for_recipient(team), team).html
    assert "Thông tin kỹ thuật (nhóm dữ liệu)" in team_html and "<td>dossiers</td>" in team_html


def test_the_message_has_inline_charts_and_stays_small(report):
    from chiso.reports.mail import build_message

    rendered = render_daily(report.for_recipient(COMMUNE), COMMUNE)
    raw = build_message(rendered, "chiso@localhost", COMMUNE.email, "<m@chiso.local>").as_bytes()
    assert len(raw) < 1_000_000
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message.get_content_type() == "multipart/alternative"
    related = next(p for p in message.walk() if p.get_content_type() == "multipart/related")
    html = message.get_body(("html",)).get_content()
    images = [p for p in related.iter_parts() if p.get_content_type() == "image/png"]
    assert len(images) == 2
    for image in images:
        cid = image["Content-ID"].strip("<>")
        assert f'src="cid:{cid}"' in html and image.get_content_disposition() == "inline"
        assert image.get_content().startswith(b"\x89PNG")
    assert "Ea Ktur" in message.get_body(("plain",)).get_content()
    assert str(message["Subject"]).endswith("ngày 24/11/2024")


def test_a_cut_table_keeps_the_readers_row_and_attaches_the_marts_rows(warehouse, report, monkeypatch):
    """Cư Kuin is small, so the limits are lowered: what a national commune or province gets (the rows it
    needs, a sentence saying how many were left out, every row in the attached workbook) on the marts."""
    from openpyxl import load_workbook

    from chiso.reports import daily

    for name, value in (("RANKING_ROWS_MAX", 4), ("RANKING_ENDS", 1), ("RANKING_NEIGHBOURS", 1),
                        ("DAY_ROWS_MAX", 3), ("DAY_ROWS_WORST", 2)):
        monkeypatch.setattr(daily, name, value)
    rendered = render_daily(report.for_recipient(COMMUNE), COMMUNE)
    html = rendered.html
    shown = re.findall(r'<tr data-peer-unit="([^"]+)"( class="me")?>', html)
    marts = {code: (rank, total) for code, rank, total in query(warehouse, """
        select unit_code, rank_in_district, total_score from marts.fct_unit_scores
        where business_date = %s and period_type = 'year' and district_unit_code = %s and unit_kind = 'COMMUNE'""",
                                                                   (DAY, DISTRICT))}
    by_rank = sorted(marts, key=lambda code: marts[code][0])
    # The first, the last, and Ea Ktur (7/8) with its neighbours; the others are counted, not dropped.
    assert [code for code, _ in shown] == [by_rank[0], by_rank[5], EA_KTUR, by_rank[7]]
    assert [code for code, me in shown if me] == [EA_KTUR]
    assert re.findall(r'<tr data-skipped="(\d+)">', html) == ["4"]
    assert ('data-cut="ranking" data-shown="4" data-total="8" data-left-out="4">Bảng chỉ hiển thị 4/8 đơn vị: '
            '1 đơn vị đứng đầu và 1 đơn vị đứng cuối, cùng các đơn vị xếp hạng gần xã Ea Ktur; 4 đơn vị còn lại '
            'có trong tệp đính kèm chiso-2024-11-24-000-37-27-h15-bang-day-du.xlsx (trang “Xếp hạng”).') in html
    for code in (code for code, _ in shown):
        row = re.search(rf'<tr data-peer-unit="{code}"[^>]*>(.*?)</tr>', html, re.S).group(1)
        assert f'data-figure="rank">{marts[code][0]}/8<' in row
        assert f'data-figure="total_score">{text.number(marts[code][1])}<' in row
    attachment, = rendered.attachments
    assert attachment.filename == "chiso-2024-11-24-000-37-27-h15-bang-day-du.xlsx"
    sheet = load_workbook(io.BytesIO(attachment.data))["Xếp hạng"]
    header, *rows = sheet.iter_rows(values_only=True)
    assert header[:2] == ("Mã đơn vị", "Đơn vị")
    assert {row[0]: (row[4], Decimal(str(row[6]))) for row in rows} == marts   # every commune, the marts' figures
    assert "Bảng đầy đủ trong tệp đính kèm: chiso-2024-11-24-000-37-27-h15-bang-day-du.xlsx." in rendered.text

    # The district's day table: its own row and the two lowest on-time rates of the day (dossiers ended or
    # fallen due that day, mart_day_on_time); all nine in the workbook.
    district = Recipient("h@x.vn", "UBND huyện Cư Kuin", Scope("district", DISTRICT))
    rendered = render_daily(report.for_recipient(district), district)
    day = {code: (numerator, denominator, rate) for code, numerator, denominator, rate in query(warehouse, """
        select unit_code, numerator, denominator, rate from marts.mart_day_on_time
        where business_date = %s and measure_code = 'DAY_ON_TIME' and unit_code = any(%s)""",
                                                                                (DAY, [DISTRICT, *COMMUNES]))}
    assert len(day) == 9 and min(rate for _n, _d, rate in day.values()) < 100   # not 100 by construction
    shown = re.findall(r'<tr data-unit="([^"]+)"', rendered.html)
    left_out = set(day) - set(shown)
    assert shown[0] == DISTRICT and len(shown) == 3
    assert max(day[code][2] for code in shown[1:]) <= min(day[code][2] for code in left_out)
    assert 'data-cut="day" data-shown="3" data-total="9" data-left-out="6"' in rendered.html
    workbook = load_workbook(io.BytesIO(rendered.attachments[0].data))
    header, *rows = workbook["Chỉ số trong ngày"].iter_rows(values_only=True)
    columns = {name: index for index, name in enumerate(header)}
    on_time = [name for name in header if name.endswith("(%)") and name.startswith("Tỷ lệ hồ sơ đúng hạn trong ngày")]
    assert len(on_time) == 1 and {row[0] for row in rows} == set(day)
    for row in rows:
        numerator, denominator, rate = day[row[0]]
        assert (None if row[columns[on_time[0]]] is None else Decimal(str(row[columns[on_time[0]]]))) == rate
        assert row[columns[on_time[0]] + 1] == numerator and row[columns[on_time[0]] + 2] == denominator


# ----------------------------------------------------------------------------- campaign reports

def test_reports_fall_due_on_the_plans_days(warehouse):
    starts = campaign.campaigns(warehouse)
    assert {plan: (c.start, c.rhythm.every_days, c.rhythm.interim_day, c.rhythm.final_day)
            for plan, c in starts.items()} == {PLAN: (date(2024, 11, 15), 10, 30, 60),
                                               "KH_IATOR_100NGAY_2024": (date(2024, 3, 22), 10, 50, 100)}
    assert "định kỳ 10 ngày/lần, sơ kết 30 ngày" in starts[PLAN].rhythm.source_vi
    # The warehouse's reference tables schedule what the seed files say (the check reads the files).
    assert starts == campaign.campaigns_from_seeds()
    due = {d: [(r.plan_id, r.kind, r.number) for r in campaign.due_on(d, starts)] for d in (
        date(2024, 11, 14), date(2024, 11, 23), date(2024, 11, 24), date(2024, 12, 4), date(2024, 12, 12),
        date(2024, 12, 14), date(2025, 1, 3), date(2025, 1, 12), date(2025, 1, 13), date(2025, 1, 23),
        date(2024, 5, 8), date(2024, 5, 10), date(2024, 6, 29))}
    assert due == {
        date(2024, 11, 14): [], date(2024, 11, 23): [],
        date(2024, 11, 24): [(PLAN, "periodic", 1)], date(2024, 12, 4): [(PLAN, "periodic", 2)],
        # „sơ kết 30 ngày đêm (trước ngày 14/12/2024)“: figures to 12/12, sent on the 13th; it replaces
        # periodic report 3, so nothing is due on day 30.
        date(2024, 12, 12): [(PLAN, "interim", 30)], date(2024, 12, 14): [],
        date(2025, 1, 3): [(PLAN, "periodic", 5)],
        date(2025, 1, 12): [(PLAN, "final", 60)], date(2025, 1, 13): [],   # „trước ngày 14/01/2025“
        date(2025, 1, 23): [],
        date(2024, 5, 8): [("KH_IATOR_100NGAY_2024", "interim", 50)], date(2024, 5, 10): [],
        date(2024, 6, 29): [("KH_IATOR_100NGAY_2024", "final", 100)]}
    first = campaign.due_on(DAY, starts)[0]
    assert first.period_label() == "Từ 15/11/2024 đến 24/11/2024 (ngày 10/60 của chiến dịch)"
    assert first.title() == "Báo cáo định kỳ 10 ngày (kỳ 1)"
    interim, = campaign.due_on(date(2024, 12, 12), starts)
    assert (interim.title(), interim.period_label(), interim.deadline_label()) == (
        "Báo cáo sơ kết 30 ngày", "Từ 15/11/2024 đến 12/12/2024 (ngày 28/60 của chiến dịch)",
        "Hạn báo cáo: trước ngày 14/12/2024; số liệu đến hết ngày 12/12/2024.")


def test_the_excel_annex_equals_the_mart(warehouse):
    from openpyxl import load_workbook

    due, = campaign.due_reports(DAY, warehouse)
    built = campaign.build_campaign_report(due, warehouse)
    workbook = load_workbook(io.BytesIO(campaign.excel_annex(built)))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{due.file_stem()}.xlsx").write_bytes(campaign.excel_annex(built))
    sheets = [workbook[name] for name in workbook.sheetnames if name.startswith("Phụ lục I")]
    assert [s.title for s in sheets] == ["Phụ lục I", "Phụ lục I (2)", "Phụ lục I (3)"]
    assert all(s["A1"].value == "Phụ lục I: Kết quả thực hiện chỉ tiêu của các đơn vị" for s in sheets)
    mart = {(u, i, m): (b, t, v, s) for u, i, m, b, t, v, s in query(warehouse, """
        select unit_code, indicator_code, measure_period, coalesce(baseline_value, baseline_from_data),
               target_value, judged_value, status_vi
        from marts.mart_target_attainment where plan_id = %s and business_date = %s""", (PLAN, DAY))}
    names = dict(query(warehouse, "select unit_name, unit_code from marts.dim_units"))
    # Header: row 6 one merged title per block, row 7 the four columns; units from row 8. At most three
    # indicators (14 columns) a sheet, in the annex's order across the sheets.
    blocks, cells_of = [], []
    for sheet in sheets:
        assert sheet.max_column <= 2 + 4 * campaign.ANNEX_BLOCKS_PER_SHEET
        for column in range(3, sheet.max_column + 1, 4):
            assert [sheet.cell(7, column + k).value.split(" ")[0] for k in range(4)] == ["Cơ", "Chỉ", "Hiện", "Đánh"]
            blocks.append(sheet.cell(6, column).value)
            cells_of.append((sheet, column))
    assert blocks[0].startswith("Tỷ lệ hồ sơ thanh toán trực tuyến (%)")   # the annex's order: payment,
    assert blocks[1].startswith("Tỷ lệ hồ sơ trực tuyến (%)")              # then online
    by_title = {b.indicator_code: b for b in built.blocks()}
    codes = [b.indicator_code for b in built.blocks()]
    assert len(codes) == len(blocks)
    seen = 0
    for (sheet, column), code in zip(cells_of, codes):
        for line in range(8, sheet.max_row + 1):
            unit = names[sheet.cell(line, 2).value]
            cells = [sheet.cell(line, column + k).value for k in range(4)]
            expected = mart.get((unit, code, by_title[code].measure_period))
            if expected is None:
                assert cells == [None] * 4
                continue
            baseline, target, value, status = expected
            assert cells == [None if baseline is None else float(baseline), float(target),
                             None if value is None else float(value), status], (unit, code)
            seen += 1
    assert seen == len(mart) == 54  # 8 communes × 6 targets + the district's 6
    ea_ktur_online = mart[(EA_KTUR, "ONLINE_DOSSIER_SHARE", "trailing_10d")]
    assert ea_ktur_online[:2] == (Decimal("29.9"), Decimal("34.9"))     # Phụ lục I: 29,9% → 34,9%
    detail = workbook["Chi tiết"]
    header, *rows = list(detail.iter_rows(values_only=True))
    assert len(rows) == len(mart)
    # Vietnamese headers, no snake_case; the measure in words; dates as dates shown dd/mm/yyyy.
    assert "Giá trị hiện tại" in header and "Mã đơn vị" in header and not any("_" in h for h in header)
    measures = {text.measure_name(m): m for _u, _i, m in mart}
    for values in rows:
        row = dict(zip(header, values))
        key = (row["Mã đơn vị"], row["Mã chỉ số"], measures[row["Cách đo"]])
        assert row["Giá trị hiện tại"] == (None if mart[key][2] is None else float(mart[key][2]))
        assert row["Đánh giá"] == mart[key][3]
    for column, (_name, _vi, _en, kind) in enumerate(campaign.DETAIL_COLUMNS, start=1):
        if kind == "date":
            dated = [detail.cell(line, column) for line in range(2, detail.max_row + 1)
                     if detail.cell(line, column).value is not None]
            assert dated and all(cell.is_date and cell.number_format == "dd/mm/yyyy" for cell in dated)


def test_the_excel_annex_prints_on_a4_landscape(warehouse):
    """Every sheet of the annex, read back with openpyxl: A4 landscape, fitted to one page wide, the
    header rows repeated on each page, margins under 2 cm, page numbers."""
    from openpyxl import load_workbook

    due, = campaign.due_reports(DAY, warehouse)
    built = campaign.build_campaign_report(due, warehouse)
    workbook = load_workbook(io.BytesIO(campaign.excel_annex(built)))
    assert len(workbook.sheetnames) == 4
    # The plan's internal recipients get two more: by field and by official (test_who_did_what).
    internal = Recipient("huyen@cukuin.example.vn", "UBND huyện Cư Kuin", Scope("district", DISTRICT),
                         roles=("002-UBND-HUYEN",))
    with_who = load_workbook(io.BytesIO(campaign.excel_annex(built, "vi", built.who_for(internal))))
    assert with_who.sheetnames[4:] == ["Theo lĩnh vực", "Theo cán bộ"]
    for sheet in workbook.worksheets + with_who.worksheets[4:]:
        setup = sheet.page_setup
        assert (setup.orientation, str(setup.paperSize)) == ("landscape", "9"), sheet.title   # 9: A4
        assert sheet.sheet_properties.pageSetUpPr.fitToPage and setup.fitToWidth == 1 and setup.fitToHeight == 0
        assert max(sheet.page_margins.left, sheet.page_margins.right) <= 0.75
        assert "&P" in sheet.oddFooter.center.text
        expected_titles = {"Theo lĩnh vực": "$5:$5", "Theo cán bộ": "$5:$5"}.get(   # under a 4-line heading
            sheet.title, "$6:$7" if sheet.title.startswith("Phụ lục") else "$1:$1")
        assert sheet.print_title_rows == expected_titles, sheet.title
        if sheet.title.startswith("Phụ lục"):
            assert sheet.print_title_cols == "$A:$B"


# ----------------------------------------------------------------------------- exactly once

def smtp_connection(catcher: MailCatcher) -> str:
    return json.dumps({"conn_type": "smtp", "host": catcher.host, "port": catcher.port,
                       "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "chiso@localhost",
                                 "retry_limit": 0, "timeout": 5}})


def by_recipient(catcher: MailCatcher, subject_part: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in catcher.messages():
        if subject_part in str(message["Subject"]):
            counts[str(message["To"])] = counts.get(str(message["To"]), 0) + 1
    return counts


def test_an_smtp_outage_sends_nothing_twice(warehouse, recipients, tmp_path, monkeypatch, capsys):
    from chiso.orchestration import pipeline
    from chiso.reports import __main__ as cli

    monkeypatch.setenv("CHISO_WAREHOUSE_URL", warehouse)
    folder = tmp_path / "mail"
    emails = sorted(r.email for r in recipients)
    with MailCatcher(folder) as first:
        port = first.port
        monkeypatch.setenv("AIRFLOW_CONN_CHISO_SMTP", smtp_connection(first))
    # The server is down: the task fails loudly, nothing is recorded.
    with pytest.raises(DeliveryFailed, match=r"NOT sent to 4 recipient\(s\).*ConnectionRefusedError"):
        pipeline.send_daily_report(DAY)
    assert query(warehouse, "select count(*) from ops.report_deliveries") == [(0,)]

    # It comes back, then goes down again after the first message: the one served is recorded.
    with MailCatcher(folder, port=port) as catcher:
        from chiso.reports import send as send_module

        real = send_module.SmtpHookMailer.send
        calls = []

        def flaky(self, message):
            calls.append(message["To"])
            if len(calls) > 1:
                raise ConnectionResetError("the server went away")
            real(self, message)

        monkeypatch.setattr(send_module.SmtpHookMailer, "send", flaky)
        with pytest.raises(DeliveryFailed) as failure:
            pipeline.send_daily_report(DAY)
        assert "NOT sent to 3 recipient(s)" in str(failure.value) and "Sent now to 1" in str(failure.value)
        monkeypatch.setattr(send_module.SmtpHookMailer, "send", real)
        served = [r for (r,) in query(warehouse, "select recipient from ops.report_deliveries")]
        assert served == [calls[0]]

        # The retry serves the other three only; a re-run and a backfill send nothing.
        delivery = pipeline.send_daily_report(DAY)
        assert sorted(delivery["sent"]) == sorted(set(emails) - set(served)) and delivery["already_sent"] == served
        again = pipeline.send_daily_report(DAY)
        assert again["sent"] == [] and sorted(again["already_sent"]) == emails
        assert pipeline.publish(DAY, again) is True and pipeline.publish(DAY, again) is False
        assert by_recipient(catcher, "ngày 24/11/2024") == {e: 1 for e in emails}

        # The campaign report of the day: once per recipient who sees the plan's units.
        assert pipeline.campaign_reports_due(DAY) == [f"campaign/{PLAN}/periodic"]
        sent = pipeline.send_campaign_reports(DAY)
        assert sorted(sent[f"campaign/{PLAN}/periodic"]["sent"]) == sorted(
            e for e in emails if e != "data@chiso.example.vn")
        assert pipeline.send_campaign_reports(DAY)[f"campaign/{PLAN}/periodic"]["sent"] == []
        assert set(by_recipient(catcher, "Báo cáo định kỳ 10 ngày (kỳ 1)").values()) == {1}
        assert query(warehouse, "select recipients from ops.publications where report_code = %s",
                     (f"campaign/{PLAN}/periodic",)) == [(3,)]
        assert pipeline.send_campaign_reports(date(2024, 11, 23)) == {}

        # A deliberate re-send, documented: one more message, logged with its reason.
        assert cli.main(["resend", "--date", str(DAY), "--to", COMMUNE.email, "--reason", "thư bị mất",
                         "--smtp", f"{catcher.host}:{catcher.port}"]) == 0
        assert by_recipient(catcher, "ngày 24/11/2024")[COMMUNE.email] == 2
        assert query(warehouse, "select report_code, recipient, reason from ops.report_resends") == [
            (REPORT_CODE, COMMUNE.email, "thư bị mất")]
        resent = [m for m in catcher.messages() if m["X-Chiso-Resend"]]
        assert len(resent) == 1 and str(resent[0]["X-Chiso-Resend"]) == "thư bị mất"
    capsys.readouterr()
    assert cli.main(["ledger", "--date", str(DAY)]) == 0
    ledger = capsys.readouterr().out
    assert ledger.count(f"campaign/{PLAN}/periodic") == 3 and "re-sent: thư bị mất" in ledger



def test_parallel_rendering_sends_each_recipient_once_through_a_failure(warehouse, tmp_path, monkeypatch):
    """A night rendered and sent by worker processes: a message a worker cannot render and messages the
    server drops fail only their recipients; the ledger holds exactly what the server accepted; the
    retry serves the others once; the messages are the ones rendered one by one."""
    from chiso.reports import send as send_module
    from chiso.reports.mail import SmtplibMailer

    day = date(2024, 11, 23)   # not DAY: the outage test's ledger is its own
    subject = "ngày 23/11/2024"
    everyone = load_recipients_text(RECIPIENTS_YML) + [
        Recipient(f"xa{code[4:6]}@cukuin.example.vn", f"UBND xã {code}", Scope("commune", code))
        for code in COMMUNES]
    emails = sorted(r.email for r in everyone)
    monkeypatch.setattr(send_module, "PARALLEL_FROM", 2)
    broken = "xa33@cukuin.example.vn"
    real_message = send_module.daily_message

    def cannot_render(report, recipient, sender, message_id):  # forked into the workers with the patch
        if recipient.email == broken:
            raise ValueError("a chart could not be drawn")
        return real_message(report, recipient, sender, message_id)

    refused = {f"xa{n}@cukuin.example.vn" for n in (35, 36, 37, 38)}

    class GoesAway(SmtplibMailer):
        """The server drops the connection on the last four communes, whichever worker sends them."""

        def send(self, message):
            if message["To"] in refused:
                self.close()
                raise ConnectionResetError("the server went away")
            super().send(message)

    with MailCatcher(tmp_path / "mail") as catcher:
        monkeypatch.setattr(send_module, "daily_message", cannot_render)
        with pytest.raises(DeliveryFailed) as failure:
            send_module.send_daily(day, GoesAway(catcher.host, catcher.port), warehouse, everyone, workers=2)
        assert f"{broken}: WorkerFailed: ValueError: a chart could not be drawn" in str(failure.value)
        assert all(f"{email}: WorkerFailed: ConnectionResetError" in str(failure.value) for email in refused)
        assert "NOT sent to 5 recipient(s)" in str(failure.value) and "Sent now to 7" in str(failure.value)
        ledger = [r for (r,) in query(warehouse, "select recipient from ops.report_deliveries "
                                                 "where business_date = %s", (day,))]
        assert sorted(ledger) == sorted(set(emails) - refused - {broken}) == sorted(by_recipient(catcher, subject))

        monkeypatch.setattr(send_module, "daily_message", real_message)
        retry = send_module.send_daily(day, SmtplibMailer(catcher.host, catcher.port), warehouse, everyone, workers=2)
        assert sorted(retry["sent"]) == sorted(set(emails) - set(ledger)) and sorted(retry["already_sent"]) == \
            sorted(ledger)
        again = send_module.send_daily(day, SmtplibMailer(catcher.host, catcher.port), warehouse, everyone, workers=2)
        assert again["sent"] == [] and sorted(again["already_sent"]) == emails
        assert by_recipient(catcher, subject) == {e: 1 for e in emails}
        assert sorted(r for (r,) in query(warehouse, "select recipient from ops.report_deliveries "
                                                     "where business_date = %s", (day,))) == emails
        # What the workers rendered is what this process renders, recipient by recipient.
        report = build_daily_report(day, warehouse)
        add_technical_facts(report, warehouse)
        for message in catcher.messages():
            recipient = next(r for r in everyone if r.email == str(message["To"]))
            expected = render_daily(report.for_recipient(recipient), recipient, str(message["From"]))
            html = message.get_body(("html",)).get_content().replace("\r\n", "\n")   # the wire's line ends
            assert html.rstrip("\n") == expected.html.rstrip("\n")
            assert [part.get_content() for part in message.walk() if part.get_content_type() == "image/png"] == \
                [image.data for image in expected.images]


def load_recipients_text(text_yml: str) -> list[Recipient]:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "recipients.yml"
        path.write_text(text_yml, encoding="utf-8")
        return load_recipients(path)


# ----------------------------------------------------------------------------- seen as a person sees it

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Headless Chromium never lays a window out narrower than 500 px, so the page is shown in an iframe of
# the wanted width (its own viewport: media queries see 390 px) and the screenshot is cropped to it.
# The probe runs inside the page and posts what the browser made of it to the harness.
PROBE = """<script>
window.addEventListener('load', function () {
  var images = Array.prototype.map.call(document.images, function (i) { return i.complete ? i.naturalWidth : -1; });
  // Tables scroll inside their box on a phone: a box wider inside than outside hides columns.
  var hidden = Array.prototype.filter.call(document.querySelectorAll('.scroll'), function (box) {
    return box.scrollWidth > box.clientWidth + 1; }).map(function (box) { return box.innerText.slice(0, 60); });
  parent.postMessage(JSON.stringify({images: images, viewport: window.innerWidth, hidden: hidden,
    innerWidth: window.innerWidth, scrollingWidth: document.scrollingElement.scrollWidth,
    scrollWidth: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight,
    text: document.body.innerText}), '*');
});
</script>"""
HARNESS = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0;background:#fff;">
<iframe src="{page}" style="border:0;display:block;width:{width}px;height:{height}px;" scrolling="no"></iframe>
<script>window.addEventListener('message', function (e) {{
  document.documentElement.setAttribute('data-probe', e.data); }});</script></body></html>"""


def _chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--no-first-run", "--disable-dev-shm-usage", "--virtual-time-budget=8000", *args],
                          capture_output=True, text=True, timeout=120)


def see(page: Path, width: int, name: str) -> dict:
    """Load the page at ``width`` px, read what the browser made of it, and screenshot all of it."""
    from PIL import Image

    probed = page.with_name(f"probe-{page.name}")
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    harness = page.with_name(f"harness-{width}-{page.name}")
    window = max(width, 500)
    harness.write_text(HARNESS.format(page=probed.name, width=width, height=900), encoding="utf-8")
    dom = _chromium(f"--window-size={window},900", "--dump-dom", harness.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'data-probe="([^"]*)"', dom.stdout)
    assert found, f"the page did not finish loading: {dom.stdout[:500]}"
    probe = json.loads(found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
                       .replace("&amp;", "&"))
    assert probe["viewport"] == width
    height = min(probe["height"] + 10, 16000)
    harness.write_text(HARNESS.format(page=page.name, width=width, height=height), encoding="utf-8")
    shot = ARTIFACTS / f"{name}-{width}px.png"
    result = _chromium(f"--window-size={window},{height}", f"--screenshot={shot}", harness.as_uri())
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    with Image.open(shot) as image:
        cropped = image.crop((0, 0, width, image.height))
    cropped.save(shot, optimize=True)
    print(f"\nscreenshot: {shot}")
    return probe


def _check_screenshot(path: Path, width: int) -> None:
    from PIL import Image

    with Image.open(path) as image:
        assert image.width == width and image.height > 800
        colours = image.convert("RGB").resize((60, 200)).getcolors(maxcolors=100_000)
        assert len(colours) > 50  # text, tables, charts: not a blank page


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium (Debian package 'chromium') is not installed; "
                                             ".ci/run installs it on CI")
def test_both_reports_seen_in_chromium_at_phone_and_desktop_widths(warehouse, report):
    from chiso.reports.__main__ import write_rendered

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    daily_page = write_rendered(render_daily(report.for_recipient(COMMUNE), COMMUNE), ARTIFACTS / "daily")
    due, = campaign.due_reports(DAY, warehouse)
    rendered = campaign.render_campaign(campaign.build_campaign_report(due, warehouse), COMMUNE)
    periodic_page = write_rendered(rendered, ARTIFACTS / "periodic")
    printable = periodic_page.with_name(f"{due.file_stem()}.html")  # the attachment for printing
    assert printable.exists()
    district = Recipient("h@x.vn", "UBND huyện Cư Kuin", Scope("district", DISTRICT))
    district_page = write_rendered(render_daily(report.for_recipient(district), district), ARTIFACTS / "district")
    province = Recipient("t@x.vn", "Văn phòng UBND tỉnh", Scope("province", PROVINCE))
    province_page = write_rendered(render_daily(report.for_recipient(province), province), ARTIFACTS / "province")
    heights = {}
    for page, name, must_read in (
            (daily_page, "daily-email", ("Tỷ lệ hồ sơ trực tuyến", "Khá", "Xếp hạng trong huyện", "7/8",
                                         "có nguy cơ", "Điểm sáu nhóm chỉ số", "Chủ nhật 24/11/2024 là ngày nghỉ",
                                         "Vì sao điểm thay đổi", "không có hồ sơ")),
            (district_page, "district-email", ("Tổng hợp theo chỉ tiêu", "Chưa đạt (đơn vị)",
                                               "Tỷ lệ hồ sơ đúng hạn trong ngày")),
            (province_page, "province-email", ("Điểm từng nhóm (% điểm tối đa)", "UBND tỉnh Đắk Lắk")),
            (periodic_page, "periodic-report", ("Báo cáo định kỳ 10 ngày (kỳ 1)", "Tỷ lệ hồ sơ trực tuyến",
                                                "Phụ lục I", "xã Ea Ktur", "Đánh giá")),
            (printable, "periodic-report-printable", ("Phụ lục I", "Tỷ lệ hồ sơ thanh toán trực tuyến"))):
        for width in (390, 1200):
            probe = see(page, width, name)
            assert probe["images"] and all(w > 0 for w in probe["images"]), f"{name}: an image did not load"
            for words in must_read:
                assert words in probe["text"], f"{name} at {width}px lost {words!r}"
            assert probe["scrollWidth"] <= width, f"{name} is wider than {width}px: {probe['scrollWidth']}"
            assert probe["scrollingWidth"] <= probe["innerWidth"]
            if name.endswith("email"):
                # No table of the nightly e-mail hides columns behind a scroll at 390 px (the day table did).
                assert probe["hidden"] == [], f"{name} at {width}px scrolls inside: {probe['hidden']}"
                assert not re.search(r"(?<![\d/])0/0(?![\d/])", probe["text"])
                assert not re.search(r"(?<![\d/])1/1 ", probe["text"])
                heights[(name, width)] = probe["height"]
            _check_screenshot(ARTIFACTS / f"{name}-{width}px.png", width)
    # The district's e-mail, once a 37-row all-red table 10,000 px tall on a phone, is a summary and the
    # 10 largest gaps: not much longer than the commune's.
    assert heights[("district-email", 390)] < 2 * heights[("daily-email", 390)]
    print(f"\nreport screenshots and files: {ARTIFACTS}  heights: {heights}")


def test_the_shipped_recipients_name_units_of_the_demo_world(report):
    from chiso.reports.recipients import check_scopes

    shipped = load_recipients(REPO_ROOT / "config" / "recipients.yml")
    served = check_scopes(shipped, report.catalogue)
    assert {"chutich@eaktur.example.vn", "huyen@cukuin.example.vn"} <= {r.email for r in served}
    assert {r.scope.kind for r in served} == {"province", "district", "commune", "team"}
    # Seed 002's compiler and all 8 communes are served here; Ia Tôr's and Đăk Rve's recipients (other
    # worlds) are left out of this warehouse's sends, not refused.
    assert {r.scope.unit_code for r in served if r.scope.kind == "commune"} == set(COMMUNES)
    assert "phongvhtt@cukuin.example.vn" in {r.email for r in served}
    left_out = {r.email for r in shipped} - {r.email for r in served}
    assert left_out == {r.email for r in shipped if r.scope.unit_code and r.scope.unit_code not in report.catalogue}
    assert {"congan@chuprong.example.vn", "ubnd@iator.example.vn", "chutich@dakrve.example.vn"} <= left_out


def test_the_campaign_report_reaches_every_recipient_the_plan_names(warehouse, tmp_path, monkeypatch, caplog):
    """Seed 002's compiler (Phòng Văn hóa và Thông tin), UBND huyện, Công an huyện, Sở TT&TT and all 8
    communes get the periodic report, from the shipped file; a role left out of the file is said."""
    import logging

    from chiso.reports.recipients import load_plan_roles
    from chiso.reports.send import send_campaign_reports

    roles = {k: r for k, r in load_plan_roles().items() if r.plan_id == PLAN and "campaign" in r.reports}
    shipped = load_recipients(REPO_ROOT / "config" / "recipients.yml")
    expected = {r.email for r in shipped if set(r.roles) & set(roles)}
    assert len(expected) >= 12 and "phongvhtt@cukuin.example.vn" in expected
    monkeypatch.setenv("CHISO_WAREHOUSE_URL", warehouse)
    with MailCatcher(tmp_path / "mail") as catcher, caplog.at_level(logging.WARNING, "chiso.reports.send"):
        monkeypatch.setenv("AIRFLOW_CONN_CHISO_SMTP", smtp_connection(catcher))
        result = send_campaign_reports(DAY, url=warehouse, recipients=shipped)[f"campaign/{PLAN}/periodic"]
        delivered = set(result["sent"]) | set(result["already_sent"])
        assert expected <= delivered
        assert not any(e.endswith(("chuprong.example.vn", "iator.example.vn", "dakrve.example.vn")) for e in delivered)
        assert set(by_recipient(catcher, "Báo cáo định kỳ 10 ngày (kỳ 1)")) == set(result["sent"])
        assert "no entry of the recipients file serves" not in caplog.text
        # Without the compiler's entry the report still goes to the others, and the log names the role.
        without = [r for r in shipped if r.email != "phongvhtt@cukuin.example.vn"]
        send_campaign_reports(DAY, url=warehouse, recipients=without)
    assert "names Phòng Văn hóa và Thông tin huyện Cư Kuin (district 000.00.27.H15)" in caplog.text
    assert "role 002-PHONG-VHTT" in caplog.text


def test_every_email_says_who_sent_it_and_how_to_stop(warehouse, report):
    """The footer names the sender (the From address), the reader and why they get it, and how to stop;
    List-Unsubscribe says the same to the mail client. Both reports, HTML and plain text."""
    from chiso.reports.send import _message, daily_message

    sender = "Nhóm dữ liệu <dulieu@chiso.example.vn>"
    outgoing = daily_message(report, COMMUNE, sender, "<footer@chiso.local>")
    built = campaign.build_campaign_report(campaign.due_reports(DAY, warehouse)[0], warehouse)
    campaign_outgoing = _message(campaign.render_campaign(built, COMMUNE, sender), sender, COMMUNE,
                                 "<footer-campaign@chiso.local>", "campaign/x/periodic", DAY)
    for raw in (outgoing.raw, campaign_outgoing.raw):
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert str(message["List-Unsubscribe"]).strip() == \
            "<mailto:dulieu@chiso.example.vn?subject=Ng%E1%BB%ABng%20nh%E1%BA%ADn>"
        html = message.get_body(("html",)).get_content()
        footer = html[html.index('data-section="footer"'):]
        plain = message.get_body(("plain",)).get_content()
        for words in ("Người gửi: hệ thống báo cáo chiso (nhóm kỹ thuật dữ liệu) &lt;dulieu@chiso.example.vn&gt;.",
                      "Thư gửi tới Chủ tịch UBND xã Ea Ktur (chutich@eaktur.example.vn) vì địa chỉ này có trong "
                      "danh sách nhận báo cáo.",
                      "trả lời thư này với tiêu đề „Ngừng nhận“"):
            assert words in footer
            assert words.replace("&lt;", "<").replace("&gt;", ">") in plain


def test_the_campaign_charts_compare_units_on_one_scale(warehouse):
    """The district's 100% payment target is not drawn beside the communes' 5%: each chart holds the
    communes, on an axis that fits their figures, with ticks in decimal commas."""
    from chiso.reports import charts

    built = campaign.build_campaign_report(campaign.due_reports(DAY, warehouse)[0], warehouse)
    blocks = {b.indicator_code: b for b in built.blocks() if b.baseline_date is not None}
    assert set(blocks) == {"DOSSIER_ONLINE_PAYMENT", "ONLINE_DOSSIER_SHARE"}
    payment = blocks["DOSSIER_ONLINE_PAYMENT"]
    assert DISTRICT in {r.unit_code for r in payment.rows}                       # in the table …
    rows = campaign.chart_rows(payment, built.catalogue)
    assert sorted(r.unit_code for r in rows) == COMMUNES                          # … not in the chart
    figures = [(r.unit_name, float(r.judged_value), float(r.target_value), float(r.baseline)) for r in rows]
    limit = charts.percent_axis_limit(figures)
    largest = max(v for _, *values in figures for v in values)
    assert largest < limit < 10           # the 5% targets fill the chart (the axis used to run to 105)
    online = [(r.unit_name, float(r.judged_value), float(r.target_value), float(r.baseline))
              for r in campaign.chart_rows(blocks["ONLINE_DOSSIER_SHARE"], built.catalogue)]
    assert max(v for _, *values in online for v in values) < charts.percent_axis_limit(online) <= 105
    assert [charts.axis_label(v) for v in (0.0, 2.5, 5.0, 60.0, 0.25)] == ["0", "2,5", "5", "60", "0,25"]
    images = campaign.draw_charts(built)
    assert set(images) == {"DOSSIER_ONLINE_PAYMENT.trailing_10d", "ONLINE_DOSSIER_SHARE.trailing_10d"}
    assert all(image.data.startswith(b"\x89PNG") for image in images.values())


# ----------------------------------------------------------------------------- figures no leader can misread

def test_the_days_on_time_figure_judges_what_the_day_decided(warehouse, report):
    """mart_day_on_time against a calculation from the dossiers: each day, the dossiers that ended (on time
    when on/before the effective due date with at most one supplement) and those that fell overdue while
    open. It is not 100 by construction, and the e-mail shows the mart's figure."""
    dossiers = query(warehouse, """select unit_code, ended_at, ended_date, effective_due_at, supplement_request_count,
                                          overdue_from_date
                                   from marts.fct_dossiers where is_received and unit_code = any(%s)""",
                     ([DISTRICT, *COMMUNES],))
    expected: dict[tuple[date, str], list[int]] = {}
    for unit, ended_at, ended_date, due_at, supplements, overdue_from in dossiers:
        if ended_at is not None:
            on_time = due_at is None or (ended_at <= due_at and (supplements or 0) <= 1)
            counts = expected.setdefault((ended_date, unit), [0, 0])
            counts[0] += on_time
            counts[1] += 1
        if overdue_from is not None and (ended_date is None or ended_date > overdue_from):
            expected.setdefault((overdue_from, unit), [0, 0])[1] += 1
    expected = {key: tuple(v) for key, v in expected.items() if FIRST <= key[0] <= DAY}
    mart = {(day, unit): (numerator, denominator) for day, unit, numerator, denominator in query(warehouse, """
        select business_date, unit_code, numerator, denominator from marts.mart_day_on_time
        where unit_code = any(%s)""", ([DISTRICT, *COMMUNES],))}
    assert mart == expected
    assert any(numerator < denominator for numerator, denominator in mart.values())
    district = Recipient("h@x.vn", "UBND huyện Cư Kuin", Scope("district", DISTRICT))
    html = render_daily(report.for_recipient(district), district).html
    for (day, unit), (numerator, denominator) in mart.items():
        if day == DAY:
            row = re.search(rf'<tr data-unit="{unit}">(.*?)</tr>', html, re.S).group(1)
            cell = re.search(r'data-indicator="DAY_ON_TIME">(.*?)</td>', row, re.S).group(1)
            assert f"{text.number(Decimal(100 * numerator) / denominator)}</strong>" in cell
            assert f">{numerator}/{denominator}<" in cell
    assert ">0/0<" not in html and not re.search(r">0,00</strong>", html)   # never "0,00 (0/0)"


def test_a_day_off_is_said_and_an_empty_day_is_no_zero(warehouse, report):
    """24/11/2024 is a Sunday: the e-mail says so under the title; a unit without dossiers that day reads
    '— không có hồ sơ'. A working day has no such notice; holidays and days off in lieu are named."""
    from chiso.core.calendar import WorkingCalendar, day_off_reason

    html = render_daily(report.for_recipient(COMMUNE), COMMUNE).html
    notice = re.search(r'<p data-section="day-off"[^>]*>(.*?)</p>', html, re.S).group(1)
    assert notice.startswith("Chủ nhật 24/11/2024 là ngày nghỉ của cơ quan hành chính nhà nước")
    assert 'data-indicator="ONLINE_DOSSIER_SHARE">' in html
    online = re.search(r'data-indicator="ONLINE_DOSSIER_SHARE">(.*?)</td>', html, re.S).group(1)
    received = query(warehouse, "select count(*) from marts.fct_dossiers where unit_code = %s and received_date = %s "
                                "and is_received", (EA_KTUR, DAY))[0][0]
    if received == 0:
        assert "không có hồ sơ" in online
    friday = build_daily_report(date(2024, 11, 22), warehouse)
    assert 'data-section="day-off"' not in render_daily(friday.for_recipient(COMMUNE), COMMUNE).html
    calendar = WorkingCalendar.from_seeds()
    assert day_off_reason(calendar.days[date(2024, 9, 2)]) == "Quốc khánh"
    assert day_off_reason(calendar.days[date(2024, 11, 23)]) == "Thứ Bảy"
    assert day_off_reason(calendar.days[date(2024, 5, 4)]) is None             # make-up Saturday: a working day
    assert day_off_reason(calendar.days[date(2024, 11, 22)]) is None


def test_one_line_per_unit_says_why_its_score_changed(warehouse):
    """Each unit of the reader's ranking gets one line: the indicator whose score (year to date) moved
    most since the previous day, by how many dossiers, computed here from fct_indicator_values."""
    day = date(2024, 11, 22)
    html = render_daily(build_daily_report(day, warehouse).for_recipient(COMMUNE), COMMUNE).html
    rows = query(warehouse, """
        select v.business_date, v.unit_code, v.indicator_code, v.score, v.numerator, v.denominator
        from marts.fct_indicator_values as v
        where v.period_type = 'year' and v.is_scored and v.business_date in (%s, %s) and v.unit_code = any(%s)""",
                 (day, date(2024, 11, 21), COMMUNES))
    today = {(u, i): (s, n, d) for b, u, i, s, n, d in rows if b == day}
    before = {(u, i): (s, n, d) for b, u, i, s, n, d in rows if b != day}
    lines = dict(re.findall(r'<li data-change-unit="([^"]+)"([^>]*)>', html))
    assert set(lines) == set(COMMUNES)
    changes = dict(query(warehouse, """select unit_code, change_since_previous_day from marts.fct_unit_scores
                                       where business_date = %s and period_type = 'year'""", (day,)))
    moved = 0
    for unit in COMMUNES:
        deltas = {i: (s - before.get((u, i), (0, 0, 0))[0], n - before.get((u, i), (0, 0, 0))[1],
                      d - before.get((u, i), (0, 0, 0))[2]) for (u, i), (s, n, d) in today.items() if u == unit}
        biggest = max(deltas.values(), key=lambda v: abs(v[0]))[0]
        if biggest == 0 and changes[unit] == 0:
            assert "data-change-indicator" not in lines[unit]
            continue
        indicator = re.search(r'data-change-indicator="([A-Z_]+)"', lines[unit]).group(1)
        assert abs(deltas[indicator][0]) == abs(biggest)
        assert f'data-change-items="{deltas[indicator][2]}"' in lines[unit]
        sentence = re.search(rf'<li data-change-unit="{unit}"[^>]*>(.*?)</li>', html, re.S).group(1)
        assert sentence.split(":")[0].startswith("xã ") and f"{text.signed(changes[unit])} điểm" in sentence
        moved += 1
    assert moved >= 4


def test_province_and_district_mails_say_only_what_holds(warehouse, report):
    """The province (alone in its warehouse) shows no '1/1' rank and no 'so với chỉ tiêu' chart caption
    without group targets; no two bullets list the same units for the same test; the district's long
    off-track table is a summary per target (the mart's counts) and the 10 largest gaps."""
    province = Recipient("t@x.vn", "Văn phòng UBND tỉnh", Scope("province", PROVINCE))
    html = render_daily(report.for_recipient(province), province).html
    assert not re.search(r'data-figure="rank_[a-z]+">1/1<', html)
    caption = re.search(r'data-figure="groups_chart_caption">([^<]*)<', html).group(1)
    assert caption == "Điểm từng nhóm (% điểm tối đa)" and "so với chỉ tiêu" not in html.split("data-section")[0]
    members = [re.sub(r"^\d+/\d+ \S+", "", m) for m in re.findall(r'<li data-list="[^"]+"[^>]*>([^<]*)</li>', html)]
    assert members and len(members) == len(set(members))
    district = Recipient("h@x.vn", "UBND huyện Cư Kuin", Scope("district", DISTRICT))
    html = render_daily(report.for_recipient(district), district).html
    off_track = query(warehouse, """select indicator_name_vi, measure_period, status_code, gap_items
                                    from marts.mart_target_attainment
                                    where business_date = %s and unit_code = any(%s)
                                      and status_code in ('not_met', 'at_risk')""", (DAY, COMMUNES))
    assert len(off_track) > 10
    shown = re.findall(r'<tr data-target="[^"]+" data-target-unit="(?!000\.00\.27)', html)
    assert len(shown) == 10
    for name, measure in {(n, m) for n, m, _s, _g in off_track}:
        row = re.search(rf'<tr data-summary-target="{re.escape(name)}\|{measure}">(.*?)</tr>', html, re.S).group(1)
        of_it = [(s, g) for n, m, s, g in off_track if (n, m) == (name, measure)]
        assert f'data-figure="not_met">{sum(s == "not_met" for s, _ in of_it)}<' in row
        assert f'data-figure="at_risk">{sum(s == "at_risk" for s, _ in of_it)}<' in row
    assert 'data-cut="off_track"' in html


def test_chart_axes_repeat_no_date_and_use_decimal_commas():
    """The trend chart's date axis labels each day once, whatever the span; score ticks read 60,5 and 62,
    never 60.0 (the text's notation)."""
    from datetime import timedelta

    from chiso.reports import charts

    for span in (3, 9, 16, 29, 45, 120, 400):
        last = date(2024, 11, 24)
        first = last - timedelta(days=span)
        labels = [charts.date_tick_label(d, first, last) for d in charts.date_ticks(first, last)]
        assert labels and len(labels) == len(set(labels)), span
    for low, high in ((58.3, 76.1), (69.9, 70.6), (0, 100)):
        ticks = charts.nice_ticks(low, high)
        labels = [charts._tick_label(t, ticks) for t in ticks]
        assert not any("." in label for label in labels) and len(set(labels)) == len(labels)
    assert [charts._tick_label(t, [60.0, 60.5]) for t in (60.0, 60.5)] == ["60,0", "60,5"]
