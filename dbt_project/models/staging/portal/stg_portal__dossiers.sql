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
        record,
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
    record ->> 'DonViXuLy'                                      as processing_unit_code,
    channel_code,
    status_code,
    {{ portal_timestamp("record ->> 'NgayDangNhap'") }}          as logged_in_at,
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
    -- Fees: the sum of DanhSachLePhi[].Gia (VND); 0 when the dossier carries no fee.
    coalesce((
        select sum((fee ->> 'Gia')::bigint)
        from jsonb_array_elements({{ json_array("record -> 'DanhSachLePhi'") }}) as fee
    ), 0)                                                        as fee_amount,
    (record ->> 'DuocThanhToanTrucTuyen')::smallint              as online_payment_code,
    -- Documents (TaiLieuNop[]), results (DanhSachGiayToKetQua[]) and supplements
    -- (DanhSachHoSoBoSung[]) stay JSONB in raw; the flags the indicators need are derived here once.
    coalesce((record ->> 'HoSoCoThanhPhanSoHoa')::smallint = 1, false)        as has_digitised_component,
    jsonb_path_exists(record, '$.TaiLieuNop[*] ? (@.DuocSoHoa == 1)')         as has_digitised_document,
    jsonb_path_exists(record, '$.TaiLieuNop[*] ? (@.DuocTaiSuDung == 1)')     as reuses_digitised_document,
    jsonb_path_exists(record, '$.TaiLieuNop[*] ? (@.DuocLayTuKhoDMQG == 1)')  as uses_personal_data_store,
    jsonb_array_length({{ json_array("record -> 'DanhSachGiayToKetQua'") }})         as result_document_count,
    jsonb_path_exists(record, '$.DanhSachGiayToKetQua[*] ? (@.DuongDanTepTinKetQua != null && @.DuongDanTepTinKetQua != "")')
                                                                              as has_electronic_result,
    jsonb_path_exists(record, '$.DanhSachGiayToKetQua[*] ? (@.DayLenKhoDMQG == 1)') as result_pushed_to_data_store,
    coalesce((record ->> 'TaiKhoanDuocXacThucVoiVNeID')::smallint = 1, false) as is_vneid_verified,
    coalesce((record ->> 'DongBoDVCQG')::smallint = 1, false)                 as is_synced_to_national_portal,
    jsonb_array_length({{ json_array("record -> 'DanhSachHoSoBoSung'") }})           as supplement_request_count,
    (
        select max({{ portal_timestamp("supplement ->> 'NgayHenTraMoi'") }})
        from jsonb_array_elements({{ json_array("record -> 'DanhSachHoSoBoSung'") }}) as supplement
    )                                                            as supplement_new_due_at,
    (
        select {{ portal_timestamp("supplement ->> 'NgayBoSung'") }}
        from jsonb_array_elements({{ json_array("record -> 'DanhSachHoSoBoSung'") }}) as supplement
        order by 1
        offset 1 limit 1
    )                                                            as second_supplement_requested_at,
    extract_date,
    load_id,
    line_number
from versions
where version_rank = 1
