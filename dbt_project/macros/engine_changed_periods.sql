{#- Differential delta updates (docs/engine-incremental.md).

    A night's changed items touch a few (unit, cohort day) pairs, but their buckets (a unit's month,
    quarter and year) hold all of the period's events. Recomputing the reopened buckets whole made the
    nightly cost grow with the period (every unit's year, every night, at national scale). The deltas
    are sums of routed events, and routing is linear, so a build instead computes the change of the
    deltas: the changed pairs' events as they are now, minus the same pairs' events as the previous build
    stored them (kept before the event models replace them), routed the same way; the procedure-level
    counts (distinct counts, recomputed per reopened bucket) likewise as new minus old. The delta model
    adds that change to its stored rows (the `additive` incremental strategy), and the buckets with a
    non-zero change, from their first changed day, are what the values and scores recompute. Used for
    the 766 indicators (int_indicator_deltas) and the plan metrics (int_plan_metric_deltas). -#}


{#- The rows of the stored table `identifier` (schema intermediate) that this build's incremental
    pre-hook (engine_prepare_incremental) is about to delete and recompute, as the previous build left
    them: read by relation, before the model replaces them (that model must depend on the caller).
      scope='cohorts', kinds=[...]: rows whose (unit_code, cohort_date) int_engine_changes lists for kinds;
      scope='periods': rows whose (unit_column, period_type, period_start) int_engine_reopened_periods lists.
    Empty on a complete rebuild and before the table exists; `empty_columns` (name: type) shapes it then. -#}
{% macro engine_previous_rows(identifier, scope, empty_columns, kinds=none, unit_column='unit_code') -%}
    {%- set stored = adapter.get_relation(database=target.database, schema='intermediate', identifier=identifier) -%}
    {%- if stored is not none %}
    select stored.*
    from {{ stored }} as stored
    {%- if scope == 'cohorts' %}
    where (stored.unit_code, stored.cohort_date) in (
        select unit_code, cohort_date from {{ ref('int_engine_changes') }}
        where source_kind in ({% for k in kinds %}'{{ k }}'{{ ", " if not loop.last }}{% endfor %}))
    {%- else %}
    where (stored.{{ unit_column }}, stored.period_type, stored.period_start) in (
        select unit_code, period_type, period_start from {{ ref('int_engine_reopened_periods') }})
    {%- endif %}
      and not (select rebuild_all from {{ ref('int_engine_run') }})
    {%- else %}
    select {% for name, type in empty_columns.items() %}null::{{ type }} as {{ name }}{{ ", " if not loop.last }}{% endfor %}
    where false
    {%- endif %}
{%- endmacro %}


{#- The (unit, cohort day) pairs of int_engine_changes of `kinds` whose events an incremental build
    recomputes: the empty set on a complete rebuild. -#}
{% macro engine_changed_pairs(kinds) -%}
    select distinct unit_code, cohort_date from {{ ref('int_engine_changes') }}
    where source_kind in ({% for k in kinds %}'{{ k }}'{{ ", " if not loop.last }}{% endfor %})
      and not (select rebuild_all from {{ ref('int_engine_run') }})
{%- endmacro %}


{#- Routing events into every reporting unit's buckets: the body (CTEs after `with`, then the final select)
    shared by the complete build of a delta model and by its change model, which feeds it signed events.

    member_events: (unit_code, cohort_date, <measure>, event_date, numerator_delta, denominator_delta) of
      member units, pooled into every unit they report to (int_unit_lineage) while the window holds, and
      taken back the day after the window closes;
    province_events: the same shape for a province's own events (766 publications), inherited by every
      unit of the province, or none;
    bucket_events: (unit_code, period_type, period_start, <measure>, event_date, numerator_delta,
      denominator_delta) already per reporting unit and period (procedure-level distinct counts). -#}
{% macro engine_routed_deltas(measure_column, member_events, province_events, bucket_events, delta_type) -%}
routes as (

    -- member events → every reporting unit the member counts for
    select lineage.member_unit_code as source_unit_code, lineage.reporting_unit_code,
           lineage.window_from, lineage.window_to, 'member' as route_kind
    from {{ ref('int_unit_lineage') }} as lineage
    {%- if province_events is not none %}

    union all

    -- province events → every unit of the province (and the province itself)
    select lineage.reporting_unit_code, lineage.member_unit_code,
           lineage.window_from, lineage.window_to, 'province' as route_kind
    from {{ ref('int_unit_lineage') }} as lineage
    inner join {{ ref('dim_units') }} as province
        on province.unit_code = lineage.reporting_unit_code and province.unit_kind = 'PROVINCE'
    {%- endif %}

),

routed as (

    select
        routes.reporting_unit_code                                      as unit_code,
        periods.period_type,
        {{ period_start('periods.period_type', 'events.cohort_date') }} as period_start,
        events.{{ measure_column }},
        greatest(events.event_date, routes.window_from)                 as event_date,
        routes.window_to,
        events.numerator_delta,
        events.denominator_delta
    from (
        select unit_code, cohort_date, {{ measure_column }}, event_date, numerator_delta, denominator_delta,
               'member' as route_kind
        from {{ member_events }}
        {%- if province_events is not none %}
        union all
        select unit_code, cohort_date, {{ measure_column }}, event_date, numerator_delta, denominator_delta,
               'province' as route_kind
        from {{ province_events }}
        {%- endif %}
    ) as events
    inner join routes
        on routes.source_unit_code = events.unit_code
       and routes.route_kind = events.route_kind
    cross join {{ period_types_relation() }} as periods
    -- What takes effect after the window has closed never counts for this reporting unit.
    where routes.window_to is null or greatest(events.event_date, routes.window_from) <= routes.window_to

),

deltas as (

    select unit_code, period_type, period_start, {{ measure_column }}, event_date, numerator_delta, denominator_delta
    from routed

    union all

    -- The day after a window closes, take back what the member had contributed.
    select unit_code, period_type, period_start, {{ measure_column }}, window_to + 1,
           -sum(numerator_delta), -sum(denominator_delta)
    from routed
    where window_to is not null
    group by unit_code, period_type, period_start, {{ measure_column }}, window_to

    union all

    select unit_code, period_type, period_start, {{ measure_column }}, event_date, numerator_delta, denominator_delta
    from {{ bucket_events }}

)

select
    unit_code,
    period_type,
    period_start,
    {{ measure_column }},
    event_date,
    sum(numerator_delta)::{{ delta_type }}   as numerator_delta,
    sum(denominator_delta)::{{ delta_type }} as denominator_delta
from deltas
group by unit_code, period_type, period_start, {{ measure_column }}, event_date
having sum(numerator_delta) <> 0 or sum(denominator_delta) <> 0
{%- endmacro %}


{#- The reopened buckets whose deltas this build changed (rows of the change model `delta_changes`,
    which are non-zero by construction), with the first day of a changed delta (never before reopen_from):
    no value as of an earlier day can differ, being a running sum of the bucket's deltas. With `measure`
    (a column of the change model), one row per bucket and measure that changed: the values of a measure
    whose deltas did not change stay as stored, so only the changed ones are recomputed. -#}
{% macro engine_changed_periods(delta_changes, measure=none) -%}
select
    reopened.unit_code,
    reopened.period_type,
    reopened.period_start,
    {%- if measure %}
    changes.{{ measure }},
    {%- endif %}
    reopened.reopen_from,
    greatest(min(changes.event_date), reopened.reopen_from) as first_changed_day
from {{ ref('int_engine_reopened_periods') }} as reopened
inner join {{ delta_changes }} as changes
    on changes.unit_code = reopened.unit_code
   and changes.period_type = reopened.period_type
   and changes.period_start = reopened.period_start
group by reopened.unit_code, reopened.period_type, reopened.period_start, reopened.reopen_from
    {%- if measure %}, changes.{{ measure }}{% endif %}
{%- endmacro %}


{#- Custom incremental strategy `additive` (config incremental_strategy='additive', unique_key=[...]): the
    model's rows are changes to add to the stored rows of the same key. A key whose sums come to zero is
    deleted (the complete build keeps no all-zero row), a new key is inserted. One MERGE (Postgres 15),
    joined through the table's index on the key: the cost follows the change, not the table. -#}
{% macro get_incremental_additive_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set keys = arg_dict['unique_key'] -%}
    {%- set keys = [keys] if keys is string else keys -%}
    {%- set columns = arg_dict['dest_columns'] | map(attribute='name') | list -%}
    {%- set measures = columns | reject('in', keys) | list -%}
    analyze {{ source }};
    merge into {{ target }} as stored
    using {{ source }} as change
        on {% for k in keys %}stored.{{ k }} = change.{{ k }}{{ " and " if not loop.last }}{% endfor %}
    when matched and {% for m in measures %}stored.{{ m }} + change.{{ m }} = 0{{ " and " if not loop.last }}{% endfor %} then
        delete
    when matched then
        update set {% for m in measures %}{{ m }} = stored.{{ m }} + change.{{ m }}{{ ", " if not loop.last }}{% endfor %}
    when not matched then
        insert ({{ columns | join(', ') }})
        values ({% for c in columns %}change.{{ c }}{{ ", " if not loop.last }}{% endfor %})
{%- endmacro %}
