-- A view: a few rows per dossier, read whole by int_dossier_indicator_events and filtered by unit when explaining.
{{ config(materialized='view') }}

-- What each received dossier contributes to each dossier-based sub-indicator, and from which day: the
-- one implementation of those rules, and the answer to "which dossiers make this number" (see the
-- explain_indicator macro and docs/engine.md). Each dossier adds to a numerator and a denominator on
-- the day the addition takes effect. The value of an indicator for a period as of a
-- day E is then the sum of the events of the period's dossiers (cohort_date in the period) that took
-- effect by E (event_date <= E), which handles "open dossiers judged at period end" exactly:
-- an on-time dossier counts +1 when received and -1 on the day it becomes overdue.
-- This is the one implementation of each rule in rule_registry.csv (numerator/denominator columns).
with dossiers as (

    select * from {{ ref('fct_dossiers') }}
    where is_received

),

events as (

    select
        dossiers.dossier_code,
        dossiers.unit_code,
        dossiers.received_date                               as cohort_date,
        event.indicator_code,
        -- Nothing takes effect before the dossier exists.
        greatest(event.event_date, dossiers.received_date)    as event_date,
        event.numerator_delta,
        event.denominator_delta
    from dossiers
    cross join lateral (values
        -- CKMB: dossiers received that were synced to the national portal.
        ('DOSSIER_SYNC', received_date, is_synced_to_national_portal::int, 1),
        -- TDGQ: on time until the day it becomes overdue (supplement rules in fct_dossiers).
        ('ON_TIME', received_date, 1, 1),
        ('ON_TIME', overdue_from_date, -1, 0),
        -- ONLINE (portal-2026 group ratio): online dossiers of full-online-eligible procedures.
        ('ONLINE', received_date, (is_online and is_full_online_eligible)::int, is_full_online_eligible::int),
        ('ONLINE_DOSSIER_SHARE', received_date, is_online::int, 1),
        -- TTTT: dossiers paid online among those with a fee.
        ('DOSSIER_ONLINE_PAYMENT', received_date, is_paid_online::int, has_fee::int),
        -- MDSH: an electronic result, counted when the dossier ends, among written-result procedures.
        ('ORIGINAL_RESULT_AVAILABLE', ended_date, (returns_written_result and has_electronic_result)::int,
                                                  returns_written_result::int),
        ('SO_HOA_GIAY_TO_GIAI_QUYET', received_date, is_digitised::int, 1),
        ('REUSED_DIGITIZED_DATA', received_date, reuses_digitised_document::int, 1),
        ('SYNCED_WITH_DVCQG_PERSONAL_STORAGE', received_date, is_linked_to_personal_data_store::int, 1),
        ('CITIZEN_DATA_CONNECTED_DOSSIER', received_date, uses_population_data::int, 1),
        -- MDHL: 100% − (% overdue + % dissatisfied): each received dossier counts +1 until it becomes
        -- overdue and −1 more on the day a KHÔNG HÀI LÒNG rating arrives (as the portal subtracts both).
        ('DOSSIER_RECEIVING_SATISFACTION', received_date, 1, 1),
        ('DOSSIER_RECEIVING_SATISFACTION', overdue_from_date, -1, 0),
        ('DOSSIER_RECEIVING_SATISFACTION', case when is_rated_dissatisfied and is_ended then rated_date end, -1, 0)
    ) as event (indicator_code, event_date, numerator_delta, denominator_delta)
    where event.event_date is not null
      and (event.numerator_delta <> 0 or event.denominator_delta <> 0)

)

select dossier_code, unit_code, cohort_date, indicator_code, event_date, numerator_delta, denominator_delta
from events
