-- The dossiers behind a value: what each dossier adds to a sub-indicator's numerator and denominator and
-- from which day (fct_dossier_indicator_contributions), for the drill-through from a value. Filter by unit,
-- sub-indicator, the period's reception days (received_date) and effective_date <= the day of the value.
-- No personal data: the dossier's code is the portal's, the applicant never appears.
select
    contributions.dossier_code,
    contributions.unit_code,
    contributions.indicator_code,
    indicators.name_vi                                                 as indicator_name,
    contributions.cohort_date                                          as received_date,
    contributions.event_date                                           as effective_date,
    contributions.numerator_delta,
    contributions.denominator_delta
from {{ ref('fct_dossier_indicator_contributions') }} as contributions
left join {{ ref('dim_indicators') }} as indicators
    on indicators.indicator_code = contributions.indicator_code and indicators.is_active_version
