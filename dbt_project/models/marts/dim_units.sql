select
    unit_code,
    unit_name,
    unit_kind,
    parent_unit_code,
    statistical_code
from {{ ref('stg_portal__units') }}
