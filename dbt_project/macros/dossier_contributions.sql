{#- What each received dossier of `dossiers` (rows shaped like fct_dossiers) contributes to each
    dossier-based sub-indicator, and from which day: the one implementation of those rules (rule_registry.csv,
    numerator/denominator columns). Used by fct_dossier_indicator_contributions (every dossier) and by
    int_dossier_indicator_event_changes (the night's changed dossiers as they are now, and as the previous
    build counted them, int_engine_previous_dossiers), so the complete and the incremental paths cannot
    drift apart.

    Each dossier adds to a numerator and a denominator on the day the addition takes effect. The value of
    an indicator for a period as of a day E is then the sum of the events of the period's dossiers
    (cohort_date in the period) that took effect by E (event_date <= E), which handles "open dossiers
    judged at period end" exactly: an on-time dossier counts +1 when received and -1 on the day it becomes
    overdue. `sign` = -1 gives the same rows with both deltas negated (a dossier taken back). -#}
{% macro dossier_contributions(dossiers, sign=1) -%}
    select
        dossiers.dossier_code,
        dossiers.unit_code,
        dossiers.received_date                               as cohort_date,
        event.indicator_code,
        -- Nothing takes effect before the dossier exists.
        greatest(event.event_date, dossiers.received_date)    as event_date,
        {{ '-' if sign == -1 }}event.numerator_delta          as numerator_delta,
        {{ '-' if sign == -1 }}event.denominator_delta        as denominator_delta
    from {{ dossiers }} as dossiers
    cross join lateral (values
        -- CKMB: dossiers received that were synced to the national portal.
        ('DOSSIER_SYNC', dossiers.received_date, dossiers.is_synced_to_national_portal::int, 1),
        -- TDGQ: on time until the day it becomes overdue (supplement rules in fct_dossiers).
        ('ON_TIME', dossiers.received_date, 1, 1),
        ('ON_TIME', dossiers.overdue_from_date, -1, 0),
        -- ONLINE (portal-2026 group ratio): online dossiers of full-online-eligible procedures.
        ('ONLINE', dossiers.received_date, (dossiers.is_online and dossiers.is_full_online_eligible)::int,
                                           dossiers.is_full_online_eligible::int),
        ('ONLINE_DOSSIER_SHARE', dossiers.received_date, dossiers.is_online::int, 1),
        -- TTTT: dossiers paid online among those with a fee.
        ('DOSSIER_ONLINE_PAYMENT', dossiers.received_date, dossiers.is_paid_online::int, dossiers.has_fee::int),
        -- MDSH: an electronic result, counted when the dossier ends, among written-result procedures.
        ('ORIGINAL_RESULT_AVAILABLE', dossiers.ended_date,
             (dossiers.returns_written_result and dossiers.has_electronic_result)::int,
             dossiers.returns_written_result::int),
        ('SO_HOA_GIAY_TO_GIAI_QUYET', dossiers.received_date, dossiers.is_digitised::int, 1),
        ('REUSED_DIGITIZED_DATA', dossiers.received_date, dossiers.reuses_digitised_document::int, 1),
        ('SYNCED_WITH_DVCQG_PERSONAL_STORAGE', dossiers.received_date, dossiers.is_linked_to_personal_data_store::int, 1),
        ('CITIZEN_DATA_CONNECTED_DOSSIER', dossiers.received_date, dossiers.uses_population_data::int, 1),
        -- MDHL: 100% − (% overdue + % dissatisfied): each received dossier counts +1 until it becomes
        -- overdue and −1 more on the day a KHÔNG HÀI LÒNG rating arrives (as the portal subtracts both).
        ('DOSSIER_RECEIVING_SATISFACTION', dossiers.received_date, 1, 1),
        ('DOSSIER_RECEIVING_SATISFACTION', dossiers.overdue_from_date, -1, 0),
        ('DOSSIER_RECEIVING_SATISFACTION',
             case when dossiers.is_rated_dissatisfied and dossiers.is_ended then dossiers.rated_date end, -1, 0)
    ) as event (indicator_code, event_date, numerator_delta, denominator_delta)
    where dossiers.is_received
      and event.event_date is not null
      and (event.numerator_delta <> 0 or event.denominator_delta <> 0)
{%- endmacro %}
