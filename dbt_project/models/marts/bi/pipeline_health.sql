{{ config(materialized='table') }}

-- The pipeline by business date, for the pipeline-health dashboard: loads and their rows, the quarantined
-- share, quality-gate runs and failures, publications and report deliveries. Built from the raw ledger
-- and the ops tables (BI logins cannot read either), so it is a table: it reflects the pipeline as of this
-- build (the night's own publication and e-mails appear after the next build). Counts only: no recipient
-- address, no quarantined text.
with days as (

    select business_date from {{ source('portal', 'load_ledger') }}
    union
    select business_date from {{ source('ops', 'gate_runs') }}
    union
    select business_date from {{ source('ops', 'reporting_publications') }}
    union
    select business_date from {{ source('ops', 'report_deliveries') }}

),

loads as (

    select
        business_date,
        count(*) filter (where status = 'loaded')                            as loads,
        count(*) filter (where status = 'loading')                           as loads_unfinished,
        coalesce(sum(rows_loaded) filter (where status = 'loaded'), 0)        as rows_loaded,
        coalesce(sum(rows_quarantined) filter (where status = 'loaded'), 0)   as rows_quarantined,
        max(finished_at)                                                      as last_load_finished_at
    from {{ source('portal', 'load_ledger') }}
    group by business_date

),

gates as (

    select
        business_date,
        count(*)                                                             as gate_runs,
        count(*) filter (where not success)                                  as gate_runs_failed
    from {{ source('ops', 'gate_runs') }}
    group by business_date

),

publications as (

    select business_date, count(*) as publications, max(published_at) as last_published_at
    from {{ source('ops', 'reporting_publications') }}
    group by business_date

),

deliveries as (

    select business_date, count(*) as reports_delivered, count(distinct report_code) as report_kinds_delivered,
           max(sent_at) as last_delivered_at
    from {{ source('ops', 'report_deliveries') }}
    group by business_date

)

select
    days.business_date,
    coalesce(loads.loads, 0)                                                  as loads,
    coalesce(loads.loads_unfinished, 0)                                       as loads_unfinished,
    coalesce(loads.rows_loaded, 0)                                            as rows_loaded,
    coalesce(loads.rows_quarantined, 0)                                       as rows_quarantined,
    round(100.0 * loads.rows_quarantined
          / nullif(loads.rows_loaded + loads.rows_quarantined, 0), 4)         as quarantined_percent,
    loads.last_load_finished_at,
    coalesce(gates.gate_runs, 0)                                              as gate_runs,
    coalesce(gates.gate_runs_failed, 0)                                       as gate_runs_failed,
    coalesce(publications.publications, 0)                                    as publications,
    publications.last_published_at,
    coalesce(deliveries.reports_delivered, 0)                                 as reports_delivered,
    coalesce(deliveries.report_kinds_delivered, 0)                            as report_kinds_delivered,
    deliveries.last_delivered_at
from days
left join loads using (business_date)
left join gates using (business_date)
left join publications using (business_date)
left join deliveries using (business_date)
