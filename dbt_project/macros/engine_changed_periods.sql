{#- Which values a nightly build really changed (docs/engine-incremental.md).

    A bucket (unit, period type, period) is reopened from its changed items' earliest cohort day, and its
    deltas are recomputed whole; but a new version of an item mostly changes its deltas from the day it
    arrived on (a dossier that ended today, a rating given today). Values are running sums of their
    bucket's deltas, so none before the first differing delta can change, and a bucket whose deltas are
    all equal needs nothing. Used for the 766 indicators (int_indicator_deltas) and the plan metrics
    (int_plan_metric_deltas). -#}


{#- The reopened buckets' rows of the delta table `deltas_identifier` (in schema intermediate) as the
    previous build stored them: read by relation, before the delta model replaces them this build (it
    must depend on the model calling this). Empty on a complete rebuild and on the first build. -#}
{% macro engine_previous_deltas(deltas_identifier, measure_column) -%}
    {%- set stored = adapter.get_relation(database=target.database, schema='intermediate', identifier=deltas_identifier) -%}
    {%- if stored is not none %}
    select stored.unit_code, stored.period_type, stored.period_start, stored.{{ measure_column }}, stored.event_date,
           stored.numerator_delta, stored.denominator_delta
    from {{ stored }} as stored
    inner join {{ ref('int_engine_reopened_periods') }} as reopened
        on reopened.unit_code = stored.unit_code
       and reopened.period_type = stored.period_type
       and reopened.period_start = stored.period_start
    where not (select rebuild_all from {{ ref('int_engine_run') }})
    {%- else %}
    select null::text as unit_code, null::text as period_type, null::date as period_start,
           null::text as {{ measure_column }}, null::date as event_date,
           null::numeric as numerator_delta, null::numeric as denominator_delta
    where false
    {%- endif %}
{%- endmacro %}


{#- The reopened buckets whose recomputed deltas (`deltas`) differ from the previous ones (`previous`),
    with the first day of a differing delta (never before reopen_from). -#}
{% macro engine_changed_periods(deltas, previous, measure_column) -%}
with reopened as (

    select * from {{ ref('int_engine_reopened_periods') }}

),

recomputed as (

    select deltas.*
    from {{ deltas }} as deltas
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
    full join {{ previous }} as previous
        on previous.unit_code = recomputed.unit_code
       and previous.period_type = recomputed.period_type
       and previous.period_start = recomputed.period_start
       and previous.{{ measure_column }} = recomputed.{{ measure_column }}
       and previous.event_date = recomputed.event_date
    where recomputed.numerator_delta is distinct from previous.numerator_delta
       or recomputed.denominator_delta is distinct from previous.denominator_delta

)

select
    reopened.unit_code,
    reopened.period_type,
    reopened.period_start,
    reopened.reopen_from,
    greatest(min(differences.event_date), reopened.reopen_from) as first_changed_day
from reopened
inner join differences
    on differences.unit_code = reopened.unit_code
   and differences.period_type = reopened.period_type
   and differences.period_start = reopened.period_start
group by reopened.unit_code, reopened.period_type, reopened.period_start, reopened.reopen_from
{%- endmacro %}
