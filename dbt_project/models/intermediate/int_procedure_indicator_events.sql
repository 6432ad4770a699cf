{{ config(
    materialized='incremental',
    incremental_strategy='append',
    indexes=[{'columns': ['reporting_unit_code', 'period_type', 'period_start']}],
    pre_hook="{{ engine_prepare_incremental('periods', unit_column='reporting_unit_code') }}"
) }}
-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_engine_reopened_periods') }}
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

qualifying as (

    select
        dossiers.reporting_unit_code,
        periods.period_type,
        {{ period_start('periods.period_type', 'dossiers.received_date') }} as period_start,
        dossiers.procedure_code,
        flag.indicator_code,
        flag.side,
        min(dossiers.received_date) as first_date
    from dossiers
    cross join {{ period_types_relation() }} as periods
    cross join lateral (values
        -- TTTT: procedures with a dossier paid online / procedures with fee-bearing dossiers.
        ('ONLINE_FORMALITY_PAYMENT', 'numerator', is_paid_online),
        ('ONLINE_FORMALITY_PAYMENT', 'denominator', has_fee),
        -- TTTT: procedures whose dossiers carry fee data / procedures with a fee (provisional).
        ('FEE_FORMALITY_INTEGRATED', 'numerator', has_fee),
        ('FEE_FORMALITY_INTEGRATED', 'denominator', has_fee),
        -- MDSH: procedures with a dossier using population data / procedures serving individuals.
        ('CITIZEN_DATA_CONNECTED_FORMALITY', 'numerator', uses_population_data and serves_individuals),
        ('CITIZEN_DATA_CONNECTED_FORMALITY', 'denominator', serves_individuals),
        -- ONLINE, tech-note split: procedures offered online / procedures; online services with an
        -- online dossier / online services.
        ('PROCEDURES_ONLINE', 'numerator', coalesce(online_level in ('TOAN_TRINH', 'MOT_PHAN'), false)),
        ('PROCEDURES_ONLINE', 'denominator', true),
        ('ONLINE_SERVICES_WITH_DOSSIER', 'numerator', is_online and coalesce(online_level <> 'KHONG', true)),
        ('ONLINE_SERVICES_WITH_DOSSIER', 'denominator', coalesce(online_level <> 'KHONG', true))
    ) as flag (indicator_code, side, qualifies)
    where flag.qualifies
    {% if engine_is_incremental() %}
      and (dossiers.reporting_unit_code, periods.period_type,
           {{ period_start('periods.period_type', 'dossiers.received_date') }}) in (
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
