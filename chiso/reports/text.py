"""Words and number formats of the reports, in Vietnamese (default) and English.

Vietnamese text is written here once, in Unicode NFC (tests check it), and numbers follow the
Vietnamese style the plans use: a decimal comma ("72,50"), dates dd/mm/yyyy.
"""

from __future__ import annotations

import csv
import unicodedata
from datetime import date
from decimal import Decimal

from chiso.core.settings import REPO_ROOT

# The six groups of Decision 766, in order, and their names: from the seed indicator_groups, the one place
# they are written (their maximum points come from the rule registry).
def _groups() -> tuple[tuple[str, ...], dict[str, dict[str, str]]]:
    with (REPO_ROOT / "dbt_project" / "seeds" / "indicator_groups.csv").open(encoding="utf-8") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: int(row["display_order"]))
    return (tuple(row["group_code"] for row in rows),
            {language: {row["group_code"]: unicodedata.normalize("NFC", row[f"name_{language}"]) for row in rows}
             for language in ("vi", "en")})


GROUPS, GROUP_NAMES = _groups()
STATUS = {
    "vi": {"met": "đạt", "not_met": "chưa đạt", "at_risk": "có nguy cơ", "no_data": "chưa có dữ liệu"},
    "en": {"met": "met", "not_met": "not met", "at_risk": "at risk", "no_data": "no data"},
}
STATUS_COLOURS = {"met": "#1e7b34", "not_met": "#b42318", "at_risk": "#b54708", "no_data": "#667085"}
UNIT_KINDS = {
    "vi": {"PROVINCE": "tỉnh", "AGENCY": "sở, ngành", "DISTRICT": "huyện", "COMMUNE": "xã"},
    "en": {"PROVINCE": "province", "AGENCY": "department", "DISTRICT": "district", "COMMUNE": "commune"},
}

LABELS = {
    "vi": {
        "daily_title": "Báo cáo chỉ số phục vụ người dân, doanh nghiệp",
        "daily_subject": "[chiso] Báo cáo chỉ số phục vụ người dân, doanh nghiệp ngày {day}",
        "day": "Ngày",
        "to": "Kính gửi",
        "as_of": "Số liệu đến hết ngày {day}, tính từ đầu năm (như Cổng Dịch vụ công quốc gia) theo "
                 "Quyết định 766/QĐ-TTg.",
        "total": "Tổng điểm",
        "of_100": "/100 điểm",
        "change": "So với ngày trước",
        "class": "Xếp loại",
        "rank": "Xếp hạng",
        "rank_district": "trong huyện",
        "rank_province": "trong tỉnh",
        "rank_kind": "cùng loại trong tỉnh",
        "rank_among_provinces": "giữa các tỉnh",
        "groups": "Điểm sáu nhóm chỉ số",
        "group": "Nhóm chỉ số",
        "score": "Điểm",
        "max": "Tối đa",
        "percent_of_max": "% điểm tối đa",
        "targets": "Thực hiện chỉ tiêu",
        "target": "Chỉ tiêu",
        "target_col": "Nội dung",
        "actual": "Hiện tại",
        "status": "Đánh giá",
        "gap_items": "Thiếu (hồ sơ)",
        "deadline": "Hạn",
        "measure": "Cách đo",
        "unit": "Đơn vị",
        "no_targets": "Không có chỉ tiêu nào đang có hiệu lực cho đơn vị này.",
        "below": "Đơn vị dưới ngưỡng",
        "above": "Đơn vị trên ngưỡng",
        "off_track": "Chỉ tiêu chưa đạt hoặc có nguy cơ không đạt",
        "nobody_below": "Không có đơn vị nào dưới ngưỡng.",
        "peers": "Bảng xếp hạng",
        "peers_of": "Các đơn vị cùng nhóm so sánh",
        "trend_chart": "Tổng điểm 30 ngày gần nhất",
        "groups_chart": "Điểm từng nhóm so với chỉ tiêu (% điểm tối đa)",
        "groups_chart_plain": "Điểm từng nhóm (% điểm tối đa)",
        "day_table": "Chỉ số trong ngày",
        "period_year": "từ {start} đến hết {end}",
        "period_day": "ngày {day}",
        "day_table_note": "Đúng hạn: hồ sơ kết thúc trong ngày và hồ sơ đến hạn trong ngày mà chưa giải quyết "
                          "xong; trực tuyến: hồ sơ tiếp nhận trong ngày. Mỗi ô ghi tỷ lệ (%) và số hồ sơ "
                          "(đạt/tổng).",
        "footer": "Thư tự động từ hệ thống chiso; số liệu đã qua kiểm tra chất lượng trước khi gửi.",
        "footer_sender": "Người gửi: hệ thống báo cáo chiso (nhóm kỹ thuật dữ liệu){address}.",
        "footer_why": "Thư gửi tới {name} ({email}) vì địa chỉ này có trong danh sách nhận báo cáo.",
        "footer_stop": "Để ngừng nhận hoặc đổi phạm vi báo cáo, hãy trả lời thư này với tiêu đề „Ngừng nhận“; "
                       "nhóm kỹ thuật dữ liệu sẽ bỏ địa chỉ khỏi danh sách nhận báo cáo.",
        "stop_subject": "Ngừng nhận",
        "no_score": "Chưa có điểm cho ngày này.",
        "technical": "Thông tin kỹ thuật (nhóm dữ liệu)",
        "stt": "STT",
        "points": "điểm",
        "measure_names": {"day": "trong ngày", "month": "tháng đến nay", "quarter": "quý đến nay",
                          "year": "năm đến nay", "window": "từ đầu chiến dịch"},
        "trailing": "{n} ngày gần nhất",
        "campaign_subject": "[chiso] {title} – {plan}",
        "periodic": "Báo cáo định kỳ {every} ngày (kỳ {number})",
        "interim": "Báo cáo sơ kết {days} ngày",
        "final": "Báo cáo tổng kết {days} ngày",
        "campaign_period": "Từ {start} đến {end} (ngày {day}/{length} của chiến dịch)",
        "report_deadline": "Hạn báo cáo: trước ngày {due}; số liệu đến hết ngày {cutoff}.",
        "summary": "Tóm tắt",
        "summary_text": "Đến hết ngày {day}, {met} chỉ tiêu đạt, {at_risk} có nguy cơ không đạt, "
                        "{not_met} chưa đạt, {no_data} chưa có dữ liệu (trên {total} chỉ tiêu của {units} đơn vị).",
        "annex": "Phụ lục I: Kết quả thực hiện chỉ tiêu của các đơn vị",
        "baseline": "Ngày cơ sở",
        "baseline_short": "Cơ sở",
        "now": "Hiện tại",
        "annex_note": "Cơ sở: số liệu kế hoạch nêu (ngày {day}); Hiện tại: giá trị đánh giá (sau hạn: giá trị ngày "
                      "hạn); chỉ tiêu là số kế hoạch giao.",
        "excel_attached": "Phụ lục Excel kèm theo thư: {name}.",
        "print": "Bản in",
        "ranking": "Xếp hạng tổng điểm",
        "lists": "Danh sách theo kế hoạch",
        # Long tables cut in the body (chiso.reports.daily): where the left-out rows are.
        "cut_ranking": "Bảng chỉ hiển thị {shown}/{total} đơn vị: {ends} đơn vị đứng đầu và {ends} đơn vị đứng cuối"
                       "{near}; {left} đơn vị còn lại có trong tệp đính kèm {file} ({where}).",
        "cut_near": ", cùng các đơn vị xếp hạng gần {unit}",
        "cut_ranking_provinces": "Bảng tổng hợp theo tỉnh, xếp hạng giữa các tỉnh ({shown} tỉnh); bảng xếp hạng "
                                 "đầy đủ {total} đơn vị có trong tệp đính kèm {file} ({where}).",
        "cut_ranking_provinces_ends": "Bảng tổng hợp theo tỉnh, chỉ hiển thị {shown}/{provinces} tỉnh (đứng đầu "
                                      "và đứng cuối); bảng xếp hạng đầy đủ {total} đơn vị có trong tệp đính kèm "
                                      "{file} ({where}).",
        "cut_skipped": "… {n} đơn vị không hiển thị",
        "cut_day": "Bảng chỉ hiển thị {shown}/{total} đơn vị, gồm {worst} đơn vị có {indicator} trong ngày thấp "
                   "nhất; {left} đơn vị còn lại có trong tệp đính kèm {file} ({where}).",
        "cut_day_provinces": "Số liệu cộng gộp hồ sơ của các đơn vị theo tỉnh ({shown} tỉnh); số liệu của từng "
                             "đơn vị ({total} đơn vị) có trong tệp đính kèm {file} ({where}).",
        "cut_lists": "Thư chỉ nêu {shown}/{total} danh sách; {left} danh sách còn lại có trong tệp đính kèm "
                     "{file} ({where}).",
        "cut_off_track": "Bảng chỉ hiển thị {shown}/{total} chỉ tiêu; {left} chỉ tiêu còn lại có trong tệp đính "
                         "kèm {file} ({where}).",
        "where_sheet": "trang “{sheet}”",
        "where_csv": "tệp {sheet}",
        "full_tables_attached": "Bảng đầy đủ trong tệp đính kèm: {file}.",
        # Who did what (campaign reports, the plan's internal recipients only).
        "who": "Kết quả theo cán bộ, lĩnh vực",
        "who_note": "Hồ sơ giải quyết đúng hạn từ {start} đến {end}: hồ sơ đã giải quyết xong trong kỳ và hồ sơ "
                    "quá hạn chưa giải quyết, theo người xử lý (tiến trình xử lý) và lĩnh vực TTHC; chỉ tiêu: "
                    "{target_name} {target}%. Danh sách cán bộ chỉ gửi các cơ quan được kế hoạch giao, không công khai.",
        "who_summary": "{met}/{total} cán bộ hoàn thành chỉ tiêu, {not_met} cán bộ chưa hoàn thành; "
                       "{fields_met}/{fields} lĩnh vực đạt.",
        "who_missed": "Cán bộ chưa hoàn thành chỉ tiêu",
        "who_met": "Cán bộ hoàn thành chỉ tiêu",
        "who_by_field": "Theo lĩnh vực",
        "who_by_handler": "Theo cán bộ",
        "handler": "Cán bộ xử lý",
        "field": "Lĩnh vực",
        "handled": "Số hồ sơ",
        "on_time": "Đúng hạn",
        "late": "Trễ hạn",
        "open_overdue": "Quá hạn chưa giải quyết",
        "on_time_rate": "Tỷ lệ đúng hạn (%)",
        "who_none": "Chưa có hồ sơ nào được giải quyết hoặc quá hạn trong kỳ.",
    },
    "en": {
        "daily_title": "Public service index report",
        "daily_subject": "[chiso] Public service index report of {day}",
        "day": "Day",
        "to": "To",
        "as_of": "Figures to the end of {day}, year to date (as the national portal shows them), under "
                 "Decision 766/QĐ-TTg.",
        "total": "Total score",
        "of_100": "/100 points",
        "change": "Since the previous day",
        "class": "Class",
        "rank": "Rank",
        "rank_district": "in the district",
        "rank_province": "in the province",
        "rank_kind": "among units of its kind",
        "rank_among_provinces": "among provinces",
        "groups": "The six groups",
        "group": "Group",
        "score": "Score",
        "max": "Max",
        "percent_of_max": "% of max",
        "targets": "Targets",
        "target": "Target",
        "target_col": "Indicator",
        "actual": "Now",
        "status": "Status",
        "gap_items": "Missing (dossiers)",
        "deadline": "Deadline",
        "measure": "Measure",
        "unit": "Unit",
        "no_targets": "No target is in force for this unit.",
        "below": "Units below thresholds",
        "above": "Units above thresholds",
        "off_track": "Targets not met or at risk",
        "nobody_below": "No unit is below a threshold.",
        "peers": "Ranking",
        "peers_of": "Units compared",
        "trend_chart": "Total score, last 30 days",
        "groups_chart": "Each group against its target (% of max)",
        "groups_chart_plain": "Each group (% of max)",
        "day_table": "The day's indicators",
        "period_year": "{start} to the end of {end}",
        "period_day": "{day}",
        "day_table_note": "On time: dossiers that ended on the day and those that fell due on it unfinished; "
                          "online: dossiers received on the day. Each cell: rate (%) and dossiers (met/total).",
        "footer": "Automatic message from chiso; the figures passed the quality gate before sending.",
        "footer_sender": "Sent by the chiso reporting system (data engineering team){address}.",
        "footer_why": "Sent to {name} ({email}) because this address is on the report recipients list.",
        "footer_stop": "To stop receiving these reports or change their scope, reply to this message with the "
                       "subject “Unsubscribe”; the data engineering team will take the address off the list.",
        "stop_subject": "Unsubscribe",
        "no_score": "No score for this day yet.",
        "technical": "Technical facts (data team)",
        "stt": "#",
        "points": "points",
        "measure_names": {"day": "the day", "month": "month to date", "quarter": "quarter to date",
                          "year": "year to date", "window": "campaign to date"},
        "trailing": "last {n} days",
        "campaign_subject": "[chiso] {title} – {plan}",
        "periodic": "{every}-day report (no. {number})",
        "interim": "Interim report, day {days}",
        "final": "Final report, day {days}",
        "campaign_period": "From {start} to {end} (day {day}/{length} of the campaign)",
        "report_deadline": "Due before {due}; figures to the end of {cutoff}.",
        "summary": "Summary",
        "summary_text": "As of {day}: {met} targets met, {at_risk} at risk, {not_met} not met, {no_data} without "
                        "data ({total} targets of {units} units).",
        "annex": "Annex I: each unit's targets",
        "baseline": "Baseline day",
        "baseline_short": "Baseline",
        "now": "Now",
        "annex_note": "Baseline: the plan's figure ({day}); Now: the judged value (after the deadline: the "
                      "deadline's value); target: the plan's number.",
        "excel_attached": "Excel annex attached: {name}.",
        "print": "Print version",
        "ranking": "Ranking by total score",
        "lists": "Lists the plan asks for",
        "cut_ranking": "Showing {shown} of {total} units: the top {ends} and the bottom {ends}{near}; the other "
                       "{left} are in the attached file {file} ({where}).",
        "cut_near": ", and the units ranked next to {unit}",
        "cut_ranking_provinces": "Summary by province, ranked among provinces ({shown} provinces); the full "
                                 "ranking of {total} units is in the attached file {file} ({where}).",
        "cut_ranking_provinces_ends": "Summary by province, showing {shown} of {provinces} provinces (top and "
                                      "bottom); the full ranking of {total} units is in the attached file {file} "
                                      "({where}).",
        "cut_skipped": "… {n} units not shown",
        "cut_day": "Showing {shown} of {total} units, among them the {worst} lowest on “{indicator}” that day; "
                   "the other {left} are in the attached file {file} ({where}).",
        "cut_day_provinces": "Dossiers pooled by province ({shown} provinces); each unit's figures ({total} "
                             "units) are in the attached file {file} ({where}).",
        "cut_lists": "Showing {shown} of {total} lists; the other {left} are in the attached file {file} "
                     "({where}).",
        "cut_off_track": "Showing {shown} of {total} targets; the other {left} are in the attached file {file} "
                         "({where}).",
        "where_sheet": "sheet “{sheet}”",
        "where_csv": "file {sheet}",
        "full_tables_attached": "Full tables attached: {file}.",
        "who": "Results by official and field",
        "who_note": "Dossiers resolved on time from {start} to {end}: dossiers whose processing ended in the "
                    "period and overdue dossiers still open, by handling official (process log) and field of "
                    "procedure; target: {target_name} {target}%. The officials' list goes only to the offices "
                    "the plan names; it is not public.",
        "who_summary": "{met} of {total} officials met the target, {not_met} did not; {fields_met} of {fields} "
                       "fields met it.",
        "who_missed": "Officials who missed the target",
        "who_met": "Officials who met the target",
        "who_by_field": "By field",
        "who_by_handler": "By official",
        "handler": "Official",
        "field": "Field",
        "handled": "Dossiers",
        "on_time": "On time",
        "late": "Late",
        "open_overdue": "Overdue, still open",
        "on_time_rate": "On-time rate (%)",
        "who_none": "No dossier was resolved or overdue in the period.",
    },
}

# The attached workbook of the nightly e-mail: its sheets and their columns.
SHEETS = {
    "vi": {"ranking": "Xếp hạng", "day": "Chỉ số trong ngày", "lists": "Danh sách", "targets": "Chỉ tiêu"},
    "en": {"ranking": "Ranking", "day": "Day indicators", "lists": "Lists", "targets": "Targets"},
}
# The same tables as CSV files in a ZIP (ASCII names: every unzip tool reads them).
CSV_FILES = {"ranking": "xep-hang.csv", "day": "chi-so-trong-ngay.csv", "lists": "danh-sach.csv",
             "targets": "chi-tieu.csv"}
SHEET_HEADERS = {
    "vi": {"ranking": ("Mã đơn vị", "Đơn vị", "Loại", "Tỉnh", "Xếp hạng", "Số đơn vị so sánh", "Tổng điểm",
                       "Xếp loại", "So với ngày trước"),
           "day": ("Mã đơn vị", "Đơn vị", "Tỉnh"), "numerator": "số hồ sơ đạt", "denominator": "tổng số hồ sơ",
           "lists": ("Mã nhóm so sánh", "Nhóm so sánh", "Mã danh sách", "Số đơn vị trong danh sách", "Nội dung"),
           "targets": ("Mã đơn vị", "Đơn vị", "Kế hoạch", "Mã chỉ tiêu", "Nội dung", "Cách đo", "So sánh",
                       "Chỉ tiêu", "Hiện tại", "Đánh giá", "Thiếu (hồ sơ)", "Hạn")},
    "en": {"ranking": ("Unit code", "Unit", "Kind", "Province", "Rank", "Units compared", "Total score", "Class",
                       "Since the previous day"),
           "day": ("Unit code", "Unit", "Province"), "numerator": "dossiers met", "denominator": "dossiers",
           "lists": ("Peer set code", "Peer set", "List code", "Units listed", "Text"),
           "targets": ("Unit code", "Unit", "Plan", "Target", "Indicator", "Measure", "Comparator", "Target value",
                       "Now", "Status", "Missing (dossiers)", "Deadline")},
}


def footer_lines(language: str, recipient, sender: str | None) -> list[str]:
    """Who sends the report, why the reader gets it and how to stop: the last lines of every e-mail
    (``sender``: the From address, when known)."""
    from email.utils import parseaddr

    words = labels(language)
    address = parseaddr(sender)[1] if sender else ""
    lines = [words["footer"], words["footer_sender"].format(address=f" <{address}>" if address else "")]
    if recipient is not None:
        lines += [words["footer_why"].format(name=recipient.name, email=recipient.email), words["footer_stop"]]
    return lines


def labels(language: str) -> dict:
    return LABELS.get(language, LABELS["vi"])


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def number(value, decimals: int = 2) -> str:
    """Vietnamese style: decimal comma, fixed decimals ("72,50"); a dash when there is none."""
    if value is None:
        return "—"
    return f"{Decimal(value):.{decimals}f}".replace(".", ",")


def count(value: int, language: str = "vi") -> str:
    """A count with thousands grouped: "3.321" in Vietnamese, "3,321" in English."""
    grouped = f"{value:,}"
    return grouped.replace(",", ".") if language == "vi" else grouped


def signed(value, decimals: int = 2) -> str:
    if value is None:
        return "—"
    text = number(value, decimals)
    return text if Decimal(value) < 0 else f"+{text}"


def day(value: date) -> str:
    return value.strftime("%d/%m/%Y")


def measure_name(measure: str, language: str = "vi") -> str:
    words = labels(language)
    if measure.startswith("trailing_"):
        return words["trailing"].format(n=measure.removeprefix("trailing_").removesuffix("d"))
    return words["measure_names"].get(measure, measure)


def short_unit_name(name: str) -> str:
    """'UBND xã Ea Ktur' → 'xã Ea Ktur' (the plans' lists drop the prefix)."""
    return name.removeprefix("UBND ").strip()


# The summary of a long off-track table (chiso.reports.daily.off_track_context).
OFF_TRACK_SUMMARY_WORDS = {
    "vi": {"off_track_summary": "Tổng hợp theo chỉ tiêu (số đơn vị chưa đạt, có nguy cơ và số hồ sơ còn thiếu); "
                                "bảng tiếp theo nêu {shown} chỉ tiêu thiếu nhiều hồ sơ nhất.",
           "target_col": "Nội dung", "not_met": "Chưa đạt (đơn vị)", "at_risk": "Có nguy cơ (đơn vị)",
           "gap_items": "Thiếu (hồ sơ)"},
    "en": {"off_track_summary": "Summary per target (units not met, at risk, and dossiers missing); the next "
                                "table lists the {shown} targets missing the most dossiers.",
           "target_col": "Indicator", "not_met": "Not met (units)", "at_risk": "At risk (units)",
           "gap_items": "Missing (dossiers)"},
}
