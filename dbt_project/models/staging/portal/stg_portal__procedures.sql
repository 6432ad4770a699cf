-- Every version of every procedure (TTHC) of the national catalogue, as the latest extract that carried
-- it describes it. A procedure changes online level, fee or eligibility over time; dossiers take the
-- version in force when they were received. Sent whole every day: merged a day at a time
-- (macros/catalogue_snapshots.sql).
{{ config(
    materialized='incremental',
    unique_key=['procedure_code', 'version_key'],
    incremental_strategy='delete+insert',
    indexes=[{'columns': ['procedure_code', 'version_key'], 'unique': True}],
    pre_hook="{{ catalogue_prepare_incremental('procedures') }}"
) }}
with new_versions as (

    select
        record ->> 'MaTTHC'                                       as procedure_code,
        coalesce(record ->> 'HieuLucTu', '')                      as version_key,
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
        load_id,
        line_number
    from {{ catalogue_new_rows('procedures') }} as raw

)

{{ catalogue_latest_versions(
    ['procedure_code', 'version_key'],
    ['procedure_code', 'version_key', 'procedure_name', 'field_code', 'field_name', 'procedure_level_code',
     'online_level', 'fee_amount', 'returns_written_result', 'serves_individuals', 'is_full_online_eligible',
     'statutory_working_days', 'valid_from_at', 'valid_to_at']) }}
