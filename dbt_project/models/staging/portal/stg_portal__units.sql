-- Every version of every unit, as the latest extract that carried it describes it.
with versions as (

    select
        record ->> 'MaDonVi'      as unit_code,
        record ->> 'MaDonViDVCQG' as portal_code,
        record ->> 'MaThongKe'    as statistical_code,
        record ->> 'TenDonVi'     as unit_name,
        record ->> 'LoaiDonVi'    as unit_kind,
        record ->> 'MaDonViCha'   as parent_unit_code,
        -- A version without a start (extracts before contract 2.0) has always been valid.
        coalesce({{ portal_timestamp("record ->> 'HieuLucTu'") }}::date, date '2000-01-01') as valid_from,
        {{ portal_timestamp("record ->> 'HieuLucDen'") }}::date as valid_to,
        business_date             as extract_date,
        row_number() over (
            partition by record ->> 'MaDonVi', coalesce(record ->> 'HieuLucTu', '20000101000000')
            order by business_date desc, load_id desc, line_number desc
        ) as version_rank
    from {{ source('portal', 'portal__units') }}

)

select
    unit_code, portal_code, statistical_code, unit_name, unit_kind, parent_unit_code,
    valid_from, valid_to, extract_date
from versions
where version_rank = 1
