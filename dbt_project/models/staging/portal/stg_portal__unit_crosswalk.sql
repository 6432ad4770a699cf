-- The 1/7/2025 reorganisation's old → new unit pairs (a merged commune may map to one successor; a
-- split one to several), latest extract wins.
select distinct on (record ->> 'MaDonViCu', record ->> 'MaDonViMoi')
    record ->> 'MaDonViCu'                                 as former_unit_code,
    record ->> 'MaDonViMoi'                                as successor_unit_code,
    {{ portal_timestamp("record ->> 'NgayHieuLuc'") }}::date as effective_date,
    record ->> 'CanCuPhapLy'                               as legal_basis,
    business_date                                          as extract_date
from {{ source('portal', 'portal__unit_crosswalk') }}
order by record ->> 'MaDonViCu', record ->> 'MaDonViMoi', business_date desc, load_id desc, line_number desc
