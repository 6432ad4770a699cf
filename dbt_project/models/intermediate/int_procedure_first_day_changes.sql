-- depends_on: {{ ref('int_engine_run') }}
-- How this build moves the first days of int_procedure_first_days (macros/procedure_indicators.sql),
-- from the changed dossiers' (unit, reception day) pairs alone: their int_procedure_days rows now
-- against the same rows as the previous build stored them (int_engine_previous_procedure_days). A
-- feature gained on a day can only bring a first day earlier: the new first day is the earlier of the
-- stored one and the day. A feature lost can move it later or away: those keys (rare: a dossier moved,
-- cancelled or corrected) are recomputed from their members' days in the period. Only keys whose first
-- days changed are kept, with the old and new values: int_procedure_first_days stores the new ones and
-- int_indicator_delta_changes turns both into changes of the procedure counts. Empty on a complete
-- rebuild. The cost follows the night's changed rows, not the length of the periods.
{%- set stored = adapter.get_relation(database=target.database, schema='intermediate',
                                      identifier='int_procedure_first_days') %}
{%- set features = procedure_features().keys() | list %}
{%- set firsts = procedure_first_day_features() %}
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

    -- The (unit, day, procedure) rows whose features differ between the two builds: each feature gained
    -- or lost ('received': the procedure had a received dossier that day at all).
    select
        coalesce(new_days.unit_code, old_days.unit_code)           as unit_code,
        coalesce(new_days.cohort_date, old_days.cohort_date)       as cohort_date,
        coalesce(new_days.procedure_code, old_days.procedure_code) as procedure_code,
        new_days.unit_code is not null and old_days.unit_code is null as gained_received,
        old_days.unit_code is not null and new_days.unit_code is null as lost_received,
        {%- for f in features %}
        coalesce(new_days.{{ f }}, false) and not coalesce(old_days.{{ f }}, false) as gained_{{ f }},
        coalesce(old_days.{{ f }}, false) and not coalesce(new_days.{{ f }}, false) as lost_{{ f }}{{ "," if not loop.last }}
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
        bool_or({% for f in firsts %}touched.lost_{{ f }}{{ " or " if not loop.last }}{% endfor %}) as has_loss,
        {%- for f in firsts %}
        min(touched.cohort_date) filter (where touched.gained_{{ f }}) as gained_{{ f }}{{ "," if not loop.last }}
        {%- endfor %}
    from touched
    inner join {{ ref('int_unit_lineage') }} as lineage on lineage.member_unit_code = touched.unit_code
    cross join {{ period_types_relation() }} as periods
    where {% for f in firsts %}touched.gained_{{ f }} or touched.lost_{{ f }}{{ " or " if not loop.last }}{% endfor %}
    group by 1, 2, 3, 4

),

recomputed as materialized (

    -- Keys that lost a feature somewhere: their first days from their members' days in the period.
    select
        keyed.reporting_unit_code,
        keyed.period_type,
        keyed.period_start,
        keyed.procedure_code,
        min(days.cohort_date) as received,
        {%- for f in features %}
        min(days.cohort_date) filter (where days.{{ f }}) as {{ f }}{{ "," if not loop.last }}
        {%- endfor %}
    from keyed
    inner join {{ ref('int_unit_lineage') }} as lineage on lineage.reporting_unit_code = keyed.reporting_unit_code
    inner join {{ ref('int_procedure_days') }} as days
        on days.unit_code = lineage.member_unit_code
       and days.procedure_code = keyed.procedure_code
       and days.cohort_date between keyed.period_start
                                and {{ period_end('keyed.period_type', 'keyed.period_start') }}
    where keyed.has_loss
    group by 1, 2, 3, 4

),

compared as (

    select
        keyed.reporting_unit_code,
        keyed.period_type,
        keyed.period_start,
        keyed.procedure_code,
        keyed.has_loss as is_recomputed,
        {%- for f in firsts %}
        {%- if stored is not none %}
        stored.first_{{ f }} as old_first_{{ f }},
        {%- else %}
        null::date as old_first_{{ f }},
        {%- endif %}
        case when keyed.has_loss then recomputed.{{ f }}
             else least({% if stored is not none %}stored.first_{{ f }}{% else %}null::date{% endif %}, keyed.gained_{{ f }})
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
where {% for f in firsts %}old_first_{{ f }} is distinct from new_first_{{ f }}{{ " or " if not loop.last }}{% endfor %}
