{#- Catalogues sent whole every day (units, the unit crosswalk, procedures): their staging models keep
    every version as the latest extract that carried it describes it. Re-ranking every snapshot ever
    received would cost a day's catalogue per day of history (a national unit catalogue is ~15k rows a
    day, 5.5M a year), so these staging models are incremental tables: a build reads only the loads it
    has not merged yet and lets each new row compete with the version already kept for its key.

    Ties are broken as before: the later business date, then the later load, then the later line. -#}


{#- The raw rows of `entity` that this build must merge: every loaded row on a first or complete build,
    else only those of loads after the newest load the table kept a row of (found through the ledger
    and the raw table's business_date index, not by scanning the catalogue's history). -#}
{% macro catalogue_new_rows(entity) -%}
    (select raw.*
     from {{ source('portal', 'portal__' ~ entity) }} as raw
     inner join {{ source('portal', 'load_ledger') }} as ledger
         on ledger.load_id = raw.load_id and ledger.business_date = raw.business_date
     where ledger.entity = '{{ entity }}' and ledger.status = 'loaded'
     {%- if is_incremental() %}
       and ledger.load_id > (select coalesce(max(load_id), 0) from {{ this }})
     {%- endif %})
{%- endmacro %}


{#- Pre-hook: a kept version whose load is no longer the day's current one (the day was loaded again,
    and its earlier rows deleted) may have lost to a row that is gone: start the table again. -#}
{% macro catalogue_prepare_incremental(entity) -%}
    {%- if execute and this is not none and is_incremental() -%}
        do $$ begin
            if exists (
                select 1 from {{ this }} as kept
                where not exists (select 1 from {{ source('portal', 'load_ledger') }} as ledger
                                  where ledger.load_id = kept.load_id and ledger.status = 'loaded')
            ) then
                truncate {{ this }};
            end if;
        end $$
    {%- endif -%}
{%- endmacro %}


{#- The rest of a catalogue model after its CTE `new_versions` (the columns `columns` plus extract_date,
    load_id and line_number): the new rows and, on an incremental build, the versions already kept for
    the same keys; the latest of each key wins. -#}
{% macro catalogue_latest_versions(key_columns, columns) -%}
    , candidates as (

        select {{ columns | join(', ') }}, extract_date, load_id, line_number from new_versions
        {% if is_incremental() %}
        union all
        select {{ columns | join(', ') }}, extract_date, load_id, line_number
        from {{ this }} as kept
        where ({{ key_columns | join(', ') }}) in (select {{ key_columns | join(', ') }} from new_versions)
        {% endif %}

    ),

    ranked as (

        select *, row_number() over (
            partition by {{ key_columns | join(', ') }}
            order by extract_date desc, load_id desc, line_number desc) as version_rank
        from candidates

    )

    select {{ columns | join(', ') }}, extract_date, load_id, line_number
    from ranked
    where version_rank = 1
{%- endmacro %}
