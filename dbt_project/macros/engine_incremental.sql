{#- The engine's incremental builds (docs/engine-incremental.md).

    A nightly build recomputes only what the loads since the last complete engine build can have changed:
    int_engine_run decides whether this build may be incremental (same reference data, no reloaded day,
    a previous build to continue from), int_engine_changes lists the (unit, cohort day) pairs whose
    items changed, int_engine_reopened_periods the (reporting unit, period) buckets they fall in and the
    day from which each must be recomputed. The incremental models read those tables; every one of them
    falls back to a complete rebuild when int_engine_run says so. -#}


{#- The table recording each complete engine build (its load watermark and reference fingerprint).
    Read by relation, not by ref: it is written at the end of the build (int_engine_watermarks refs
    fct_unit_scores) and read at its start, so a ref would be a cycle. None before the first build. -#}
{% macro engine_watermarks_relation() -%}
    {{ return(adapter.get_relation(database=target.database, schema='intermediate', identifier='int_engine_watermarks')) }}
{%- endmacro %}


{#- True when this build of the calling incremental model may update it in place: dbt says the model
    is incremental (its table exists, no --full-refresh) and int_engine_run did not ask for a complete
    rebuild. Only queries int_engine_run when dbt executes (not while parsing, not in unit tests where
    is_incremental() is false). -#}
{% macro engine_is_incremental() -%}
    {%- if not execute or this is none or not is_incremental() -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set rows = run_query("select rebuild_all from " ~ ref('int_engine_run')) -%}
    {{ return(rows.rows | length == 1 and not rows.rows[0][0]) }}
{%- endmacro %}


{#- Pre-hook of an incremental engine model (use as pre_hook="{{ engine_prepare_incremental(...) }}", so
    that it is rendered when the model runs). When the table exists but this build is a complete rebuild
    (reference data changed, a day was reloaded...), empty it: the model's SQL then selects everything.
    When the build is incremental, delete what the model's SQL recomputes, including buckets that end up
    with no row at all:
      scope='cohorts', kind=dossier|feedback|rating (or a list of them): rows whose (unit_code, cohort_date)
        int_engine_changes lists;
      scope='periods', unit_column=...: rows whose (unit, period_type, period_start) int_engine_reopened_periods lists;
      scope='keys', changes=<relation>, key_columns=[...]: rows whose key the change model `changes` lists.
    Nothing to delete for scope=none (models that add rows, or replace them by unique key). -#}
{% macro engine_prepare_incremental(scope=none, kind=none, unit_column='unit_code', changes=none, key_columns=none) -%}
    {%- if execute and this is not none and is_incremental() -%}
        {%- if not engine_is_incremental() -%}
            truncate {{ this }}
        {%- elif scope == 'cohorts' -%}
            {%- set kinds = [kind] if kind is string else kind -%}
            delete from {{ this }}
            where (unit_code, cohort_date) in (
                select unit_code, cohort_date from {{ ref('int_engine_changes') }}
                where source_kind in ({% for k in kinds %}'{{ k }}'{{ ", " if not loop.last }}{% endfor %}))
        {%- elif scope == 'periods' -%}
            delete from {{ this }}
            where ({{ unit_column }}, period_type, period_start) in (
                select unit_code, period_type, period_start from {{ ref('int_engine_reopened_periods') }})
        {%- elif scope == 'keys' -%}
            delete from {{ this }}
            where ({{ key_columns | join(', ') }}) in (select {{ key_columns | join(', ') }} from {{ changes }})
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}


{#- md5 of a relation's rows (in a stable order), for int_engine_run's reference fingerprint. -#}
{% macro engine_relation_fingerprint(relation_sql, columns) -%}
    (select coalesce(md5(string_agg(row_text, '|' order by row_text)), '')
     from (select concat_ws('~', {% for c in columns %}{{ c }}::text{{ ", " if not loop.last }}{% endfor %}) as row_text
           from {{ relation_sql }} as fingerprinted) as rows_text)
{%- endmacro %}


{#- The current rows of `relation` (a staging model keyed by dossier_code) for the dossiers changed since
    the last complete build only. Each changed code is looked up on its own (a LATERAL subquery kept apart
    by OFFSET 0), so the code reaches the staging view's window as a parameter and Postgres finds the
    dossier's versions through the raw table's MaHoSo index: the cost follows the night's changes, not
    history. Neither alternative scales: "in (subquery)" is not pushed through the window, so it ranks
    all of history; "= any(array subquery)" is, but at a national night's 350k codes its bitmap turns
    lossy at the default work_mem and each row is rechecked by a linear search of the array (a
    parameter's array is never hashed), which took over 15 minutes. -#}
{% macro changed_dossier_rows(relation) -%}
    select changed_row.*
    from (select distinct item_code from {{ ref('int_engine_changes') }} where source_kind = 'dossier') as changed
    cross join lateral (
        select * from {{ relation }} as current_rows where current_rows.dossier_code = changed.item_code offset 0
    ) as changed_row
{%- endmacro %}


{#- When this build wrote a row: the start of the dbt invocation. The incremental marts carry it so that
    publication (chiso/publish/publication.py) copies to `reporting` only the rows written since it last published,
    found through an index on it, rather than every row of history. -#}
{% macro engine_built_at() -%}
    '{{ run_started_at.isoformat() }}'::timestamptz
{%- endmacro %}
