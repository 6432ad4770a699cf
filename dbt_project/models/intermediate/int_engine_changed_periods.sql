-- The reopened buckets whose deltas this build really changed, and the first day they changed
-- (docs/engine-incremental.md). A bucket is reopened from its changed items' earliest cohort day, but an
-- item's new version mostly changes its deltas from today on (a dossier that ended today, a rating
-- given today): recomputing the values from the cohort day would rewrite every day since, for every
-- unit, every night. Values as of a day before first_changed_day cannot differ, since every value is a
-- running sum of its bucket's deltas; a bucket whose deltas are all unchanged needs nothing at all.
with reopened as (

    select * from {{ ref('int_engine_reopened_periods') }}

),

recomputed as (

    select deltas.*
    from {{ ref('int_indicator_deltas') }} as deltas
    inner join reopened
        on reopened.unit_code = deltas.unit_code
       and reopened.period_type = deltas.period_type
       and reopened.period_start = deltas.period_start

),

differences as (

    select
        coalesce(recomputed.unit_code, previous.unit_code)       as unit_code,
        coalesce(recomputed.period_type, previous.period_type)   as period_type,
        coalesce(recomputed.period_start, previous.period_start) as period_start,
        coalesce(recomputed.event_date, previous.event_date)     as event_date
    from recomputed
    full join {{ ref('int_engine_previous_deltas') }} as previous
        on previous.unit_code = recomputed.unit_code
       and previous.period_type = recomputed.period_type
       and previous.period_start = recomputed.period_start
       and previous.indicator_code = recomputed.indicator_code
       and previous.event_date = recomputed.event_date
    where recomputed.numerator_delta is distinct from previous.numerator_delta
       or recomputed.denominator_delta is distinct from previous.denominator_delta

)

select
    reopened.unit_code,
    reopened.period_type,
    reopened.period_start,
    reopened.reopen_from,
    -- Never before reopen_from: nothing earlier can change (the deltas take effect on or after the cohort day).
    greatest(min(differences.event_date), reopened.reopen_from) as first_changed_day
from reopened
inner join differences
    on differences.unit_code = reopened.unit_code
   and differences.period_type = reopened.period_type
   and differences.period_start = reopened.period_start
group by reopened.unit_code, reopened.period_type, reopened.period_start, reopened.reopen_from
