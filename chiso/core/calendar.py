"""Vietnam's working-day calendar of state agencies, the one every "working days" rule counts in.

    python -m chiso.core.calendar           # rewrites dbt_project/seeds/vn_public_holidays.csv from `holidays`
    python -m chiso.core.calendar --check   # exits 1 if the committed seed differs from what would be written

Two sources, both dbt seeds (``reference`` schema), combined by ``marts.dim_calendar``:

- ``vn_public_holidays.csv``, generated here from the ``holidays`` package (never edited by hand): the
  statutory holidays of Labour Code 2019 art. 112 (kind ``holiday``), the days off the package derives
  from a holiday falling on a weekend (art. 111(3); for Tết, the package's model of the Prime Minister's
  choice; kind ``observed``) and the working-day swaps the package knows (kind ``substituted``, with the
  make-up Saturday in ``makeup_working_date``).
- ``vn_compensatory_days.csv``, curated by hand: each year's days off and make-up working Saturdays as
  decided for state agencies, with the legal source; it is the authority for the years it covers and
  fills what the package misses (e.g. the make-up Saturday 8/2/2025 of Tết Ất Tỵ).

A day is a working day when it is Monday–Friday and neither a holiday nor a day off, or when it is a
make-up working day. ``WorkingCalendar`` is the same rule in Python; tests check it equals dim_calendar.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from chiso.core.settings import REPO_ROOT

SPAN_START = date(2020, 1, 1)
SPAN_END = date(2030, 12, 31)
SEED_DIR = REPO_ROOT / "dbt_project" / "seeds"
HOLIDAYS_SEED = SEED_DIR / "vn_public_holidays.csv"
COMPENSATORY_SEED = SEED_DIR / "vn_compensatory_days.csv"
HOLIDAY_COLUMNS = ("calendar_date", "kind", "name_vi", "name_en", "makeup_working_date", "source")
COMPENSATORY_COLUMNS = ("calendar_date", "kind", "reason_vi", "legal_source")
# The package's Vietnamese label of a swapped day off: "Ngày nghỉ (thay cho ngày 04/05/2024)".
_SUBSTITUTED = re.compile(r"^Ngày nghỉ \(thay cho ngày (\d{2})/(\d{2})/(\d{4})\)$")


@dataclass(frozen=True)
class Holiday:
    calendar_date: date
    kind: str  # holiday | observed | substituted
    name_vi: str
    name_en: str
    makeup_working_date: date | None
    source: str


@dataclass(frozen=True)
class Decision:
    calendar_date: date
    kind: str  # day_off | working_day
    reason_vi: str
    legal_source: str


@dataclass(frozen=True)
class CalendarDay:
    calendar_date: date
    is_weekend: bool
    is_public_holiday: bool
    holiday_name_vi: str | None
    is_compensatory_day_off: bool
    is_makeup_working_day: bool
    is_working_day: bool
    working_day_number: int


def holidays_version() -> str:
    import holidays

    return holidays.__version__


def holiday_rows(start: date = SPAN_START, end: date = SPAN_END) -> list[Holiday]:
    """Every day off the ``holidays`` package knows for Vietnam between start and end, classified."""
    import holidays

    years = range(start.year, end.year + 1)
    vi = holidays.Vietnam(years=years, language="vi")
    en = holidays.Vietnam(years=years, language="en_US")
    statutory = holidays.Vietnam(years=years, language="vi", observed=False)
    source = f"holidays {holidays.__version__}"
    rows = []
    for day in sorted(d for d in vi if start <= d <= end):
        swapped = _SUBSTITUTED.match(vi[day])
        if swapped:
            dd, mm, yyyy = (int(x) for x in swapped.groups())
            kind, makeup = "substituted", date(yyyy, mm, dd)
        else:
            kind, makeup = ("holiday" if day in statutory else "observed"), None
        rows.append(Holiday(day, kind, vi[day], en[day], makeup, source))
    makeups = {r.makeup_working_date for r in rows if r.makeup_working_date}
    known = {d for d in vi.weekend_workdays if start <= d <= end}
    if makeups != known:  # the label format changed: better to stop than to lose a make-up day
        raise RuntimeError(f"make-up days from labels {sorted(makeups)} differ from the package's {sorted(known)}")
    return rows


def _csv(header: tuple[str, ...], rows: list[tuple]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v.isoformat() if isinstance(v, date) else v for v in row])
    return out.getvalue()


def render_holidays_seed(rows: list[Holiday] | None = None) -> str:
    rows = holiday_rows() if rows is None else rows
    return _csv(HOLIDAY_COLUMNS, [(r.calendar_date, r.kind, r.name_vi, r.name_en, r.makeup_working_date, r.source)
                                  for r in rows])


def _optional_date(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


def read_holidays(path: Path = HOLIDAYS_SEED) -> list[Holiday]:
    with path.open(encoding="utf-8", newline="") as f:
        return [Holiday(date.fromisoformat(r["calendar_date"]), r["kind"], r["name_vi"], r["name_en"],
                        _optional_date(r["makeup_working_date"]), r["source"]) for r in csv.DictReader(f)]


def read_decisions(path: Path = COMPENSATORY_SEED) -> list[Decision]:
    with path.open(encoding="utf-8", newline="") as f:
        return [Decision(date.fromisoformat(r["calendar_date"]), r["kind"], r["reason_vi"], r["legal_source"])
                for r in csv.DictReader(f)]


class WorkingCalendar:
    """The dim_calendar rule in Python, over [start, end]."""

    def __init__(self, holidays: list[Holiday], decisions: list[Decision],
                 start: date = SPAN_START, end: date = SPAN_END):
        by_day = {h.calendar_date: h for h in holidays}
        days_off = {d.calendar_date for d in decisions if d.kind == "day_off"}
        makeup = ({d.calendar_date for d in decisions if d.kind == "working_day"}
                  | {h.makeup_working_date for h in holidays if h.makeup_working_date})
        self.start, self.end = start, end
        self.days: dict[date, CalendarDay] = {}
        self._by_number: dict[int, date] = {}
        number, day = 0, start
        while day <= end:
            h = by_day.get(day)
            weekend = day.isoweekday() >= 6
            public = h is not None and h.kind == "holiday"
            day_off = not public and ((h is not None and h.kind in ("observed", "substituted")) or day in days_off)
            working = day in makeup or not (weekend or public or day_off)
            if working:
                number += 1
                self._by_number[number] = day
            self.days[day] = CalendarDay(day, weekend, public, h.name_vi if h else None, day_off,
                                         day in makeup, working, number)
            day += timedelta(days=1)

    @classmethod
    def from_seeds(cls) -> WorkingCalendar:
        return cls(read_holidays(), read_decisions())

    def is_working_day(self, day: date) -> bool:
        return self.days[day].is_working_day

    def working_day_number(self, day: date) -> int | None:
        """Working days from the start of the calendar up to and including ``day``; None outside it."""
        return self.days[day].working_day_number if day in self.days else None

    def working_days_between(self, start: date, end: date) -> int | None:
        """Working days after ``start`` up to and including ``end`` (the macro working_days_between)."""
        first, last = self.working_day_number(start), self.working_day_number(end)
        return None if first is None or last is None else last - first

    def add_working_days(self, day: date, n: int) -> date | None:
        """The nth working day after ``day`` (n ≥ 1); ``day`` itself for n = 0; None for n < 0 or outside
        the calendar (the macro add_working_days)."""
        if n < 0:
            return None
        if n == 0:
            return day
        number = self.working_day_number(day)
        return None if number is None else self._by_number.get(number + n)


# ----------------------------------------------------------------------------- days off in the reports

WEEKDAYS = {
    "vi": ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ nhật"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}


def day_off_reason(day: CalendarDay, language: str = "vi", holiday_name_en: str | None = None,
                   decision_reason_vi: str | None = None) -> str | None:
    """Why ``day`` is not a working day, in words ("Chủ nhật", "Quốc khánh", "ngày nghỉ bù …"); None on
    a working day (a make-up Saturday included). The reports' weekend and holiday policy
    (docs/calendar.md) shows it wherever a day's figures are read."""
    if day.is_working_day:
        return None
    if day.is_public_holiday and day.holiday_name_vi:
        return day.holiday_name_vi if language == "vi" else holiday_name_en or day.holiday_name_vi
    if day.is_compensatory_day_off:
        reason = decision_reason_vi or day.holiday_name_vi
        if language == "vi":
            return f"ngày nghỉ bù ({reason})" if reason else "ngày nghỉ bù"
        return f"day off in lieu ({holiday_name_en or reason})" if (holiday_name_en or reason) else "day off in lieu"
    return WEEKDAYS["vi" if language == "vi" else "en"][day.calendar_date.weekday()]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render_holidays_seed()
    current = HOLIDAYS_SEED.read_text(encoding="utf-8") if HOLIDAYS_SEED.exists() else None
    if "--check" in argv:
        if current != text:
            print(f"{HOLIDAYS_SEED} is stale: run python -m chiso.core.calendar", file=sys.stderr)
            return 1
        return 0
    if current != text:
        HOLIDAYS_SEED.write_text(text, encoding="utf-8")
    print(f"{HOLIDAYS_SEED.relative_to(REPO_ROOT)}: {text.count(chr(10)) - 1} days, holidays {holidays_version()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
