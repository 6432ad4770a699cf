-- Dossier-based sub-indicator events per receiving unit, reception day and effective day: the
-- contributions of fct_dossier_indicator_contributions summed (see there for the rules).
select
    unit_code,
    cohort_date,
    indicator_code,
    event_date,
    sum(numerator_delta)::bigint   as numerator_delta,
    sum(denominator_delta)::bigint as denominator_delta
from {{ ref('fct_dossier_indicator_contributions') }}
group by unit_code, cohort_date, indicator_code, event_date
