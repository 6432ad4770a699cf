-- The business dates whose day-on-time figures (mart_day_on_time) this build recounts: the dates loaded
-- since the last complete engine build, and the days on which a dossier changed since then ended or
-- became overdue, before (int_engine_previous_dossiers) or after the change (fct_dossiers). A day's
-- figure counts only the dossiers that ended or fell overdue on it, so no other day's can differ.
-- Empty on a complete rebuild (mart_day_on_time is then rebuilt whole).
with run as (

    select * from {{ ref('int_engine_run') }}

),

candidate_days as (

    select ledger.business_date
    from {{ source('portal', 'load_ledger') }} as ledger, run
    where not run.rebuild_all
      and ledger.load_id > run.previous_load_watermark
      and ledger.load_id <= run.load_watermark

    union

    select unnest(array[previous.ended_date, previous.overdue_from_date])
    from {{ ref('int_engine_previous_dossiers') }} as previous

    union

    select unnest(array[now.ended_date, now.overdue_from_date])
    from ({{ changed_dossier_rows(ref('fct_dossiers')) }}) as now

)

-- Only business dates have a figure (the days of a loaded dossier extract).
select distinct candidate_days.business_date
from candidate_days
inner join {{ source('portal', 'load_ledger') }} as ledger
    on ledger.business_date = candidate_days.business_date
   and ledger.entity = 'dossiers' and ledger.status = 'loaded'
