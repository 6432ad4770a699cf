"""Who did what (issue #16 point 4): attainment by handling official and by field of procedure.

Plans 000, 001 and 002 ask to „nêu rõ tập thể, cá nhân hoàn thành chỉ tiêu“. One warehouse of Cư Kuin
(cu_kuin_2024, 8/11/2024 to 24/11/2024, the 60-day campaign's day 10), built without Airflow, then
published as the nightly DAG does. The marts are checked against a count made here from the raw process
log and dossier extracts (the records as the portal sent them), the campaign report's section and annex
sheets against the marts, and the officials' names against everything that is published or sent to
anyone the plan does not name.
"""

from __future__ import annotations

import io
import json
import unicodedata
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql

from chiso.orchestration.backfill import backfill, days_between
from chiso.bi.access import BI_ROLE, PRIVATE_SCHEMAS, audit
from chiso.publish.publication import publish
from chiso.reports import campaign, text
from chiso.reports.daily import build_daily_report, render_daily
from chiso.reports.recipients import Recipient, Scope
from chiso.transform.runner import run_dbt

FIRST, DAY, EARLIER = date(2024, 11, 8), date(2024, 11, 24), date(2024, 11, 19)
PLAN = "KH_CUKUIN_60NGAY_2024"
EA_KTUR, EA_TIEU, DISTRICT = "000.37.27.H15", "000.38.27.H15", "000.00.27.H15"
DISTRICT_OFFICE = Recipient("phongvhtt@cukuin.example.vn", "Phòng Văn hóa và Thông tin huyện Cư Kuin",
                            Scope("district", DISTRICT), roles=("002-PHONG-VHTT",))
EA_KTUR_OFFICE = Recipient("ubnd@eaktur.example.vn", "UBND xã Ea Ktur", Scope("commune", EA_KTUR),
                           roles=("002-UBND-XA-EAKTUR",))
# Not named by the plan (no role of it): gets the campaign report without officials.
OUTSIDER = Recipient("chutich@eaktur.example.vn", "Chủ tịch UBND xã Ea Ktur", Scope("commune", EA_KTUR))


def query(url, statement, params=None):
    with psycopg.connect(url) as conn:
        return conn.execute(statement, params).fetchall()


@pytest.fixture(scope="module")
def warehouse(make_database, tmp_path_factory):
    url = make_database("chiso_who")
    backfill(url, "cu_kuin_2024", days_between(FIRST, DAY), seed=766)
    run_dbt(["build", "--target-path", str(tmp_path_factory.mktemp("dbt_target")),
             "--log-path", str(tmp_path_factory.mktemp("dbt_logs"))], url)
    publish(DAY, [], url)
    return url


@pytest.fixture(scope="module")
def report(warehouse):
    due, = campaign.due_reports(DAY, warehouse)
    return campaign.build_campaign_report(due, warehouse)


def _moment(value: str | None) -> datetime | None:
    return datetime.strptime(value, "%Y%m%d%H%M%S") if value else None


def independent_outcomes(url: str, as_of: date) -> tuple[dict, dict, date]:
    """From the raw extracts alone: per (unit, official) and per (unit, field), [handled, on time, late,
    open and overdue] as of ``as_of`` over the plan's processing-time target window. The latest version
    of each dossier and each step wins; the official is the one of the dossier's latest processing step
    (4, 5 or 9)."""
    (window_start,), = query(url, """select min(window_start) from reference.target_registry
                                     where plan_id = %s and indicator_code in ('ON_TIME', 'TDGQ')""", (PLAN,))
    units = {u for (u,) in query(url, """select distinct unit_code from marts.mart_target_attainment
                                         where plan_id = %s and indicator_code in ('ON_TIME', 'TDGQ')""", (PLAN,))}
    steps = {}
    for record, business_date, load_id, line in query(
            url, "select record, business_date, load_id, line_number from raw.portal__process_log"):
        key = (record["MaHoSo"], int(record["STT"]))
        if key not in steps or (business_date, load_id, line) > steps[key][0]:
            steps[key] = ((business_date, load_id, line), record)
    handler = {}
    for (code, number), (_, record) in sorted(steps.items()):
        if record["TrangThai"] in (4, 5, 9):
            handler[code] = record["NguoiXuLy"]    # the highest step number wins (sorted)
    dossiers = {}
    for record, business_date, load_id, line in query(
            url, "select record, business_date, load_id, line_number from raw.portal__dossiers"):
        code = record["MaHoSo"]
        if code not in dossiers or (business_date, load_id, line) > dossiers[code][0]:
            dossiers[code] = ((business_date, load_id, line), record)
    end_of_day = datetime.combine(as_of + timedelta(days=1), datetime.min.time())
    by_handler, by_field = defaultdict(lambda: [0, 0, 0, 0]), defaultdict(lambda: [0, 0, 0, 0])
    for code, (_, d) in dossiers.items():
        if d["MaDonViTiepNhan"] not in units or d["TrangThaiHoSo"] in (1, 3):
            continue
        supplements = d.get("DanhSachHoSoBoSung") or []
        new_due = [s.get("NgayHenTraMoi") for s in supplements if s.get("NgayHenTraMoi")]
        due = _moment(new_due[-1] if new_due else d["NgayHenTra"])
        assert due is not None, code   # the simulator always promises a date
        ends = [_moment(d.get(name)) for name in ("NgayKetThucXuLy", "NgayTra", "NgayTuChoi") if d.get(name)]
        ended = min(ends) if ends else None
        if ended is not None and window_start <= ended.date() <= as_of:
            on_time = ended <= due and len(supplements) <= 1
            counts = [1, int(on_time), int(not on_time), 0]
        elif (ended is None or ended >= end_of_day) and due < end_of_day and window_start <= due.date():
            assert len(supplements) <= 1, code   # else the overdue day would be the second request's
            counts = [1, 0, 1, 1]
        else:
            continue
        official = handler.get(code, "Không ghi người xử lý")   # no processing step loaded
        for table, key in ((by_handler, (d["MaDonViTiepNhan"], official)),
                           (by_field, (d["MaDonViTiepNhan"], d["MaLinhVuc"]))):
            table[key] = [a + b for a, b in zip(table[key], counts)]
    return dict(by_handler), dict(by_field), window_start


@pytest.mark.parametrize("as_of", [EARLIER, DAY])
def test_the_marts_equal_a_count_from_the_raw_process_log(warehouse, as_of):
    by_handler, by_field, window_start = independent_outcomes(warehouse, as_of)
    rows = query(warehouse, """select unit_code, handler_name, dossiers_handled, dossiers_on_time, dossiers_late,
                                      dossiers_open_overdue, on_time_rate, target_value, is_met, window_start
                               from internal.mart_handler_attainment where plan_id = %s and business_date = %s""",
                 (PLAN, as_of))
    assert {r[9] for r in rows} == {window_start} == {date(2024, 11, 15)}
    handlers = {(r[0], r[1]): r[2:9] for r in rows}
    fields = {(u, f): (n, ok, late, still, rate) for u, f, n, ok, late, still, rate in query(
        warehouse, """select unit_code, field_code, dossiers_handled, dossiers_on_time, dossiers_late,
                             dossiers_open_overdue, on_time_rate
                      from marts.mart_field_attainment where plan_id = %s and business_date = %s""", (PLAN, as_of))}
    assert {key: list(v[:4]) for key, v in handlers.items()} == by_handler
    assert {key: list(v[:4]) for key, v in fields.items()} == by_field
    for n, ok, _late, _still, rate, target, met in handlers.values():
        assert rate == round(Decimal(100 * ok) / n, 2) and met == (Decimal(100 * ok) / n >= target)
    # Worth comparing: every commune and the district, several officials each, some who met the
    # target (100% on time) and some who missed it, officials named, not roles.
    units = {u for u, _ in handlers}
    officials_per_unit = {unit: sum(1 for u, _ in handlers if u == unit) for unit in units}
    # (The district's own desk receives few dossiers: one official or two.)
    assert len(units) == 9 and officials_per_unit[DISTRICT] >= 1, officials_per_unit
    assert all(n >= 3 for unit, n in officials_per_unit.items() if unit != DISTRICT), officials_per_unit
    assert {v[6] for v in handlers.values()} == {True, False}
    assert sum(v[0] for v in handlers.values()) > 500
    assert all(len(name.split()) >= 3 for _, name in handlers)


def test_the_campaign_report_names_who_met_and_who_missed(warehouse, report):
    rendered = campaign.render_campaign(report, DISTRICT_OFFICE)
    html = rendered.html
    assert "Kết quả theo cán bộ, lĩnh vực" in html and unicodedata.is_normalized("NFC", html)
    mart = query(warehouse, """select unit_code, handler_name, dossiers_handled, dossiers_on_time, dossiers_late,
                                      on_time_rate, is_met
                               from internal.mart_handler_attainment where plan_id = %s and business_date = %s""",
                 (PLAN, DAY))
    missed = [r for r in mart if not r[6]]
    met = [r for r in mart if r[6]]
    assert missed and met
    region_missed = html[html.index('data-handlers="missed"'):html.index('data-handlers="met"')]
    region_met = html[html.index('data-handlers="met"'):html.index("</table>", html.index('data-handlers="met"'))]
    assert f"Cán bộ chưa hoàn thành chỉ tiêu ({len(missed)})" in region_missed
    assert f"Cán bộ hoàn thành chỉ tiêu ({len(met)})" in region_met
    for unit, name, handled, on_time, late, rate, is_met in mart:
        region = region_met if is_met else region_missed
        row = region[region.index(f'data-handler-unit="{unit}" data-handler="{name}"'):]
        row = row[:row.index("</tr>")]
        assert f'data-figure="handled">{text.count(handled)}<' in row
        assert f'data-figure="on_time">{text.count(on_time)}<' in row
        assert f'data-figure="late">{text.count(late)}<' in row
        assert f'data-figure="rate">{text.number(rate)}<' in row and "," in text.number(rate)
    # The missed list starts with the lowest rate.
    first = region_missed.index("data-handler-unit=")
    lowest = min(missed, key=lambda r: (r[5], r[0], r[1]))
    assert region_missed[first:].startswith(f'data-handler-unit="{lowest[0]}" data-handler="{lowest[1]}"')
    summary = html[html.index('data-figure="who_summary"'):]
    fields_met, fields = query(warehouse, """select count(*) filter (where is_met), count(*)
                                             from marts.mart_field_attainment where plan_id = %s and business_date = %s""",
                               (PLAN, DAY))[0]
    assert summary.startswith(f'data-figure="who_summary">{len(met)}/{len(mart)} cán bộ hoàn thành chỉ tiêu, '
                              f'{len(missed)} cán bộ chưa hoàn thành; {fields_met}/{fields} lĩnh vực đạt.')
    assert "từ 15/11/2024 đến 24/11/2024" in html
    assert f"{len(met)}/{len(mart)} cán bộ hoàn thành chỉ tiêu" in rendered.text


def test_the_annex_sheets_equal_the_marts(warehouse, report):
    from openpyxl import load_workbook

    rendered = campaign.render_campaign(report, DISTRICT_OFFICE)
    workbook = load_workbook(io.BytesIO(rendered.attachments[0].data))
    assert workbook.sheetnames[-2:] == ["Theo lĩnh vực", "Theo cán bộ"]
    names = dict(query(warehouse, "select unit_name, unit_code from marts.dim_units"))
    rows = list(workbook["Theo cán bộ"].iter_rows(min_row=5, values_only=True))
    assert rows[0][:4] == ("STT", "Cán bộ xử lý", "Đơn vị", "Lĩnh vực")
    sheet = {(names[r[2]], r[1]): (r[4], r[5], r[6], r[7], r[8], r[10]) for r in rows[1:]}
    mart = {(u, h): (n, ok, late, still, float(rate), status) for u, h, n, ok, late, still, rate, status in query(
        warehouse, """select unit_code, handler_name, dossiers_handled, dossiers_on_time, dossiers_late,
                             dossiers_open_overdue, on_time_rate, status_vi
                      from internal.mart_handler_attainment where plan_id = %s and business_date = %s""", (PLAN, DAY))}
    assert sheet == mart and len(rows) - 1 == len(mart)
    rows = list(workbook["Theo lĩnh vực"].iter_rows(min_row=5, values_only=True))
    sheet = {(names[r[1]], r[2]): (r[3], r[4], r[5], r[7]) for r in rows[1:]}
    mart = {(u, f): (n, ok, late, float(rate)) for u, f, n, ok, late, rate in query(
        warehouse, """select unit_code, coalesce(field_name, field_code), dossiers_handled, dossiers_on_time,
                             dossiers_late, on_time_rate
                      from marts.mart_field_attainment where plan_id = %s and business_date = %s""", (PLAN, DAY))}
    assert sheet == mart


def test_a_commune_office_sees_its_own_officials_only(warehouse, report):
    mine = {h for (h,) in query(warehouse, """select handler_name from internal.mart_handler_attainment
                                              where plan_id = %s and business_date = %s and unit_code = %s""",
                                (PLAN, DAY, EA_KTUR))}
    others = {h for (h,) in query(warehouse, """select handler_name from internal.mart_handler_attainment
                                                where plan_id = %s and business_date = %s and unit_code <> %s""",
                                  (PLAN, DAY, EA_KTUR))} - mine
    assert mine and others
    rendered = campaign.render_campaign(report, EA_KTUR_OFFICE)
    documents = _documents(rendered)
    assert all(f'data-handler="{name}"' in rendered.html for name in mine)
    assert not any(name in document for name in others for document in documents)


def _documents(rendered) -> list[str]:
    """Everything a recipient gets, as text: the HTML, the plain text, and each attachment (an Excel
    workbook's cells, the printable HTML)."""
    from openpyxl import load_workbook

    documents = [rendered.html, rendered.text]
    for attachment in rendered.attachments:
        if attachment.filename.endswith(".xlsx"):
            workbook = load_workbook(io.BytesIO(attachment.data))
            documents.append(json.dumps([list(sheet.iter_rows(values_only=True)) for sheet in workbook.worksheets],
                                        ensure_ascii=False, default=str))
        else:
            documents.append(attachment.data.decode("utf-8"))
    return documents


def test_officials_never_reach_reporting_nor_anyone_the_plan_does_not_name(warehouse, report):
    officials = {h for (h,) in query(warehouse, "select distinct handler_name from internal.mart_handler_attainment")}
    assert len(officials) > 40
    # Every text value of every relation of reporting (what BI users and public pages read).
    with psycopg.connect(warehouse) as conn:
        relations = [r for (r,) in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'reporting'")]
        assert "mart_field_attainment" in relations and "mart_handler_attainment" not in relations
        found = []
        for relation in relations:
            columns = [c for (c,) in conn.execute(
                """select column_name from information_schema.columns where table_schema = 'reporting'
                   and table_name = %s and data_type in ('text', 'character varying', 'jsonb', 'json', 'ARRAY')""",
                (relation,))]
            for column in columns:
                values = conn.execute(sql.SQL("select distinct {}::text from {}").format(
                    sql.Identifier(column), sql.Identifier("reporting", relation))).fetchall()
                found += [(relation, column, v) for (v,) in values if v and any(o in v for o in officials)]
        assert found == []
        # The internal schema is private: the BI role may not use it, and the audit says nothing of it.
        assert "internal" in PRIVATE_SCHEMAS
        (usable,), = conn.execute("select has_schema_privilege(%s, 'internal', 'usage')", (BI_ROLE,)).fetchall()
        assert usable is False
        assert audit(conn) == []
        # The field mart is under the same row-level security as the other unit tables.
        (secured,), = conn.execute("""select relrowsecurity from pg_class c join pg_namespace n on n.oid = c.relnamespace
                                      where n.nspname = 'reporting' and c.relname = 'mart_field_attainment'""").fetchall()
        assert secured is True
    # Nothing sent to a recipient the plan does not name carries an official's name: its campaign report
    # (no section, no officials' sheet) and the nightly e-mail.
    outsider = campaign.render_campaign(report, OUTSIDER)
    assert "Kết quả theo cán bộ" not in outsider.html
    daily = build_daily_report(DAY, warehouse)
    for rendered in (outsider, render_daily(daily.for_recipient(OUTSIDER), OUTSIDER)):
        for document in _documents(rendered):
            assert not [o for o in officials if o in document]
    # While the plan's own office gets them.
    assert any(o in campaign.render_campaign(report, DISTRICT_OFFICE).html for o in officials)
