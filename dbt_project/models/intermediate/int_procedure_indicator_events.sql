{{ config(
    materialized='incremental',
    incremental_strategy='append',
    indexes=[{'columns': ['reporting_unit_code', 'period_type', 'period_start']}],
    pre_hook="{{ engine_prepare_incremental('periods', unit_column='reporting_unit_code') }}"
) }}
-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_engine_reopened_periods') }}
-- depends_on: {{ ref('int_engine_previous_procedure_events') }}
-- The procedure-based sub-indicators ("procedures with at least one dossier that…") as events per
-- reporting unit and period: a procedure counts from the first day in the period on which one of the
-- unit's dossiers (its members' for a parent or successor, see int_unit_lineage) qualified it. Unlike
-- dossier counts these are distinct counts, so they are computed per reporting unit and period
-- rather than summed from members.
-- Incremental (docs/engine-incremental.md): a nightly build deletes and recomputes only the (reporting
-- unit, period) buckets of int_engine_reopened_periods, from all of their dossiers (a distinct count
-- cannot be patched by one dossier).
with dossiers as (

    select
        lineage.reporting_unit_code,
        dossiers.*
    from {{ ref('fct_dossiers') }} as dossiers
    inner join {{ ref('int_unit_lineage') }} as lineage
        on lineage.member_unit_code = dossiers.unit_code
    where dossiers.is_received
    {% if engine_is_incremental() %}
      -- Only the members of reopened units, received in or after the earliest reopened period.
      and lineage.reporting_unit_code in (select unit_code from {{ ref('int_engine_reopened_periods') }})
      and dossiers.received_date >= (select min(period_start) from {{ ref('int_engine_reopened_periods') }})
    {% endif %}

),

-- Many dossiers share a unit, a procedure and a received day; what counts is whether any of them
-- qualified the procedure that day. Collapsing them first gives the same first qualifying days from
-- a fraction of the rows (a unit's procedures × days rather than its dossiers), before the periods
-- multiply them.
procedure_days as (

    select
        reporting_unit_code,
        procedure_code,
        received_date,
        bool_or(is_paid_online)                                                    as paid_online,
        bool_or(has_fee)                                                           as has_fee,
        bool_or(uses_population_data and serves_individuals)                      as connected_to_citizen_data,
        bool_or(serves_individuals)                                                as serves_individuals,
        bool_or(coalesce(online_level in ('TOAN_TRINH', 'MOT_PHAN'), false))       as offered_online,
        bool_or(is_online and coalesce(online_level <> 'KHONG', true))             as online_dossier_of_online_service,
        bool_or(coalesce(online_level <> 'KHONG', true))                           as online_service
    from dossiers
    group by 1, 2, 3

),

qualifying as (

    select
        procedure_days.reporting_unit_code,
        periods.period_type,
        {{ period_start('periods.period_type', 'procedure_days.received_date') }} as period_start,
        procedure_days.procedure_code,
        flag.indicator_code,
        flag.side,
        min(procedure_days.received_date) as first_date
    from procedure_days
    cross join {{ period_types_relation() }} as periods
    cross join lateral (values
        -- TTTT: procedures with a dossier paid online / procedures with fee-bearing dossiers.
        ('ONLINE_FORMALITY_PAYMENT', 'numerator', paid_online),
        ('ONLINE_FORMALITY_PAYMENT', 'denominator', has_fee),
        -- TTTT: procedures whose dossiers carry fee data / procedures with a fee (provisional).
        ('FEE_FORMALITY_INTEGRATED', 'numerator', has_fee),
        ('FEE_FORMALITY_INTEGRATED', 'denominator', has_fee),
        -- MDSH: procedures with a dossier using population data / procedures serving individuals.
        ('CITIZEN_DATA_CONNECTED_FORMALITY', 'numerator', connected_to_citizen_data),
        ('CITIZEN_DATA_CONNECTED_FORMALITY', 'denominator', serves_individuals),
        -- ONLINE, tech-note split: procedures offered online / procedures; online services with an
        -- online dossier / online services.
        ('PROCEDURES_ONLINE', 'numerator', offered_online),
        ('PROCEDURES_ONLINE', 'denominator', true),
        ('ONLINE_SERVICES_WITH_DOSSIER', 'numerator', online_dossier_of_online_service),
        ('ONLINE_SERVICES_WITH_DOSSIER', 'denominator', online_service)
    ) as flag (indicator_code, side, qualifies)
    where flag.qualifies
    {% if engine_is_incremental() %}
      and (procedure_days.reporting_unit_code, periods.period_type,
           {{ period_start('periods.period_type', 'procedure_days.received_date') }}) in (
        select unit_code, period_type, period_start from {{ ref('int_engine_reopened_periods') }})
    {% endif %}
    group by 1, 2, 3, 4, 5, 6

)

select
    reporting_unit_code,
    period_type,
    period_start,
    indicator_code,
    first_date                                                   as event_date,
    count(*) filter (where side = 'numerator')::bigint           as numerator_delta,
    count(*) filter (where side = 'denominator')::bigint         as denominator_delta
from qualifying
group by 1, 2, 3, 4, 5
