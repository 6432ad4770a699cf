{#- Vietnam's working-day calendar of state agencies, one row per day of [calendar_start, calendar_end]
    (vars; default 2020-01-01..2030-12-31, the span of the generated holiday seed).
    A working day is Monday–Friday and neither a statutory holiday nor a day off, or a make-up Saturday.
    working_day_number counts working days from calendar_start up to and including the day, so the
    working days after a day up to and including another are the difference of their numbers (the
    working_days macros in macros/working_days.sql rely on it). -#}
{{ config(indexes=[{'columns': ['calendar_date'], 'unique': true}, {'columns': ['working_day_number']}]) }}

with days as (
    select day::date as calendar_date
    from generate_series(
        date '{{ var("calendar_start", "2020-01-01") }}',
        date '{{ var("calendar_end", "2030-12-31") }}',
        interval '1 day'
    ) as day
),

package_makeup_days as (
    select distinct makeup_working_date as calendar_date
    from {{ ref('vn_public_holidays') }}
    where makeup_working_date is not null
),

flags as (
    select
        days.calendar_date,
        extract(isodow from days.calendar_date) >= 6 as is_weekend,
        coalesce(holiday.kind = 'holiday', false) as is_public_holiday,
        holiday.name_vi as holiday_name_vi,
        holiday.name_en as holiday_name_en,
        not coalesce(holiday.kind = 'holiday', false)
            and (coalesce(holiday.kind in ('observed', 'substituted'), false)
                 or coalesce(decision.kind = 'day_off', false)) as is_compensatory_day_off,
        coalesce(decision.kind = 'working_day', false) or package_makeup.calendar_date is not null
            as is_makeup_working_day,
        decision.reason_vi as decision_reason_vi,
        decision.legal_source as decision_legal_source
    from days
    left join {{ ref('vn_public_holidays') }} as holiday on holiday.calendar_date = days.calendar_date
    left join {{ ref('vn_compensatory_days') }} as decision on decision.calendar_date = days.calendar_date
    left join package_makeup_days as package_makeup on package_makeup.calendar_date = days.calendar_date
),

working as (
    select
        *,
        is_makeup_working_day or not (is_weekend or is_public_holiday or is_compensatory_day_off) as is_working_day
    from flags
)

select
    calendar_date,
    (extract(year from calendar_date) * 10000 + extract(month from calendar_date) * 100
        + extract(day from calendar_date))::integer as date_key,
    extract(year from calendar_date)::integer as year,
    extract(quarter from calendar_date)::integer as quarter,
    extract(month from calendar_date)::integer as month,
    extract(day from calendar_date)::integer as day_of_month,
    (extract(year from calendar_date) * 10 + extract(quarter from calendar_date))::integer as year_quarter_key,
    (extract(year from calendar_date) * 100 + extract(month from calendar_date))::integer as year_month_key,
    extract(isoyear from calendar_date)::integer as iso_year,
    extract(week from calendar_date)::integer as iso_week,
    (extract(isoyear from calendar_date) * 100 + extract(week from calendar_date))::integer as iso_year_week_key,
    extract(isodow from calendar_date)::integer as iso_day_of_week,
    is_weekend,
    is_public_holiday,
    holiday_name_vi,
    holiday_name_en,
    is_compensatory_day_off,
    is_makeup_working_day,
    is_working_day,
    sum(case when is_working_day then 1 else 0 end) over (order by calendar_date)::integer as working_day_number,
    decision_reason_vi,
    decision_legal_source
from working
