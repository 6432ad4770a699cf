"""reporting.pipeline_health_daily: what the pipeline did per business day, for the pipeline-health dashboard.

A view, not a copy: it reads the load ledger and the ops tables live (report deliveries are written after
the publication), with the privileges of its owner, the publisher. So the BI role, which may read
``reporting`` only, sees these counts without any right on ``raw`` or ``ops``: no dossier and no recipient
address ever passes through it, only counts.
"""

from __future__ import annotations

from psycopg import sql

from chiso.core.warehouse import OPS_SCHEMA, RAW_SCHEMA

VIEW = "pipeline_health_daily"

_DEFINITION = f"""
with loads as (
    select business_date, count(*) as loads, sum(rows_loaded) as rows_loaded,
           sum(rows_quarantined) as rows_quarantined
    from {RAW_SCHEMA}.load_ledger where status = 'loaded' group by business_date),
gates as (
    select business_date, count(*) as gate_runs, count(*) filter (where not success) as gate_runs_failed
    from {OPS_SCHEMA}.gate_runs group by business_date),
publications as (
    select business_date, count(*) as publications from {OPS_SCHEMA}.reporting_publications group by business_date),
deliveries as (
    select business_date, count(*) as report_deliveries from {OPS_SCHEMA}.report_deliveries group by business_date)
select business_date,
       coalesce(loads.loads, 0)::int as loads,
       coalesce(loads.rows_loaded, 0)::bigint as rows_loaded,
       coalesce(loads.rows_quarantined, 0)::bigint as rows_quarantined,
       round(100.0 * loads.rows_quarantined / nullif(loads.rows_loaded + loads.rows_quarantined, 0), 2)
           as quarantine_share_percent,
       coalesce(gates.gate_runs, 0)::int as gate_runs,
       coalesce(gates.gate_runs_failed, 0)::int as gate_runs_failed,
       coalesce(publications.publications, 0)::int as publications,
       coalesce(deliveries.report_deliveries, 0)::int as report_deliveries
from loads
full join gates using (business_date)
full join publications using (business_date)
full join deliveries using (business_date)
"""

_COMMENTS = {
    None: "Vận hành hệ thống số liệu theo ngày số liệu: nạp dữ liệu, cách ly, kiểm tra chất lượng, công bố, gửi thư.",
    "business_date": "Ngày số liệu.",
    "loads": "Số tệp dữ liệu đã nạp (bản hiện hành).",
    "rows_loaded": "Số bản ghi đã nạp.",
    "rows_quarantined": "Số bản ghi bị cách ly vì không hợp lệ.",
    "quarantine_share_percent": "Phần trăm bản ghi bị cách ly trên tổng số bản ghi nhận được.",
    "gate_runs": "Số lượt kiểm tra chất lượng.",
    "gate_runs_failed": "Số lượt kiểm tra chất lượng không đạt.",
    "publications": "Số lần công bố số liệu sang lớp báo cáo.",
    "report_deliveries": "Số thư báo cáo đã gửi.",
}


def publish_view(conn, schema: str) -> None:
    target = sql.Identifier(schema, VIEW)
    conn.execute(sql.SQL("create or replace view {} as ").format(target) + sql.SQL(_DEFINITION))
    for column, text in _COMMENTS.items():
        if column is None:
            conn.execute(sql.SQL("comment on view {} is {}").format(target, sql.Literal(text)))
        else:
            conn.execute(sql.SQL("comment on column {}.{} is {}").format(target, sql.Identifier(column),
                                                                         sql.Literal(text)))
