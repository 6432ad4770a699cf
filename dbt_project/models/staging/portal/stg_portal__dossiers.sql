with versions as (

    select
        record ->> 'MaHoSo'                    as dossier_code,
        record ->> 'MaTTHC'                    as procedure_code,
        record ->> 'TenTTHC'                   as procedure_name,
        record ->> 'MaLinhVuc'                 as field_code,
        record ->> 'TenLinhVuc'                as field_name,
        record ->> 'MaDonViTiepNhan'           as unit_code,
        -- The portal sends null for direct submissions (domain README §3).
        coalesce((record ->> 'KenhThucHien')::smallint, 1) as channel_code,
        (record ->> 'TrangThaiHoSo')::smallint as status_code,
        {{ portal_timestamp("record ->> 'NgayNopHoSo'") }}      as submitted_at,
        {{ portal_timestamp("record ->> 'NgayTiepNhan'") }}     as received_at,
        {{ portal_timestamp("record ->> 'NgayHenTra'") }}       as due_at,
        {{ portal_timestamp("record ->> 'NgayKetThucXuLy'") }}  as processing_finished_at,
        {{ portal_timestamp("record ->> 'NgayTra'") }}          as returned_at,
        {{ portal_timestamp("record ->> 'NgayTuChoi'") }}       as refused_at,
        {{ portal_timestamp("record ->> 'NgayCapNhat'") }}      as updated_at,
        record ->> 'ChuHoSo'                   as applicant_name_pseudonym,
        record ->> 'SoGiayToChuHoSo'           as applicant_id_pseudonym,
        (record ->> 'LoaiDoiTuong')::smallint  as applicant_kind_code,
        business_date                          as extract_date,
        load_id,
        line_number,
        row_number() over (
            partition by record ->> 'MaHoSo'
            -- The version recorded last wins, whatever order the feed delivered it in: an update can
            -- arrive before the creation it follows (a fault the portal really has).
            order by {{ portal_timestamp("record ->> 'NgayCapNhat'") }} desc nulls last,
                     business_date desc, load_id desc, line_number desc
        ) as version_rank

    from {{ source('portal', 'portal__dossiers') }}

)

select
    dossier_code,
    procedure_code,
    procedure_name,
    field_code,
    field_name,
    unit_code,
    channel_code,
    status_code,
    submitted_at,
    received_at,
    due_at,
    processing_finished_at,
    returned_at,
    refused_at,
    updated_at,
    applicant_name_pseudonym,
    applicant_id_pseudonym,
    applicant_kind_code,
    extract_date,
    load_id,
    line_number
from versions
where version_rank = 1
