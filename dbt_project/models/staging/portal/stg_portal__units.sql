-- The unit catalogue as of the latest extract that carried it.
with snapshots as (

    select
        record ->> 'MaDonVi'    as unit_code,
        record ->> 'TenDonVi'   as unit_name,
        record ->> 'LoaiDonVi'  as unit_kind,
        record ->> 'MaDonViCha' as parent_unit_code,
        record ->> 'MaThongKe'  as statistical_code,
        business_date           as extract_date,
        row_number() over (
            partition by record ->> 'MaDonVi'
            order by business_date desc, load_id desc, line_number desc
        ) as version_rank
    from {{ source('portal', 'portal__units') }}

)

select unit_code, unit_name, unit_kind, parent_unit_code, statistical_code, extract_date
from snapshots
where version_rank = 1
