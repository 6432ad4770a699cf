-- Every version of every procedure (TTHC) of the national catalogue, as the latest extract that carried
-- it describes it. A procedure changes online level, fee or eligibility over time; dossiers take the
-- version in force when they were received.
with versions as (

    select
        record ->> 'MaTTHC'                                       as procedure_code,
        record ->> 'TenTTHC'                                      as procedure_name,
        record ->> 'MaLinhVuc'                                    as field_code,
        record ->> 'TenLinhVuc'                                   as field_name,
        (record ->> 'CapThucHien')::smallint                      as procedure_level_code,
        record ->> 'MucDoDVC'                                     as online_level,
        coalesce((record ->> 'LePhi')::bigint, 0)                 as fee_amount,
        coalesce((record ->> 'CoKetQuaBangVanBan')::smallint = 1, false) as returns_written_result,
        coalesce((record ->> 'DoiTuongCaNhan')::smallint = 1, false)     as serves_individuals,
        coalesce((record ->> 'DuDieuKienToanTrinh')::smallint = 1, false) as is_full_online_eligible,
        (record ->> 'ThoiHanGiaiQuyet')::integer                  as statutory_working_days,
        {{ portal_timestamp("record ->> 'HieuLucTu'") }}          as valid_from_at,
        {{ portal_timestamp("record ->> 'HieuLucDen'") }}         as valid_to_at,
        business_date                                             as extract_date,
        row_number() over (
            partition by record ->> 'MaTTHC', record ->> 'HieuLucTu'
            order by business_date desc, load_id desc, line_number desc
        ) as version_rank
    from {{ source('portal', 'portal__procedures') }}

)

select
    procedure_code, procedure_name, field_code, field_name, procedure_level_code, online_level,
    fee_amount, returns_written_result, serves_individuals, is_full_online_eligible,
    statutory_working_days, valid_from_at, valid_to_at, extract_date
from versions
where version_rank = 1
