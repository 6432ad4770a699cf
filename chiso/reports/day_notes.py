"""What the nightly e-mail says about the day itself: whether it was a working day (the weekend and
holiday policy of docs/calendar.md), and one line per unit saying why its total score moved since the
previous day (the indicator that moved most, by how many dossiers).

Kept apart from daily.py: its words are its own, and the template includes its blocks by name
(templates/day_notes.html.j2).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from chiso.reports import text

WORDS = {
    "vi": {
        "day_off": "{weekday} {day} là ngày nghỉ{why} của cơ quan hành chính nhà nước: các bộ phận một "
                   "cửa không tiếp nhận, trả kết quả trực tiếp và không hồ sơ nào đến hạn trong ngày nghỉ "
                   "(hạn giải quyết tính theo ngày làm việc). Số liệu trong ngày vì thế thường trống; điểm từ "
                   "đầu năm vẫn có thể thay đổi do hồ sơ nộp trực tuyến, hồ sơ được xử lý trong ngày nghỉ "
                   "hoặc dữ liệu cập nhật muộn (xem mục „Vì sao điểm thay đổi“).",
        "day_off_why": " ({reason})",
        "no_dossiers": "không có hồ sơ",
        "changes": "Vì sao điểm thay đổi so với ngày trước",
        "changes_note": "Mỗi dòng nêu chỉ số có điểm thay đổi nhiều nhất của đơn vị (điểm từ đầu năm).",
        "change_line": "{unit}: {change} điểm, chủ yếu do {indicator} {delta} điểm (tỷ lệ {before} → {now}; "
                       "{items}).",
        "change_items": "{denominator} {noun} được tính, {numerator} {noun} đạt",
        "unchanged": "{unit}: không đổi.",
        "nouns": {"dossier": "hồ sơ", "procedure": "thủ tục", "feedback": "phản ánh, kiến nghị"},
    },
    "en": {
        "day_off": "{weekday} {day} is a day off{why} for state agencies: one-stop desks neither receive "
                   "nor return dossiers in person and no dossier falls due on a day off (deadlines count "
                   "working days). The day's figures are therefore mostly empty; the year-to-date score can "
                   "still move through online submissions, dossiers handled on the day off or late updates "
                   "(see “Why scores changed”).",
        "day_off_why": " ({reason})",
        "no_dossiers": "no dossiers",
        "changes": "Why scores changed since the previous day",
        "changes_note": "Each line names the unit's indicator whose score (year to date) moved most.",
        "change_line": "{unit}: {change} points, mostly {indicator} {delta} points (rate {before} → {now}; "
                       "{items}).",
        "change_items": "{denominator} {noun} counted, {numerator} {noun} met",
        "unchanged": "{unit}: unchanged.",
        "nouns": {"dossier": "dossiers", "procedure": "procedures", "feedback": "feedback items"},
    },
}


@dataclass(frozen=True)
class ChangeLine:
    unit_code: str
    sentence: str
    indicator_code: str | None
    denominator_delta: int | None


def words(language: str) -> dict:
    return WORDS.get(language, WORDS["vi"])


def _signed_count(value: int, language: str) -> str:
    sign = "+" if value > 0 else "-" if value < 0 else "±"
    return sign + text.count(abs(value), language)


def _percent(value: Decimal | None) -> str:
    return "—" if value is None else f"{text.number(value)}%"


def day_off_notice(report, language: str) -> str | None:
    """The sentence under the title on a day off; None on a working day."""
    from chiso.core.calendar import WEEKDAYS

    reason = report.day_off_reasons.get(language)
    if reason is None or report.calendar_day is None:
        return None
    weekday = WEEKDAYS["vi" if language == "vi" else "en"][report.business_date.weekday()]
    said = words(language)
    return text.nfc(said["day_off"].format(weekday=weekday, day=text.day(report.business_date),
                                           why="" if reason == weekday else said["day_off_why"].format(reason=reason)))


def change_lines(report, unit_codes: list[str], language: str) -> list[ChangeLine]:
    """One line per unit, in the order given, saying why its total moved since the previous day."""
    said = words(language)
    lines = []
    for code in unit_codes:
        unit = report.catalogue.get(code)
        score = report.scores.get(code)
        if unit is None or score is None or score.change is None:
            continue
        name = text.short_unit_name(unit.name)
        reason = report.change_reasons.get(code)
        if reason is None or score.change == 0 and reason.score_delta == 0:
            lines.append(ChangeLine(code, text.nfc(said["unchanged"].format(unit=name)), None, None))
            continue
        noun = said["nouns"].get(reason.item_kind, said["nouns"]["dossier"])
        items = said["change_items"].format(denominator=_signed_count(reason.denominator_delta, language),
                                            numerator=_signed_count(reason.numerator_delta, language), noun=noun)
        indicator = reason.indicator_name_vi if language == "vi" else reason.indicator_name_en
        sentence = said["change_line"].format(
            unit=name, change=text.signed(score.change), indicator=f"„{indicator}“" if language == "vi"
            else f"“{indicator}”", delta=text.signed(reason.score_delta), before=_percent(reason.rate_before),
            now=_percent(reason.rate_now), items=items)
        lines.append(ChangeLine(code, text.nfc(sentence), reason.indicator_code, reason.denominator_delta))
    return lines
