{#- The working_days macros on the real calendar: known deadlines across Tết, swaps and nghỉ bù.
    Returns the cases whose result differs from the expected one (none when the test passes). -#}
with between_cases (label, start_ts, end_ts, expected) as (
    values
        ('same day', timestamp '2025-03-10 08:00', timestamp '2025-03-10 17:00', 0),
        ('next working day', timestamp '2025-03-10 08:00', timestamp '2025-03-11 08:00', 1),
        ('over Tết Ất Tỵ 25/1–2/2/2025', timestamp '2025-01-24 16:30', timestamp '2025-02-03 08:00', 1),
        ('start on a day off does not count', timestamp '2025-01-25 09:00', timestamp '2025-02-03 08:00', 1),
        ('end on a day off adds nothing', timestamp '2025-01-24 09:00', timestamp '2025-02-02 09:00', 0),
        ('make-up Saturday 8/2/2025 counts', timestamp '2025-02-07 09:00', timestamp '2025-02-08 09:00', 1),
        ('end before start is negative', timestamp '2025-02-03 08:00', timestamp '2025-01-24 16:30', -1),
        ('a plain week', timestamp '2025-03-07 00:00', timestamp '2025-03-14 00:00', 5),
        ('outside the calendar', timestamp '2019-12-31 00:00', timestamp '2020-01-02 00:00', null)
),

add_cases (label, start_day, n, expected) as (
    values
        ('first working day after Tết 2025', date '2025-01-24', 1, date '2025-02-03'),
        ('6th is the make-up Saturday', date '2025-01-24', 6, date '2025-02-08'),
        ('from a day off', date '2025-02-01', 1, date '2025-02-03'),
        ('30/4–4/5/2025 off, Saturday 26/4 worked', date '2025-04-25', 1, date '2025-04-26'),
        ('30/4–4/5/2025 off (2/5 swapped)', date '2025-04-29', 1, date '2025-05-05'),
        ('Giỗ Tổ 26/4/2026 (Sunday) and nghỉ bù 27/4', date '2026-04-24', 1, date '2026-04-28'),
        ('PAKN handled within 15 working days', date '2025-08-25', 15, date '2025-09-17'),
        ('zero is the day itself', date '2025-02-01', 0, date '2025-02-01'),
        ('negative is not supported', date '2025-02-03', -1, null),
        ('past the calendar', date '2030-12-31', 1, null)
)

select label, expected::text, {{ working_days_between('start_ts', 'end_ts') }}::text as actual
from between_cases
where {{ working_days_between('start_ts', 'end_ts') }} is distinct from expected

union all

select label, expected::text, {{ add_working_days('start_day', 'n') }}::text as actual
from add_cases
where {{ add_working_days('start_day', 'n') }} is distinct from expected
