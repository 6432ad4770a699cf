{{ config(materialized='incremental', incremental_strategy='append') }}
-- One row per complete build of the engine: the load watermark it processed up to and the reference
-- fingerprint it computed with (int_engine_run). Built after fct_unit_scores (and, in `dbt build`, after
-- its tests), so a build that fails anywhere before leaves the previous row the latest, and the next
-- build processes the same loads again (re-processing is harmless: the incremental models recompute
-- whole buckets). int_engine_run reads the latest row (docs/engine-incremental.md).
-- depends_on: {{ ref('fct_unit_scores') }}
-- depends_on: {{ ref('fct_indicator_values') }}
select
    run.load_watermark,
    run.reference_fingerprint,
    run.first_business_date,
    run.rebuild_all,
    run.rebuild_reason,
    clock_timestamp() as built_at
from {{ ref('int_engine_run') }} as run
