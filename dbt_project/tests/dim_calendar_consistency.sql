{#- marts.dim_calendar agrees with its seeds: a make-up working day is a weekend day that is not also a
    holiday or a day off, and every day of either seed lies inside the calendar. Returns the offending days. -#}
select calendar_date, 'make-up working day on a weekday, a holiday or a day off' as problem
from {{ ref('dim_calendar') }}
where is_makeup_working_day and (not is_weekend or is_public_holiday or is_compensatory_day_off)

union all

select seed.calendar_date, 'holiday outside the calendar'
from {{ ref('vn_public_holidays') }} as seed
left join {{ ref('dim_calendar') }} as cal on cal.calendar_date = seed.calendar_date
where cal.calendar_date is null

union all

select seed.calendar_date, 'decision outside the calendar'
from {{ ref('vn_compensatory_days') }} as seed
left join {{ ref('dim_calendar') }} as cal on cal.calendar_date = seed.calendar_date
where cal.calendar_date is null
