-- Each loaded capture of the published evaluation: its form and the populations it declares.
select
    load_id,
    business_date as evaluated_on,
    province_code,
    period_type,
    period_year,
    period_number,
    form,
    unit_scope,
    detail,
    units_in_capture,
    declared_units,
    declared_agencies,
    declared_communes,
    overview,
    source_file
from {{ source('portal', 'portal__evaluation_captures') }}
