{{ config(materialized='incremental', incremental_strategy='append') }}
-- One row per complete build of the engine: the load watermark it processed up to and the reference
-- fingerprint it computed with (int_engine_run). Built after every model that reads the change set
-- (fct_unit_scores, the plan metrics, the peer rankings; and, in `dbt build`, after
-- its tests), so a build that fails anywhere before leaves the previous row the latest, and the next
-- build processes the same loads again (re-processing is harmless: the incremental models recompute
-- whole buckets). int_engine_run reads the latest row (docs/engine-incremental.md).
-- depends_on: {{ ref('fct_unit_scores') }}
-- depends_on: {{ ref('fct_indicator_values') }}
-- depends_on: {{ ref('fct_plan_metric_values') }}
-- depends_on: {{ ref('int_plan_metric_events') }}
-- depends_on: {{ ref('mart_peer_rankings') }}
-- depends_on: {{ ref('mart_day_on_time') }}
select
    run.load_watermark,
    run.reference_fingerprint,
    run.first_business_date,
    run.rebuild_all,
    run.rebuild_reason,
    clock_timestamp() as built_at
from {{ ref('int_engine_run') }} as run
