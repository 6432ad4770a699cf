-- Applicants' satisfaction ratings of their dossiers, one per dossier (a re-rating replaces the first).
with versions as (

    select
        record ->> 'MaHoSo'                                   as dossier_code,
        record ->> 'MaDonVi'                                  as unit_code,
        {{ portal_timestamp("record ->> 'NgayDanhGia'") }}    as rated_at,
        (record ->> 'MucDoHaiLong')::smallint                 as satisfaction_code,
        (record ->> 'KenhDanhGia')::smallint                  as rating_channel_code,
        business_date                                         as extract_date,
        row_number() over (
            partition by record ->> 'MaHoSo'
            order by {{ portal_timestamp("record ->> 'NgayDanhGia'") }} desc, business_date desc,
                     load_id desc, line_number desc
        ) as version_rank
    from {{ source('portal', 'portal__ratings') }}

)

select
    dossier_code, unit_code, rated_at, satisfaction_code,
    -- KHÔNG HÀI LÒNG (3) counts against DOSSIER_RECEIVING_SATISFACTION.
    satisfaction_code = 3 as is_dissatisfied,
    rating_channel_code, extract_date
from versions
where version_rank = 1
