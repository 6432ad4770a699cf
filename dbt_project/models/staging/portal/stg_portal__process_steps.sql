-- The process log (tienTrinh): one row per step of a dossier, its latest version. NguoiXuLy is the
-- official who handled the step, not the applicant: the contract does not mark it personal, so it is kept
-- as sent (not pseudonymised). It never reaches reporting: only the internal schema's marts read it.
with versions as (

    select
        record ->> 'MaHoSo'                                   as dossier_code,
        (record ->> 'STT')::integer                           as step_number,
        record ->> 'DonViXuLy'                                as processing_unit_code,
        nullif(btrim(record ->> 'NguoiXuLy'), '')             as handler_name,
        {{ portal_timestamp("record ->> 'ThoiDiemXuLy'") }}   as stepped_at,
        (record ->> 'TrangThai')::smallint                    as status_code,
        record ->> 'NoiDungXuLy'                              as step_text,
        business_date                                         as extract_date,
        row_number() over (
            partition by record ->> 'MaHoSo', (record ->> 'STT')::integer
            order by business_date desc, load_id desc, line_number desc
        ) as version_rank
    from {{ source('portal', 'portal__process_log') }}

)

select
    dossier_code, step_number, processing_unit_code, handler_name, stepped_at, status_code,
    -- Steps of processing proper (transfer, supplement request, finished): the official who holds or
    -- finished the dossier; reception and return (2, 10) are the one-stop desk's.
    status_code in (4, 5, 9) as is_processing_step,
    step_text, extract_date
from versions
where version_rank = 1
