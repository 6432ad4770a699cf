{#- The dossiers behind one value of fct_indicator_values: for a unit (its own dossiers, or its members'
    for a province or a successor), a dossier-based sub-indicator, a period type and an as-of day, one row
    per dossier of the population with whether it is in the numerator as of that day and why.

        dbt show --inline "{{ explain_indicator('000.37.27.H15', 'ON_TIME', '2024-11-14', 'month') }}" --limit 50
        python -m chiso.publish.explain --unit 000.37.27.H15 --indicator ON_TIME --as-of 2024-11-14 --period month

    Counting the rows with in_denominator and in_numerator gives the value's denominator and numerator, except
    for DOSSIER_RECEIVING_SATISFACTION, where a dossier both overdue and dissatisfied contributes -1 to the
    numerator (guide §5.4; docs/engine.md "Rule populations"): not in_numerator, and one less besides.
    The sum of numerator_contribution is the numerator in every case.

    population (ON_TIME only; docs/engine.md "Rule populations"): 'received_in_period', the engine's and the
    published counts' reading of the guide's „hồ sơ được tiếp nhận, xử lý trong kỳ", or
    'received_or_processed_in_period', the other reading (the domain brief's): it adds the dossiers received
    before the period and not ended before it starts, judged as of the same day by the same contributions.
    The nightly engine computes only the first; this is where the second can be had, dossier by dossier. -#}
{% macro explain_indicator(unit_code, indicator_code, as_of_date, period_type='year', population='received_in_period') -%}
{%- if population not in ('received_in_period', 'received_or_processed_in_period') -%}
    {{ exceptions.raise_compiler_error("population must be received_in_period or received_or_processed_in_period, got " ~ population) }}
{%- endif -%}
{%- if population != 'received_in_period' and indicator_code != 'ON_TIME' -%}
    {{ exceptions.raise_compiler_error("only ON_TIME has another population reading, not " ~ indicator_code) }}
{%- endif -%}
{%- set first_day = period_start("'" ~ period_type ~ "'", "date '" ~ as_of_date ~ "'") -%}
with members as (

    select member_unit_code
    from {{ ref('int_unit_lineage') }}
    where reporting_unit_code = '{{ unit_code }}'
      and date '{{ as_of_date }}' >= window_from
      and (window_to is null or date '{{ as_of_date }}' <= window_to)

),

contributions as (

    select
        c.dossier_code,
        coalesce(sum(c.denominator_delta) filter (where c.event_date <= date '{{ as_of_date }}'), 0) = 1 as in_denominator,
        coalesce(sum(c.numerator_delta) filter (where c.event_date <= date '{{ as_of_date }}'), 0) = 1   as in_numerator,
        coalesce(sum(c.numerator_delta) filter (where c.event_date <= date '{{ as_of_date }}'), 0)       as numerator_contribution,
        max(c.event_date) filter (where c.numerator_delta < 0 and c.event_date <= date '{{ as_of_date }}') as left_numerator_on
    from {{ ref('fct_dossier_indicator_contributions') }} as c
    where c.unit_code in (select member_unit_code from members)
      and c.indicator_code = '{{ indicator_code }}'
      {%- if population == 'received_in_period' %}
      and c.cohort_date between {{ first_day }} and date '{{ as_of_date }}'
      {%- else %}
      and c.cohort_date <= date '{{ as_of_date }}'
      and (c.cohort_date >= {{ first_day }}
           or c.dossier_code in (select dossier_code from {{ ref('fct_dossiers') }}
                                 where unit_code in (select member_unit_code from members)
                                   and received_date < {{ first_day }}
                                   and (ended_date is null or ended_date >= {{ first_day }})))
      {%- endif %}
    group by c.dossier_code

)

select
    contributions.dossier_code,
    dossiers.unit_code,
    contributions.in_denominator,
    contributions.in_numerator,
    contributions.numerator_contribution,
    contributions.left_numerator_on,
    dossiers.procedure_code,
    dossiers.channel_code,
    dossiers.status_code,
    dossiers.received_at,
    dossiers.effective_due_at,
    dossiers.supplement_request_count,
    dossiers.ended_at,
    dossiers.overdue_from_date
from contributions
inner join {{ ref('fct_dossiers') }} as dossiers using (dossier_code)
where contributions.in_denominator
order by contributions.in_numerator, dossiers.received_at, contributions.dossier_code
{%- endmacro %}
