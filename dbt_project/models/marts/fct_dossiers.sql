{{ config(
    materialized='incremental',
    on_schema_change='append_new_columns',
    unique_key='dossier_code',
    incremental_strategy='delete+insert',
    indexes=[{'columns': ['dossier_code'], 'unique': True}, {'columns': ['unit_code', 'received_date']}, {'columns': ['unit_code', 'rated_date']}, {'columns': ['built_at']},
             {'columns': ['ended_date']}, {'columns': ['overdue_from_date']}],
    pre_hook="{{ engine_prepare_incremental() }}"
) }}
-- depends_on: {{ ref('int_engine_run') }}
-- depends_on: {{ ref('int_engine_changes') }}
-- depends_on: {{ ref('int_engine_previous_dossiers') }}
-- One row per dossier (latest version) with everything the 766 indicators need derived once, so that
-- every indicator count — and every "which dossiers made this number" question — reads the same facts.
-- Incremental (docs/engine-incremental.md): a nightly build re-derives only the dossiers whose versions
-- or ratings arrived since the last complete build (int_engine_changes); staging finds their versions
-- through the raw table's index on MaHoSo, so the night's cost follows the night's changes, not history.
with dossiers as (

    {% if engine_is_incremental() %}
    -- Only the changed dossiers, each found through the raw table's MaHoSo index (changed_dossier_rows).
    {{ changed_dossier_rows(ref('stg_portal__dossiers')) }}
    {% else %}
    select * from {{ ref('stg_portal__dossiers') }}
    {% endif %}

),

procedures as (

    select * from {{ ref('stg_portal__procedures') }}

),

ratings as (

    {% if engine_is_incremental() %}
    {{ changed_dossier_rows(ref('stg_portal__ratings')) }}
    {% else %}
    select * from {{ ref('stg_portal__ratings') }}
    {% endif %}

),

with_procedure as (

    -- The procedure's version in force when the dossier was received.
    select
        dossiers.*,
        procedures.procedure_code is not null           as is_procedure_known,
        procedures.returns_written_result,
        procedures.serves_individuals,
        procedures.is_full_online_eligible,
        procedures.online_level,
        procedures.statutory_working_days
    from dossiers
    left join procedures
        on procedures.procedure_code = dossiers.procedure_code
       and dossiers.received_at >= procedures.valid_from_at
       and (procedures.valid_to_at is null or dossiers.received_at <= procedures.valid_to_at)

),

judged as (

    select
        *,
        -- End of processing: the first of processed / returned / refused, or the moment a withdrawal
        -- (7) or a stop (8) was recorded (tech-note, domain README §3).
        least(processing_finished_at, returned_at, refused_at,
              case when status_code in (7, 8) then updated_at end)          as ended_at,
        -- Time waiting for the applicant's supplement is not counted: the unit's new due date
        -- (NgayHenTraMoi) replaces the first; without any due date the statutory limit in working days
        -- runs from reception.
        coalesce(supplement_new_due_at, due_at,
                 {{ add_working_days('received_at', 'statutory_working_days') }} + time '23:59:59') as effective_due_at
    from with_procedure

)

select
    judged.dossier_code,
    judged.unit_code,
    judged.processing_unit_code,
    judged.procedure_code,
    judged.field_code,
    judged.is_procedure_known,
    -- Unknown procedures (catalogue not loaded yet) count in the written-result and full-online
    -- populations: an indicator must not improve because reference data is missing.
    coalesce(judged.returns_written_result, true)                 as returns_written_result,
    coalesce(judged.serves_individuals, judged.applicant_kind_code = 1) as serves_individuals,
    coalesce(judged.is_full_online_eligible, true)                as is_full_online_eligible,
    judged.online_level,
    judged.channel_code,
    judged.channel_code = 2                                       as is_online,
    judged.status_code,
    -- Registered-only (1) and not-accepted (3) dossiers were never received by the unit.
    judged.status_code not in (1, 3)                              as is_received,
    judged.applicant_kind_code,
    judged.applicant_id_pseudonym,
    judged.logged_in_at,
    judged.submitted_at,
    judged.received_at,
    judged.received_at::date                                      as received_date,
    judged.due_at,
    judged.supplement_request_count,
    judged.effective_due_at,
    judged.ended_at,
    judged.ended_at::date                                         as ended_date,
    judged.ended_at is not null                                   as is_ended,
    judged.returned_at,
    -- On time as far as known today: ended on/before the effective due date with at most one
    -- supplement request; an open dossier is on time until its due date passes.
    case
        when judged.supplement_request_count > 1 then false
        when judged.effective_due_at is null then true
        when judged.ended_at is not null then judged.ended_at <= judged.effective_due_at
        else null
    end                                                           as is_ended_on_time,
    -- The first day at whose end the dossier counts as overdue (null: never, as far as known).
    -- As of day E a dossier is overdue iff overdue_from_date <= E, which makes every period's
    -- ON_TIME count a running sum (see int_indicator_events).
    case
        when judged.supplement_request_count > 1
            then greatest(judged.received_at::date, coalesce(judged.second_supplement_requested_at::date,
                                                             judged.received_at::date))
        when judged.effective_due_at is null then null
        when judged.ended_at is not null and judged.ended_at <= judged.effective_due_at then null
        else greatest(judged.received_at::date, judged.effective_due_at::date)
    end                                                           as overdue_from_date,
    judged.fee_amount,
    judged.fee_amount > 0                                         as has_fee,
    judged.fee_amount > 0 and judged.online_payment_code in (1, 2) as is_paid_online,
    judged.online_payment_code,
    judged.is_synced_to_national_portal,
    judged.has_digitised_component or judged.has_digitised_document as is_digitised,
    judged.reuses_digitised_document,
    judged.uses_personal_data_store or judged.result_pushed_to_data_store as is_linked_to_personal_data_store,
    -- Population data: an account verified with VNeID (online dossiers) — the tech-note's proxy.
    judged.is_vneid_verified and judged.channel_code = 2          as uses_population_data,
    judged.has_electronic_result,
    ratings.rated_at,
    ratings.rated_at::date                                        as rated_date,
    coalesce(ratings.is_dissatisfied, false)                      as is_rated_dissatisfied,
    ratings.satisfaction_code                                     as rating_satisfaction_code,
    judged.updated_at,
    judged.extract_date                                           as last_changed_date,
    {{ engine_built_at() }}                                       as built_at
from judged
left join ratings on ratings.dossier_code = judged.dossier_code
