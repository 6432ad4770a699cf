-- Procedures (TTHC) as a versioned dimension: online level, fee, written result, eligibility and
-- statutory time limit as they were in each version; dossiers take the version in force at reception.
select
    procedure_code,
    valid_from_at::date                        as valid_from,
    valid_to_at::date                          as valid_to,
    procedure_name,
    field_code,
    field_name,
    procedure_level_code,
    online_level,
    fee_amount,
    returns_written_result,
    serves_individuals,
    is_full_online_eligible,
    statutory_working_days,
    valid_to_at is null                        as is_current
from {{ ref('stg_portal__procedures') }}
