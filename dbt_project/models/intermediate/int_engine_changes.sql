-- What the loads since the last complete engine build changed, as (unit, cohort day) pairs of the items
-- concerned (docs/engine-incremental.md): every version a changed dossier, PAKN or publication decision
-- had or has — the new rows themselves and the version the last build used — so that a dossier moved to
-- another unit or reception day is taken out of its old cohort as well as counted in its new one.
-- A rating changes its dossier; its day is a cohort of its own (source_kind rating) for the plan
-- metrics, which count ratings on the day they were given. Empty when int_engine_run asks for a complete rebuild (nothing is
-- incremental then).
{% set cohorts = adapter.get_relation(database=target.database, schema='intermediate', identifier='int_dossier_cohorts') %}
{% set dossiers_before = adapter.get_relation(database=target.database, schema='marts', identifier='fct_dossiers') %}

with run as (

    select * from {{ ref('int_engine_run') }}

),

new_loads as (

    -- Loads since the previous build; their rows are found through the raw tables' business_date index.
    select ledger.load_id, ledger.entity, ledger.business_date
    from {{ source('portal', 'load_ledger') }} as ledger, run
    where not run.rebuild_all
      and ledger.load_id > run.previous_load_watermark
      and ledger.load_id <= run.load_watermark
      and ledger.status = 'loaded'

),

new_dossier_rows as (

    select raw.record
    from {{ source('portal', 'portal__dossiers') }} as raw
    inner join new_loads on new_loads.entity = 'dossiers'
        and raw.business_date = new_loads.business_date and raw.load_id = new_loads.load_id

),

changed_dossiers as (

    select record ->> 'MaHoSo' as dossier_code from new_dossier_rows
    union
    select raw.record ->> 'MaHoSo'
    from {{ source('portal', 'portal__ratings') }} as raw
    inner join new_loads on new_loads.entity = 'ratings'
        and raw.business_date = new_loads.business_date and raw.load_id = new_loads.load_id

),

dossier_pairs as (

    -- The new versions...
    select record ->> 'MaHoSo' as item_code, record ->> 'MaDonViTiepNhan' as unit_code,
           {{ portal_timestamp("record ->> 'NgayTiepNhan'") }}::date as cohort_date
    from new_dossier_rows
    {% if cohorts is not none %}
    union
    -- ... and the one the previous build counted (each changed code looked up through the index).
    select counted.dossier_code, counted.unit_code, counted.cohort_date
    from changed_dossiers
    cross join lateral (
        select cohorts.dossier_code, cohorts.unit_code, cohorts.cohort_date from {{ cohorts }} as cohorts
        where cohorts.dossier_code = changed_dossiers.dossier_code offset 0
    ) as counted
    {% endif %}

),

rating_days as (

    -- The plan metrics count a rating on the day it was given: the days of the new ratings and the day
    -- of the rating the previous build knew (fct_dossiers as that build left it), so that a rating
    -- replaced by a later one leaves its day too.
    select raw.record ->> 'MaHoSo' as item_code,
           {{ portal_timestamp("raw.record ->> 'NgayDanhGia'") }}::date as rated_date
    from {{ source('portal', 'portal__ratings') }} as raw
    inner join new_loads on new_loads.entity = 'ratings'
        and raw.business_date = new_loads.business_date and raw.load_id = new_loads.load_id
    {% if dossiers_before is not none %}
    union
    select known.dossier_code, known.rated_date
    from changed_dossiers
    cross join lateral (
        select before.dossier_code, before.rated_date from {{ dossiers_before }} as before
        where before.dossier_code = changed_dossiers.dossier_code offset 0
    ) as known
    where known.rated_date is not null
    {% endif %}

),

rating_pairs as (

    -- Each such day for every unit the dossier has had or has.
    select distinct rating_days.item_code, dossier_pairs.unit_code, rating_days.rated_date as cohort_date
    from rating_days
    inner join dossier_pairs on dossier_pairs.item_code = rating_days.item_code

),

changed_feedback as (

    select distinct raw.record ->> 'MaPAKN' as feedback_code
    from {{ source('portal', 'portal__feedback') }} as raw
    inner join new_loads on new_loads.entity = 'feedback'
        and raw.business_date = new_loads.business_date and raw.load_id = new_loads.load_id

),

feedback_pairs as (

    -- Every version of a changed item (the PAKN feed is small; all of its versions are at hand).
    select distinct record ->> 'MaPAKN' as item_code, record ->> 'MaDonVi' as unit_code,
           {{ portal_timestamp("record ->> 'NgayGui'") }}::date as cohort_date
    from {{ source('portal', 'portal__feedback') }}
    where record ->> 'MaPAKN' in (select feedback_code from changed_feedback)

),

changed_publications as (

    select distinct raw.record ->> 'MaTTHC' as procedure_code, raw.record ->> 'SoQuyetDinh' as decision_number
    from {{ source('portal', 'portal__procedure_publications') }} as raw
    inner join new_loads on new_loads.entity = 'procedure_publications'
        and raw.business_date = new_loads.business_date and raw.load_id = new_loads.load_id

),

publication_pairs as (

    select distinct (record ->> 'MaTTHC') || '/' || (record ->> 'SoQuyetDinh') as item_code,
           record ->> 'MaCoQuanCongBo' as unit_code,
           {{ portal_timestamp("record ->> 'NgayQuyetDinh'") }}::date as cohort_date
    from {{ source('portal', 'portal__procedure_publications') }}
    where (record ->> 'MaTTHC', record ->> 'SoQuyetDinh') in (select procedure_code, decision_number from changed_publications)

)

select 'dossier' as source_kind, item_code, unit_code, cohort_date from dossier_pairs
where unit_code is not null and cohort_date is not null
union all
select 'rating', item_code, unit_code, cohort_date from rating_pairs
where unit_code is not null and cohort_date is not null
union all
select 'feedback', item_code, unit_code, cohort_date from feedback_pairs
where unit_code is not null and cohort_date is not null
union all
select 'publication', item_code, unit_code, cohort_date from publication_pairs
where unit_code is not null and cohort_date is not null
