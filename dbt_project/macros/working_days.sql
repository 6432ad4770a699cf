{#- Working-day arithmetic against marts.dim_calendar (state agencies' calendar, 2020–2030).

    Whole days only: a timestamp argument is cast to its date (the warehouse's timestamps are
    Asia/Ho_Chi_Minh wall clock), so its time of day is ignored. Each macro is an SQL expression
    (correlated scalar subqueries on dim_calendar's indexed columns), usable in any select or where.
    Null in, or a day outside the calendar, gives null. -#}


{#- Working days from the calendar's first day up to and including `day`. -#}
{% macro calendar_working_day_number(day) -%}
    (select wd_cal.working_day_number from {{ ref('dim_calendar') }} as wd_cal
     where wd_cal.calendar_date = cast({{ day }} as date))
{%- endmacro %}


{#- The number of working days AFTER the start day up to and INCLUDING the end day:
    working_day_number(end) − working_day_number(start). The start day never counts (whether or not it
    is a working day); the end day counts when it is a working day. Same day → 0; end before start →
    negative (minus the working days after end up to and including start).
    E.g. a decision on Friday 24/1/2025 and a publication on Monday 3/2/2025 (Tết Ất Tỵ in between):
    1 working day. "Published ≥ 5 working days before effect": working_days_between(decided, effective) >= 5;
    "made public ≤ 5 working days after the decision": working_days_between(decided, made_public) <= 5. -#}
{% macro working_days_between(start_ts, end_ts) -%}
    ({{ calendar_working_day_number(end_ts) }} - {{ calendar_working_day_number(start_ts) }})
{%- endmacro %}


{#- The date of the n-th working day AFTER `day` (the tech-note convention: a deadline of N working days
    after a decision is the N-th working day after the decision's day, whether or not that day is a
    working day itself). For n ≥ 1 the result is always a working day and
    working_days_between(day, add_working_days(day, n)) = n, the earliest date with that property.
    n = 0 → `day` itself (as a date); n < 0 or null → null (count backwards with working_days_between);
    null past the end of the calendar. E.g. PAKN received Monday 25/8/2025, handled ≤ 15 working days:
    add_working_days('2025-08-25', 15) = 17/9/2025 (1–2/9 are National Day). -#}
{% macro add_working_days(day, n) -%}
    (case
        when ({{ n }}) = 0 then cast({{ day }} as date)
        when ({{ n }}) > 0 then (
            select wd_target.calendar_date from {{ ref('dim_calendar') }} as wd_target
            where wd_target.is_working_day
              and wd_target.working_day_number = {{ calendar_working_day_number(day) }} + ({{ n }})
        )
    end)
{%- endmacro %}
