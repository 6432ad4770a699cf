{{ config(
    materialized='incremental',
    unique_key=['unit_code', 'version_key'],
    incremental_strategy='delete+insert',
    indexes=[{'columns': ['unit_code', 'version_key'], 'unique': True}],
    pre_hook="{{ catalogue_prepare_incremental('units') }}"
) }}
-- Every version of every unit, as the latest extract that carried it describes it. The portal sends the
-- whole catalogue every day: this table merges each new day's rows only (macros/catalogue_snapshots.sql).
with new_versions as (

    select
        record ->> 'MaDonVi'      as unit_code,
        -- A version without a start (extracts before contract 2.0) has always been valid.
        coalesce(record ->> 'HieuLucTu', '20000101000000') as version_key,
        record ->> 'MaDonViDVCQG' as portal_code,
        record ->> 'MaThongKe'    as statistical_code,
        record ->> 'TenDonVi'     as unit_name,
        record ->> 'LoaiDonVi'    as unit_kind,
        record ->> 'MaDonViCha'   as parent_unit_code,
        coalesce({{ portal_timestamp("record ->> 'HieuLucTu'") }}::date, date '2000-01-01') as valid_from,
        {{ portal_timestamp("record ->> 'HieuLucDen'") }}::date as valid_to,
        business_date             as extract_date,
        load_id,
        line_number
    from {{ catalogue_new_rows('units') }} as raw

)

{{ catalogue_latest_versions(
    ['unit_code', 'version_key'],
    ['unit_code', 'version_key', 'portal_code', 'statistical_code', 'unit_name', 'unit_kind', 'parent_unit_code',
     'valid_from', 'valid_to']) }}
