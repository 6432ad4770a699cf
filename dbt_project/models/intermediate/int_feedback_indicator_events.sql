{{ config(
    materialized='incremental',
    incremental_strategy='append',
    indexes=[{'columns': ['unit_code', 'cohort_date']}],
    pre_hook="{{ engine_prepare_incremental('cohorts', 'feedback') }}"
) }}
-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_engine_changes') }}
-- depends_on: {{ ref('int_engine_previous_events') }}
-- The PAKN sub-indicators as events (see int_dossier_indicator_events for the method): each feedback
-- item sent in the period counts +1 until the day it becomes overdue (its handling deadline passed
-- unanswered, or answered late) or, for satisfaction, the day its published answer drew more dislikes
-- than likes or a follow-up complaint.
-- Incremental (docs/engine-incremental.md): a nightly build deletes and recomputes only the (unit, day
-- sent) cohorts of the PAKN changed since the last build (int_engine_changes).
with feedback as (

    select
        *,
        case
            when handling_deadline_at is not null
             and (answered_at is null or answered_at > handling_deadline_at)
                then handling_deadline_at::date
        end as overdue_from_date,
        case
            when published_at is not null
             and (coalesce(dislike_count, 0) > coalesce(like_count, 0) or has_follow_up_complaint)
                then published_at::date
        end as dissatisfied_from_date
    from {{ ref('stg_portal__feedback') }}
    {% if engine_is_incremental() %}
    where (unit_code, sent_at::date) in (
        select unit_code, cohort_date from {{ ref('int_engine_changes') }} where source_kind = 'feedback')
    {% endif %}

),

events as (

    select
        feedback.unit_code,
        feedback.sent_at::date                                   as cohort_date,
        event.indicator_code,
        greatest(event.event_date, feedback.sent_at::date)       as event_date,
        event.numerator_delta,
        event.denominator_delta
    from feedback
    cross join lateral (values
        ('PETITION_PROCESSING_ON_TIME', sent_at::date, 1, 1),
        ('PETITION_PROCESSING_ON_TIME', overdue_from_date, -1, 0),
        ('PETITION_HANDLING_SATISFACTION', sent_at::date, 1, 1),
        ('PETITION_HANDLING_SATISFACTION', least(overdue_from_date, dissatisfied_from_date), -1, 0),
        ('PETITION_CLASSIFICATION_TTHC', sent_at::date, (feedback_kind_code = 2)::int, 1),
        ('PETITION_CLASSIFICATION_STAFF', sent_at::date, (feedback_kind_code = 3)::int, 1)
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
