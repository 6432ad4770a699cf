-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_engine_reopened_periods') }}
-- The deltas the previous build had stored for the buckets this build reopens, kept before
-- int_indicator_deltas recomputes them (docs/engine-incremental.md), so that int_engine_changed_periods
-- can find the first day whose deltas really changed. Read by relation, not by ref: int_indicator_deltas
-- depends on this model, which must therefore see its state from before this build. Empty on a complete
-- rebuild and on the first build.
{% set stored = adapter.get_relation(database=target.database, schema='intermediate', identifier='int_indicator_deltas') %}
{% if stored is not none %}
select stored.unit_code, stored.period_type, stored.period_start, stored.indicator_code, stored.event_date,
       stored.numerator_delta, stored.denominator_delta
from {{ stored }} as stored
inner join {{ ref('int_engine_reopened_periods') }} as reopened
    on reopened.unit_code = stored.unit_code
   and reopened.period_type = stored.period_type
   and reopened.period_start = stored.period_start
where not (select rebuild_all from {{ ref('int_engine_run') }})
{% else %}
select null::text as unit_code, null::text as period_type, null::date as period_start, null::text as indicator_code,
       null::date as event_date, null::bigint as numerator_delta, null::bigint as denominator_delta
where false
{% endif %}
