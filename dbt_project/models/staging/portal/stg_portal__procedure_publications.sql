-- Publication decisions (QĐ công bố) of procedures, one row per (procedure, decision): the latest
-- extract's state (a decision reappears when the procedure is made public in the national database).
with versions as (

    select
        record ->> 'MaTTHC'                                       as procedure_code,
        record ->> 'MaCoQuanCongBo'                               as publisher_unit_code,
        record ->> 'SoQuyetDinh'                                  as decision_number,
        (record ->> 'LoaiCongBo')::smallint                       as publication_kind_code,
        {{ portal_timestamp("record ->> 'NgayQuyetDinh'") }}      as decided_at,
        {{ portal_timestamp("record ->> 'NgayHieuLucVanBan'") }}  as legal_basis_effective_at,
        {{ portal_timestamp("record ->> 'NgayCongKhai'") }}       as made_public_at,
        coalesce((record ->> 'DayDuBayBoPhan')::smallint = 1, false) as has_all_seven_parts,
        business_date                                             as extract_date,
        row_number() over (
            partition by record ->> 'MaTTHC', record ->> 'SoQuyetDinh'
            order by business_date desc, load_id desc, line_number desc
        ) as version_rank
    from {{ source('portal', 'portal__procedure_publications') }}

)

select
    procedure_code, publisher_unit_code, decision_number, publication_kind_code, decided_at,
    legal_basis_effective_at, made_public_at, has_all_seven_parts, extract_date
from versions
where version_rank = 1
