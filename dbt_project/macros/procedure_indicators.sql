{#- Counts of procedures ("procedures with at least one dossier that…"), defined once.

    A procedure counts for a reporting unit and period from the first day in the period on which one of
    the unit's dossiers (its members' for a parent or successor, int_unit_lineage) showed a feature.
    These are distinct counts, so they cannot be summed from members like dossier counts. The engine
    keeps, per (reporting unit, period, procedure), the first day of each feature (int_procedure_first_days
    for the 766, int_plan_procedure_first_days for the plan metrics) and moves it from the night's changed
    dossiers alone (procedure_first_day_changes below; docs/engine-incremental.md). -#}


{#- The 766's features of a (unit, reception day, procedure): name → SQL over fct_dossiers' columns, true
    when any of that day's dossiers of the procedure has it. -#}
{% macro procedure_features() -%}
    {{ return({
        'paid_online': "is_paid_online",
        'has_fee': "has_fee",
        'connected_to_citizen_data': "uses_population_data and serves_individuals",
        'serves_individuals': "serves_individuals",
        'offered_online': "coalesce(online_level in ('TOAN_TRINH', 'MOT_PHAN'), false)",
        'online_dossier_of_online_service': "is_online and coalesce(online_level <> 'KHONG', true)",
        'online_service': "coalesce(online_level <> 'KHONG', true)",
    }) }}
{%- endmacro %}


{#- The plan metrics' features: a dossier of a procedure eligible for online service (or offered online at
    all), online among those, eligible, and eligible and received fully online. -#}
{% macro plan_procedure_features() -%}
    {{ return({
        'plan_received': "coalesce(is_full_online_eligible or online_level in ('TOAN_TRINH', 'MOT_PHAN'), false)",
        'plan_online': "coalesce(is_online and (is_full_online_eligible or online_level in ('TOAN_TRINH', 'MOT_PHAN')), false)",
        'plan_eligible': "coalesce(is_full_online_eligible, false)",
        'plan_full_online': "coalesce(is_full_online_eligible and online_level = 'TOAN_TRINH', false)",
    }) }}
{%- endmacro %}


{#- Which feature's first day puts a procedure into which side of which 766 sub-indicator ('received':
    the procedure had any received dossier):
      TTTT ONLINE_FORMALITY_PAYMENT: procedures with a dossier paid online / procedures with fee-bearing dossiers;
      TTTT FEE_FORMALITY_INTEGRATED: procedures whose dossiers carry fee data / procedures with a fee (provisional);
      MDSH CITIZEN_DATA_CONNECTED_FORMALITY: procedures with a dossier using population data / procedures
        serving individuals;
      ONLINE, tech-note split: PROCEDURES_ONLINE, procedures offered online / procedures;
        ONLINE_SERVICES_WITH_DOSSIER, online services with an online dossier / online services. -#}
{% macro procedure_indicator_sides() -%}
    {{ return([
        ('ONLINE_FORMALITY_PAYMENT', 'numerator', 'paid_online'),
        ('ONLINE_FORMALITY_PAYMENT', 'denominator', 'has_fee'),
        ('FEE_FORMALITY_INTEGRATED', 'numerator', 'has_fee'),
        ('FEE_FORMALITY_INTEGRATED', 'denominator', 'has_fee'),
        ('CITIZEN_DATA_CONNECTED_FORMALITY', 'numerator', 'connected_to_citizen_data'),
        ('CITIZEN_DATA_CONNECTED_FORMALITY', 'denominator', 'serves_individuals'),
        ('PROCEDURES_ONLINE', 'numerator', 'offered_online'),
        ('PROCEDURES_ONLINE', 'denominator', 'received'),
        ('ONLINE_SERVICES_WITH_DOSSIER', 'numerator', 'online_dossier_of_online_service'),
        ('ONLINE_SERVICES_WITH_DOSSIER', 'denominator', 'online_service'),
    ]) }}
{%- endmacro %}


{#- The plan metrics counted by procedure (plan_metric_registry): a procedure enters the denominator on
    its first dossier of the kind and the numerator on the first one meeting the condition. -#}
{% macro plan_procedure_metric_sides() -%}
    {{ return([
        ('ELIGIBLE_PROCEDURES_RECEIVED_ONLINE', 'numerator', 'plan_online'),
        ('ELIGIBLE_PROCEDURES_RECEIVED_ONLINE', 'denominator', 'plan_received'),
        ('ELIGIBLE_PROCEDURES_FULL_ONLINE', 'numerator', 'plan_full_online'),
        ('ELIGIBLE_PROCEDURES_FULL_ONLINE', 'denominator', 'plan_eligible'),
    ]) }}
{%- endmacro %}


{#- The first-day columns of each state: 'received' is the row's presence, the rest are features. -#}
{% macro procedure_first_day_features() -%}
    {{ return(['received'] + (procedure_features().keys() | list)) }}
{%- endmacro %}

{% macro plan_procedure_first_day_features() -%}
    {{ return(plan_procedure_features().keys() | list) }}
{%- endmacro %}


{#- A day row's feature as a condition ('received': any row). -#}
{% macro procedure_day_has(alias, feature) -%}
    {%- if feature == 'received' -%}true{%- else -%}{{ alias }}.{{ feature }}{%- endif -%}
{%- endmacro %}


{#- The day a member's day row takes effect for a reporting unit: its reception day, or with `windowed`
    (the plan metrics) no earlier than the lineage window's first day, and only within the window. -#}
{% macro procedure_effective_day(days, lineage, windowed) -%}
    {%- if windowed -%}greatest({{ days }}.cohort_date, {{ lineage }}.window_from){%- else -%}{{ days }}.cohort_date{%- endif -%}
{%- endmacro %}

{% macro procedure_in_window(days, lineage, windowed) -%}
    {%- if windowed -%}
    ({{ lineage }}.window_to is null or greatest({{ days }}.cohort_date, {{ lineage }}.window_from) <= {{ lineage }}.window_to)
    {%- else -%}true{%- endif -%}
{%- endmacro %}


{#- The complete build of a first-day state from int_procedure_days. -#}
{% macro procedure_first_days_complete(features, windowed) -%}
select *
from (
    select
        lineage.reporting_unit_code,
        periods.period_type,
        {{ period_start('periods.period_type', 'days.cohort_date') }} as period_start,
        days.procedure_code,
        {%- for f in features %}
        min({{ procedure_effective_day('days', 'lineage', windowed) }}) filter (where {{ procedure_day_has('days', f) }}) as first_{{ f }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ ref('int_procedure_days') }} as days
    inner join {{ ref('int_unit_lineage') }} as lineage on lineage.member_unit_code = days.unit_code
    cross join {{ period_types_relation() }} as periods
    where {{ procedure_in_window('days', 'lineage', windowed) }}
    group by 1, 2, 3, 4
) as firsts
where coalesce({% for f in features %}first_{{ f }}{{ ", " if not loop.last }}{% endfor %}) is not null
{%- endmacro %}


{#- How this build moves the first days of the state table `state_identifier` (schema intermediate), from
    the changed dossiers' (unit, reception day) pairs alone: their int_procedure_days rows now against the
    same rows as the previous build stored them (int_engine_previous_procedure_days). A feature gained on
    a day can only bring a first day earlier: the new first day is the earlier of the stored one and the
    day. A feature lost can move it later or away: those keys (rare: a dossier moved, cancelled or
    corrected) are recomputed from their members' days in the period. Only the keys whose first days
    changed are kept, with the old and the new values (old_first_<f>, new_first_<f>), and is_recomputed.
    Empty on a complete rebuild. The cost follows the night's changed rows, not the length of the periods. -#}
{% macro procedure_first_day_changes(state_identifier, features, windowed) -%}
{%- set stored = adapter.get_relation(database=target.database, schema='intermediate', identifier=state_identifier) %}
with changed_pairs as (

    {{ engine_changed_pairs(['dossier']) }}

),

new_days as (

    select days.*
    from {{ ref('int_procedure_days') }} as days
    inner join changed_pairs
        on changed_pairs.unit_code = days.unit_code and changed_pairs.cohort_date = days.cohort_date

),

touched as materialized (

    -- The (unit, day, procedure) rows whose features differ between the two builds, each feature as
    -- gained or lost (a row that appears or disappears gains or loses all it has).
    select
        coalesce(new_days.unit_code, old_days.unit_code)           as unit_code,
        coalesce(new_days.cohort_date, old_days.cohort_date)       as cohort_date,
        coalesce(new_days.procedure_code, old_days.procedure_code) as procedure_code,
        {%- for f in features %}
        coalesce(new_days.unit_code is not null and {{ procedure_day_has('new_days', f) }}, false)
            and not coalesce(old_days.unit_code is not null and {{ procedure_day_has('old_days', f) }}, false) as gained_{{ f }},
        coalesce(old_days.unit_code is not null and {{ procedure_day_has('old_days', f) }}, false)
            and not coalesce(new_days.unit_code is not null and {{ procedure_day_has('new_days', f) }}, false) as lost_{{ f }}{{ "," if not loop.last }}
        {%- endfor %}
    from new_days
    full join {{ ref('int_engine_previous_procedure_days') }} as old_days
        on old_days.unit_code = new_days.unit_code
       and old_days.cohort_date = new_days.cohort_date
       and old_days.procedure_code = new_days.procedure_code

),

keyed as materialized (

    -- Routed to every reporting unit of the member (as the complete build pools them) and period.
    select
        lineage.reporting_unit_code,
        periods.period_type,
        {{ period_start('periods.period_type', 'touched.cohort_date') }} as period_start,
        touched.procedure_code,
        bool_or({% for f in features %}touched.lost_{{ f }}{{ " or " if not loop.last }}{% endfor %}) as has_loss,
        {%- for f in features %}
        min({{ procedure_effective_day('touched', 'lineage', windowed) }})
            filter (where touched.gained_{{ f }} and {{ procedure_in_window('touched', 'lineage', windowed) }}) as gained_{{ f }}{{ "," if not loop.last }}
        {%- endfor %}
    from touched
    inner join {{ ref('int_unit_lineage') }} as lineage on lineage.member_unit_code = touched.unit_code
    cross join {{ period_types_relation() }} as periods
    where {% for f in features %}touched.gained_{{ f }} or touched.lost_{{ f }}{{ " or " if not loop.last }}{% endfor %}
    group by 1, 2, 3, 4

),

recomputed as materialized (

    -- Keys that lost a feature somewhere: their first days from their members' days in the period.
    select
        keyed.reporting_unit_code,
        keyed.period_type,
        keyed.period_start,
        keyed.procedure_code,
        {%- for f in features %}
        min({{ procedure_effective_day('days', 'lineage', windowed) }}) filter (where {{ procedure_day_has('days', f) }}) as {{ f }}{{ "," if not loop.last }}
        {%- endfor %}
    from keyed
    inner join {{ ref('int_unit_lineage') }} as lineage on lineage.reporting_unit_code = keyed.reporting_unit_code
    inner join {{ ref('int_procedure_days') }} as days
        on days.unit_code = lineage.member_unit_code
       and days.procedure_code = keyed.procedure_code
       and days.cohort_date between keyed.period_start
                                and {{ period_end('keyed.period_type', 'keyed.period_start') }}
    where keyed.has_loss and {{ procedure_in_window('days', 'lineage', windowed) }}
    group by 1, 2, 3, 4

),

compared as (

    select
        keyed.reporting_unit_code,
        keyed.period_type,
        keyed.period_start,
        keyed.procedure_code,
        keyed.has_loss as is_recomputed,
        {%- for f in features %}
        {%- set old = 'stored.first_' ~ f if stored is not none else 'null::date' %}
        {{ old }} as old_first_{{ f }},
        case when keyed.has_loss then recomputed.{{ f }} else least({{ old }}, keyed.gained_{{ f }})
        end as new_first_{{ f }}{{ "," if not loop.last }}
        {%- endfor %}
    from keyed
    {%- if stored is not none %}
    left join {{ stored }} as stored
        on stored.reporting_unit_code = keyed.reporting_unit_code
       and stored.period_type = keyed.period_type
       and stored.period_start = keyed.period_start
       and stored.procedure_code = keyed.procedure_code
    {%- endif %}
    left join recomputed
        on recomputed.reporting_unit_code = keyed.reporting_unit_code
       and recomputed.period_type = keyed.period_type
       and recomputed.period_start = keyed.period_start
       and recomputed.procedure_code = keyed.procedure_code

)

select *
from compared
where {% for f in features %}old_first_{{ f }} is distinct from new_first_{{ f }}{{ " or " if not loop.last }}{% endfor %}
{%- endmacro %}


{#- The nightly rows of a first-day state: the keys procedure_first_day_changes moved, with their new first
    days, unless nothing is left of them (the pre-hook has deleted every moved key). -#}
{% macro procedure_first_days_moved(changes, features) -%}
select
    reporting_unit_code,
    period_type,
    period_start,
    procedure_code,
    {%- for f in features %}
    new_first_{{ f }} as first_{{ f }}{{ "," if not loop.last }}
    {%- endfor %}
from {{ changes }}
where coalesce({% for f in features %}new_first_{{ f }}{{ ", " if not loop.last }}{% endfor %}) is not null
{%- endmacro %}


{#- Events of first days: one row per (unit, period, measure, day) with the procedures entering the
    numerator and the denominator that day, times `sign`, from `relation`'s columns <prefix><feature>
    (first days; null when the procedure never had the feature in the period), by `sides`
    ((measure, side, feature), ...). -#}
{% macro procedure_first_day_events(relation, prefix, sides, sign=1, delta_type='bigint') -%}
    select
        firsts.reporting_unit_code,
        firsts.period_type,
        firsts.period_start,
        side.measure_code,
        side.first_date                                                                    as event_date,
        ({{ sign }} * count(*) filter (where side.side = 'numerator'))::{{ delta_type }}   as numerator_delta,
        ({{ sign }} * count(*) filter (where side.side = 'denominator'))::{{ delta_type }} as denominator_delta
    from {{ relation }} as firsts
    cross join lateral (values
        {%- for measure_code, side, feature in sides %}
        ('{{ measure_code }}', '{{ side }}', firsts.{{ prefix }}{{ feature }}){{ "," if not loop.last }}
        {%- endfor %}
    ) as side (measure_code, side, first_date)
    where side.first_date is not null
    group by 1, 2, 3, 4, 5
{%- endmacro %}
