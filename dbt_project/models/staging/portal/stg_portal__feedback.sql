-- Feedback items (PAKN, phản ánh kiến nghị), latest version of each (the latest NgayCapNhat wins).
-- The sender's name and phone are pseudonymised at load and not carried further.
with versions as (

    select
        record ->> 'MaPAKN'                                       as feedback_code,
        record ->> 'MaDonVi'                                      as unit_code,
        (record ->> 'PhanLoai')::smallint                         as feedback_kind_code,
        (record ->> 'TrangThaiPAKN')::smallint                    as status_code,
        {{ portal_timestamp("record ->> 'NgayGui'") }}            as sent_at,
        {{ portal_timestamp("record ->> 'NgayTiepNhan'") }}       as received_at,
        {{ portal_timestamp("record ->> 'NgayTuChoi'") }}         as refused_at,
        {{ portal_timestamp("record ->> 'NgayYeuCauBoSung'") }}   as supplement_requested_at,
        {{ portal_timestamp("record ->> 'HanXuLy'") }}            as handling_deadline_at,
        {{ portal_timestamp("record ->> 'NgayXuLy'") }}           as answered_at,
        {{ portal_timestamp("record ->> 'NgayCongKhai'") }}       as published_at,
        (record ->> 'SoLuotThich')::integer                       as like_count,
        (record ->> 'SoLuotKhongThich')::integer                  as dislike_count,
        coalesce((record ->> 'CoKhieuNaiTiep')::smallint = 1, false) as has_follow_up_complaint,
        {{ portal_timestamp("record ->> 'NgayCapNhat'") }}        as updated_at,
        business_date                                             as extract_date,
        row_number() over (
            partition by record ->> 'MaPAKN'
            order by {{ portal_timestamp("record ->> 'NgayCapNhat'") }} desc nulls last,
                     business_date desc, load_id desc, line_number desc
        ) as version_rank
    from {{ source('portal', 'portal__feedback') }}

)

select
    feedback_code, unit_code, feedback_kind_code, status_code, sent_at, received_at, refused_at,
    supplement_requested_at, handling_deadline_at, answered_at, published_at, like_count, dislike_count,
    has_follow_up_complaint, updated_at, extract_date
from versions
where version_rank = 1
