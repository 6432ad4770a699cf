-- depends_on: {{ ref('int_engine_previous_events') }}
-- The CKMB publication sub-indicators as events of the publishing province (inherited by each of its
-- units in fct_indicator_values): decisions are counted in the period they were made; a procedure
-- counts as made public (on time, complete) from the day it was made public.
with publications as (

    select
        *,
        decided_at::date      as decided_date,
        made_public_at::date  as made_public_date
    from {{ ref('stg_portal__procedure_publications') }}

),

events as (

    select
        publications.publisher_unit_code                      as unit_code,
        publications.decided_date                             as cohort_date,
        event.indicator_code,
        greatest(event.event_date, publications.decided_date) as event_date,
        event.numerator_delta,
        event.denominator_delta
    from publications
    cross join lateral (values
        -- Decided at least 5 working days before the legal basis takes effect.
        ('PUBLISH_ON_TIME', decided_date,
            ({{ working_days_between('decided_date', 'legal_basis_effective_at::date') }} >= 5)::int, 1),
        -- Made public in the national database within 5 working days of the decision.
        ('PUBLIC_UPDATE_ON_TIME', decided_date, 0, 1),
        ('PUBLIC_UPDATE_ON_TIME', made_public_date,
            ({{ working_days_between('decided_date', 'made_public_date') }} <= 5)::int, 0),
        -- Public procedures with all 7 mandatory parts.
        ('PUBLIC_CONTENT_FULL', made_public_date, has_all_seven_parts::int, 1)
    ) as event (indicator_code, event_date, numerator_delta, denominator_delta)
    where event.event_date is not null
      and (event.numerator_delta <> 0 or event.denominator_delta <> 0)

)

select
    unit_code, cohort_date, indicator_code, event_date,
    sum(numerator_delta)::bigint   as numerator_delta,
    sum(denominator_delta)::bigint as denominator_delta
from events
group by unit_code, cohort_date, indicator_code, event_date
