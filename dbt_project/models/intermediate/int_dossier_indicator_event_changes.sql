-- depends_on: {{ ref('int_engine_run') }}
-- How this build changes int_dossier_indicator_events: the contributions of the night's changed dossiers
-- as fct_dossiers has them now, minus their contributions as the previous build counted them
-- (int_engine_previous_dossiers), both from the one implementation of the rules
-- (macros/dossier_contributions.sql). Non-zero sums per event key only. int_dossier_indicator_events adds
-- them to its rows (strategy `additive`), and int_indicator_delta_changes routes them. The cost follows
-- the changed dossiers, not the (unit, reception day) cohorts they fall in. Empty on a complete rebuild.
with changes as (

    select unit_code, cohort_date, indicator_code, event_date, numerator_delta, denominator_delta
    from ({{ dossier_contributions('(' ~ changed_dossier_rows(ref('fct_dossiers')) ~ ')') }}) as now

    union all

    select unit_code, cohort_date, indicator_code, event_date, numerator_delta, denominator_delta
    from ({{ dossier_contributions(ref('int_engine_previous_dossiers'), sign=-1) }}) as before

)

select
    unit_code,
    cohort_date,
    indicator_code,
    event_date,
    sum(numerator_delta)::bigint   as numerator_delta,
    sum(denominator_delta)::bigint as denominator_delta
from changes
group by unit_code, cohort_date, indicator_code, event_date
having sum(numerator_delta) <> 0 or sum(denominator_delta) <> 0
