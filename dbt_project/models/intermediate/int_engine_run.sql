-- One row: may this build of the engine be incremental, and since which load? (docs/engine-incremental.md)
-- The load watermark is the highest load_id of raw.load_ledger when the build starts; the previous one
-- is that of the last complete build (int_engine_watermarks). A build must recompute everything when
-- there is no previous build, on --full-refresh, when reference data changed (units and their lineage,
-- the unit crosswalk, the procedure catalogue, the rule registry, the score classes, the calendar:
-- compared by a fingerprint of their contents), when the first business date moved (every running sum
-- starts there), or when a day of a change-feed entity was reloaded since (a reload deletes the day's
-- rows, and a version that disappears cannot be found among the new rows). Also when an incremental
-- engine table is missing: a release that adds one (or an operator who dropped one) cannot update it by
-- difference from rows it never had. An incremental model that keeps its own window and does not follow
-- the engine's change feed says so with meta engine_table: false (mart_day_on_time): it is not an engine
-- table, and a build that leaves it out must not make the engine rebuild everything.
{% set previous = engine_watermarks_relation() %}
{% set missing_tables = [] %}
{% if execute %}
    {% for node in graph.nodes.values()
           if node.resource_type == 'model' and node.config.materialized == 'incremental'
              and node.schema in ('intermediate', 'marts') and node.name != 'int_engine_watermarks'
              and node.config.meta.get('engine_table', true) %}
        {% if adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias) is none %}
            {% do missing_tables.append(node.name) %}
        {% endif %}
    {% endfor %}
{% endif %}

with now as (

    select
        (select coalesce(max(load_id), 0) from {{ source('portal', 'load_ledger') }}
         where status in ('loaded', 'superseded'))                                as load_watermark,
        (select min(business_date) from {{ source('portal', 'load_ledger') }}
         where entity = 'dossiers' and status = 'loaded')                         as first_business_date,
        md5(concat_ws('/',
            {{ engine_relation_fingerprint(ref('int_unit_lineage'), ['member_unit_code', 'reporting_unit_code', 'window_from', 'window_to']) }},
            {{ engine_relation_fingerprint(ref('dim_units'), ['unit_code', 'unit_kind', 'parent_unit_code', 'portal_code', 'valid_from', 'valid_to']) }},
            {{ engine_relation_fingerprint(ref('stg_portal__procedures'), ['procedure_code', 'valid_from_at', 'valid_to_at', 'online_level', 'fee_amount', 'returns_written_result', 'serves_individuals', 'is_full_online_eligible', 'statutory_working_days']) }},
            {{ engine_relation_fingerprint(ref('rule_registry'), ['rule_version', 'indicator_code', 'indicator_group', 'max_points', 'rule', 'cap_threshold', 'zero_denominator_rate', 'zero_denominator_score', 'is_scored', 'valid_from', 'valid_to']) }},
            {{ engine_relation_fingerprint(ref('score_classes'), ['class_code', 'name_vi', 'min_total', 'max_total_exclusive']) }},
            -- The measures ranked among peers (mart_peer_rankings recomputes only the slices the engine wrote).
            {{ engine_relation_fingerprint(ref('peer_lists'), ['indicator_code', 'period_type']) }},
            {{ engine_relation_fingerprint(ref('dim_calendar'), ['calendar_date', 'is_working_day', 'working_day_number']) }},
            '{{ var("rule_version", "portal-2026") }}'
        ))                                                                       as reference_fingerprint

),

previous as (

    {% if previous is not none and not flags.FULL_REFRESH %}
    select load_watermark, reference_fingerprint, first_business_date
    from {{ previous }}
    order by built_at desc, load_watermark desc
    limit 1
    {% else %}
    select null::bigint as load_watermark, null::text as reference_fingerprint, null::date as first_business_date
    where false
    {% endif %}

),

reloads as (

    -- A change-feed day loaded again since the previous build: its earlier load was superseded.
    select count(*) as reloaded_days
    from {{ source('portal', 'load_ledger') }} as newer
    where newer.load_id > coalesce((select load_watermark from previous), 0)
      and newer.entity in ('dossiers', 'ratings', 'feedback', 'procedure_publications')
      and exists (
          select 1 from {{ source('portal', 'load_ledger') }} as older
          where older.entity = newer.entity and older.business_date = newer.business_date
            and older.load_id < newer.load_id and older.status = 'superseded')

)

select
    now.load_watermark,
    previous.load_watermark                                   as previous_load_watermark,
    now.reference_fingerprint,
    now.first_business_date,
    case
        when previous.load_watermark is null then 'no previous build'
        when {{ missing_tables | length > 0 }} then 'engine tables missing: {{ missing_tables | sort | join(", ") }}'
        when previous.reference_fingerprint is distinct from now.reference_fingerprint then 'reference data changed'
        when previous.first_business_date is distinct from now.first_business_date then 'first business date moved'
        when (select reloaded_days from reloads) > 0 then 'a change-feed day was reloaded'
    end                                                       as rebuild_reason,
    previous.load_watermark is null
        or {{ missing_tables | length > 0 }}
        or previous.reference_fingerprint is distinct from now.reference_fingerprint
        or previous.first_business_date is distinct from now.first_business_date
        or (select reloaded_days from reloads) > 0            as rebuild_all
from now
left join previous on true
