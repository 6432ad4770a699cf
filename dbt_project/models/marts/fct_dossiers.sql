-- One row per dossier (latest version), with what the indicators need derived once.
with dossiers as (

    select * from {{ ref('stg_portal__dossiers') }}

)

select
    dossier_code,
    unit_code,
    procedure_code,
    field_code,
    channel_code,
    channel_code = 2                                          as is_online,
    status_code,
    -- Registered-only (1) and not-accepted (3) dossiers were never received by the unit.
    status_code not in (1, 3)                                 as is_received,
    submitted_at,
    received_at,
    received_at::date                                         as received_date,
    due_at,
    -- End of processing: the first of processed / returned / stopped / refused (tech-note).
    least(processing_finished_at, returned_at, refused_at)    as ended_at,
    least(processing_finished_at, returned_at, refused_at)::date as ended_date,
    extract_date                                              as last_changed_date
from dossiers
