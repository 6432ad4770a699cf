{{ config(
    materialized='incremental',
    unique_key=['former_unit_code', 'successor_unit_code'],
    incremental_strategy='delete+insert',
    indexes=[{'columns': ['former_unit_code', 'successor_unit_code'], 'unique': True}],
    pre_hook="{{ catalogue_prepare_incremental('unit_crosswalk') }}"
) }}
-- The 1/7/2025 reorganisation's old → new unit pairs (a merged commune may map to one successor; a
-- split one to several), latest extract wins. Sent whole every day: merged a day at a time
-- (macros/catalogue_snapshots.sql).
with new_versions as (

    select
        record ->> 'MaDonViCu'                                 as former_unit_code,
        record ->> 'MaDonViMoi'                                as successor_unit_code,
        {{ portal_timestamp("record ->> 'NgayHieuLuc'") }}::date as effective_date,
        record ->> 'CanCuPhapLy'                               as legal_basis,
        business_date                                          as extract_date,
        load_id,
        line_number
    from {{ catalogue_new_rows('unit_crosswalk') }} as raw

)

{{ catalogue_latest_versions(
    ['former_unit_code', 'successor_unit_code'],
    ['former_unit_code', 'successor_unit_code', 'effective_date', 'legal_basis']) }}
