"""The working-day calendar: known Vietnamese holidays and swaps, the generated seed kept fresh, and
the same working-day arithmetic in Python (chiso.core.calendar) as in dbt (dim_calendar and its macros)."""

from __future__ import annotations

import os
import random
from datetime import date, timedelta

import psycopg
import pytest

from chiso.core import calendar as cal
from chiso.core import settings
from chiso.transform.runner import dbt_environment, run_dbt

D = date.fromisoformat


@pytest.fixture(scope="module")
def calendar() -> cal.WorkingCalendar:
    return cal.WorkingCalendar.from_seeds()


def days(first: str, last: str) -> list[date]:
    start, end = D(first), D(last)
    return [start + timedelta(n) for n in range((end - start).days + 1)]


def test_committed_holiday_seed_is_what_the_package_generates():
    assert cal.HOLIDAYS_SEED.read_text(encoding="utf-8") == cal.render_holidays_seed(), (
        "dbt_project/seeds/vn_public_holidays.csv is stale: run python -m chiso.core.calendar")
    assert cal.main(["--check"]) == 0


def test_every_year_has_its_statutory_holidays():
    by_year: dict[int, list[cal.Holiday]] = {}
    for h in cal.read_holidays():
        if h.kind == "holiday":
            by_year.setdefault(h.calendar_date.year, []).append(h)
    assert sorted(by_year) == list(range(2020, 2031))
    for year, rows in by_year.items():
        dates = {h.calendar_date for h in rows}
        assert {date(year, 1, 1), date(year, 4, 30), date(year, 5, 1), date(year, 9, 2)} <= dates
        # New Year 1 + Tết 5 + Giỗ Tổ 1 + 30/4 1 + 1/5 1 + National Day 1 (2 from 2021) + 24/11 from 2026.
        assert len(rows) == 10 + (year >= 2021) + (year >= 2026), year
        assert (date(year, 11, 24) in dates) == (year >= 2026)


@pytest.mark.parametrize(("year", "tet", "gio_to"), [
    (2020, "2020-01-25", "2020-04-02"), (2021, "2021-02-12", "2021-04-21"), (2022, "2022-02-01", "2022-04-10"),
    (2023, "2023-01-22", "2023-04-29"), (2024, "2024-02-10", "2024-04-18"), (2025, "2025-01-29", "2025-04-07"),
    (2026, "2026-02-17", "2026-04-26"), (2027, "2027-02-06", "2027-04-16"), (2028, "2028-01-26", "2028-04-04"),
    (2029, "2029-02-13", "2029-04-23"),
    # Vietnam reckons its lunar calendar at UTC+7: the new moon of February 2030 falls on 2/2 in Hanoi but
    # on 3/2 in Beijing, so Tết is a day before the Chinese New Year.
    (2030, "2030-02-02", "2030-04-12"),
])
def test_lunar_holidays_fall_on_their_solar_dates(year, tet, gio_to):
    names = {h.calendar_date: h.name_vi for h in cal.read_holidays() if h.kind == "holiday"}
    assert names[D(tet)] == "Tết Nguyên Đán"
    assert names[D(gio_to)] == "Ngày Giỗ Tổ Hùng Vương"


@pytest.mark.parametrize(("first", "last", "working_before", "working_after"), [
    ("2023-01-20", "2023-01-26", "2023-01-19", "2023-01-27"),  # Tết Quý Mão, 7 days
    ("2024-02-08", "2024-02-14", "2024-02-07", "2024-02-15"),  # Tết Giáp Thìn, 7 days
    ("2024-04-27", "2024-05-01", "2024-04-26", "2024-05-02"),  # 30/4–1/5/2024, 29/4 swapped for 4/5
    ("2024-08-31", "2024-09-03", "2024-08-30", "2024-09-04"),  # Quốc khánh 2024: 2/9 and 3/9
    ("2025-01-25", "2025-02-02", "2025-01-24", "2025-02-03"),  # Tết Ất Tỵ, 9 days, 27/1 swapped for 8/2
    ("2025-04-30", "2025-05-04", "2025-04-29", "2025-05-05"),  # 30/4–1/5/2025, 2/5 swapped for 26/4
    ("2025-08-30", "2025-09-02", "2025-08-29", "2025-09-03"),  # Quốc khánh 2025: 1/9 and 2/9
    ("2026-02-14", "2026-02-22", "2026-02-13", "2026-02-23"),  # Tết Bính Ngọ, 9 days
    ("2026-04-25", "2026-04-27", "2026-04-24", "2026-04-28"),  # Giỗ Tổ on Sunday 26/4/2026, nghỉ bù 27/4
])
def test_known_breaks_are_days_off_between_working_days(calendar, first, last, working_before, working_after):
    assert [d for d in days(first, last) if calendar.is_working_day(d)] == []
    assert calendar.is_working_day(D(working_before)) and calendar.is_working_day(D(working_after))


def test_make_up_saturdays_are_working_days(calendar):
    makeup = sorted(d for d, day in calendar.days.items() if day.is_makeup_working_day)
    assert [d.isoformat() for d in makeup] == ["2024-05-04", "2025-02-08", "2025-04-26", "2026-08-22"]
    assert all(d.isoweekday() == 6 and calendar.is_working_day(d) for d in makeup)
    assert calendar.days[D("2025-09-01")].is_public_holiday  # the day next to 2/9, chosen for 2025
    assert calendar.days[D("2025-01-27")].is_compensatory_day_off


def test_curated_decisions_cover_what_the_package_knows_for_their_years():
    decisions = cal.read_decisions()
    curated_years = {d.calendar_date.year for d in decisions}
    assert curated_years == {2023, 2024, 2025, 2026}
    day_off = {d.calendar_date for d in decisions if d.kind == "day_off"}
    working = {d.calendar_date for d in decisions if d.kind == "working_day"}
    package = [h for h in cal.read_holidays() if h.calendar_date.year in curated_years]
    # Every day off the package derives beyond the statutory days is a curated decision, and vice versa.
    assert day_off == {h.calendar_date for h in package if h.kind != "holiday"}
    assert all(d.isoweekday() <= 5 for d in day_off) and all(d.isoweekday() == 6 for d in working)
    # The package's make-up Saturdays are curated; the curation adds the one it misses (Tết 2025).
    package_makeup = {h.makeup_working_date for h in package if h.makeup_working_date}
    assert working - package_makeup == {D("2025-02-08")} and package_makeup <= working
    assert all(d.reason_vi and d.legal_source for d in decisions)


def test_working_day_arithmetic_in_python(calendar):
    rng = random.Random(766)
    for _ in range(2000):
        start = D("2020-01-01") + timedelta(rng.randrange(4000))
        n = rng.randrange(0, 40)
        end = calendar.add_working_days(start, n)
        if end is None:  # past the end of the calendar
            assert start + timedelta(n * 2 + 20) > cal.SPAN_END
            continue
        assert calendar.working_days_between(start, end) == n
        if n:
            assert calendar.is_working_day(end)
            assert calendar.working_days_between(start, end - timedelta(1)) == n - 1  # the earliest such day
    assert calendar.add_working_days(D("2025-01-24"), 1) == D("2025-02-03")
    assert calendar.add_working_days(D("2025-08-25"), 15) == D("2025-09-17")  # PAKN: 15 working days
    assert calendar.add_working_days(D("2030-12-31"), 1) is None
    assert calendar.add_working_days(D("2025-02-03"), -1) is None
    assert calendar.working_days_between(D("2019-12-31"), D("2020-01-02")) is None


@pytest.fixture(scope="module")
def calendar_db(make_database):
    url = make_database("chiso_calendar")
    run_dbt(["build", "--select", "+dim_calendar"], url)  # seeds, model, its data and unit tests, macro tests
    return url


def test_dim_calendar_equals_the_python_calendar(calendar_db, calendar):
    with psycopg.connect(calendar_db) as conn:
        rows = conn.execute("""
            select calendar_date, is_weekend, is_public_holiday, holiday_name_vi, is_compensatory_day_off,
                   is_makeup_working_day, is_working_day, working_day_number
            from marts.dim_calendar order by calendar_date""").fetchall()
    assert [cal.CalendarDay(*row) for row in rows] == list(calendar.days.values())


def compile_inline(url: str, sql: str) -> str:
    from dbt.cli.main import dbtRunner

    project_dir = settings.require("CHISO_DBT_PROJECT_DIR")
    env = dbt_environment(url)
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        result = dbtRunner().invoke(["compile", "--inline", sql, "--project-dir", project_dir,
                                     "--profiles-dir", project_dir, "--quiet"])
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert result.success, result.exception
    return result.result.results[0].node.compiled_code


def test_macros_equal_the_python_arithmetic(calendar_db, calendar):
    rng = random.Random(5)
    cases = [(D("2025-01-24"), D("2025-02-03"), 1), (D("2025-02-01"), D("2025-01-24"), 0),
             (D("2030-12-20"), D("2030-12-31"), 30)]
    for _ in range(500):
        start = D("2020-01-01") + timedelta(rng.randrange(4018))
        cases.append((start, start + timedelta(rng.randrange(-60, 60)), rng.randrange(0, 60)))
    values = ", ".join(f"(date '{a}', timestamp '{b} 13:45', {n})" for a, b, n in cases)
    sql = compile_inline(calendar_db, f"""
        select start_day, end_ts, n, {{{{ working_days_between('start_day', 'end_ts') }}}} as between_days,
               {{{{ add_working_days('start_day', 'n') }}}} as due
        from (values {values}) as cases (start_day, end_ts, n)""")
    with psycopg.connect(calendar_db) as conn:
        results = conn.execute(sql).fetchall()
    assert len(results) == len(cases)
    for start, end_ts, n, between, due in results:
        assert between == calendar.working_days_between(start, end_ts.date()), (start, end_ts)
        assert due == calendar.add_working_days(start, n), (start, n)
