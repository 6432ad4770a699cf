"""Reports from the command line (CHISO_WAREHOUSE_URL names the warehouse).

    python -m chiso.reports due --date 2024-11-24
        which campaign reports fall due on a business date
    python -m chiso.reports schedule [--plan PLAN]
        every campaign report of the seeds: its data cut-off, the morning it is sent, its due date
    python -m chiso.reports ledger [--date 2024-11-24] [--report daily_indicators]
        what was sent to whom (ops.report_deliveries) and the deliberate re-sends
    python -m chiso.reports render --date 2024-11-24 --to chutich@eaktur.example.vn [--report CODE] --out DIR
        write a report as its recipient gets it: HTML with its charts, and the Excel annex and printable
        HTML of a campaign report
    python -m chiso.reports resend --date 2024-11-24 --to chutich@eaktur.example.vn --reason "lost in spam"
            [--report CODE] [--smtp HOST:PORT]
        send one report to one recipient again, on purpose (logged in ops.report_resends); through the
        Airflow SMTP connection (CHISO_SMTP_CONN_ID) unless --smtp names a server

CODE is ``daily_indicators`` (the nightly e-mail, the default) or a campaign report's code as ``due``
and ``ledger`` print it, e.g. ``campaign/KH_CUKUIN_60NGAY_2024/periodic``.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from chiso.reports.daily import REPORT_CODE


def _mailer(smtp: str | None):
    if not smtp:
        return None
    from chiso.reports.mail import SmtplibMailer

    host, _, port = smtp.rpartition(":")
    return SmtplibMailer(host or "127.0.0.1", int(port))


def write_rendered(rendered, out: Path) -> Path:
    """Write a RenderedReport to a folder: report.html (charts as files beside it) and attachments."""
    out.mkdir(parents=True, exist_ok=True)
    html = rendered.html
    for image in rendered.images:
        (out / image.filename).write_bytes(image.data)
        html = html.replace(f"cid:{image.cid}", image.filename)
    (out / "report.html").write_text(html, encoding="utf-8")
    for attachment in rendered.attachments:
        (out / attachment.filename).write_bytes(attachment.data)
    return out / "report.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chiso.reports", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    due = commands.add_parser("due", help="campaign reports due on a business date")
    due.add_argument("--date", type=date.fromisoformat, required=True)
    schedule = commands.add_parser("schedule", help="every campaign report: cut-off, sending day, due date "
                                                    "(from the seed files; no warehouse)")
    schedule.add_argument("--plan", help="one plan_id (default: every campaign plan)")
    ledger = commands.add_parser("ledger", help="deliveries and re-sends")
    ledger.add_argument("--date", type=date.fromisoformat)
    ledger.add_argument("--report")
    render = commands.add_parser("render", help="write a report as a recipient gets it")
    render.add_argument("--date", type=date.fromisoformat, required=True)
    render.add_argument("--to", required=True, help="a recipient of the recipients file")
    render.add_argument("--report", default=REPORT_CODE)
    render.add_argument("--out", type=Path, required=True)
    resend = commands.add_parser("resend", help="send a report to one recipient again, on purpose")
    resend.add_argument("--date", type=date.fromisoformat, required=True)
    resend.add_argument("--to", required=True)
    resend.add_argument("--report", default=REPORT_CODE)
    resend.add_argument("--reason", required=True)
    resend.add_argument("--smtp", help="HOST:PORT of an SMTP server instead of the Airflow connection")
    args = parser.parse_args(argv)

    if args.command == "due":
        from chiso.reports.campaign import due_reports

        for item in due_reports(args.date):
            print(f"{item.report_code}\t{item.as_of}\t{item.title()}: {item.period_label()}"
                  + (f" {item.deadline_label()}" if item.due_before else ""))
        return 0
    if args.command == "schedule":
        from chiso.reports.campaign import campaigns_from_seeds

        plans = campaigns_from_seeds()
        if args.plan and args.plan not in plans:
            parser.error(f"{args.plan} is not a campaign plan of the seeds ({', '.join(sorted(plans))})")
        print("report\tdata to the end of\tsent on\tdue before\ttitle")
        for plan_id, plan in sorted(plans.items()):
            if args.plan in (None, plan_id):
                for item in plan.schedule():
                    print(f"{item.report_code}\t{item.as_of}\t{item.delivered_on}\t{item.due_before or '—'}\t"
                          f"{item.title()}")
        return 0
    if args.command == "ledger":
        from chiso.core.warehouse import OPS_SCHEMA, connect, ensure_schema

        ensure_schema()
        where, params = [], []
        if args.date:
            where.append("business_date = %s")
            params.append(args.date)
        if args.report:
            where.append("report_code = %s")
            params.append(args.report)
        clause = f"where {' and '.join(where)}" if where else ""
        with connect() as conn:
            for row in conn.execute(f"select report_code, business_date, recipient, sent_at, message_id, "
                                    f"coalesce(period_label, '') from {OPS_SCHEMA}.report_deliveries {clause} "
                                    f"order by business_date, report_code, recipient", params).fetchall():
                print("\t".join(str(v) for v in row))
            for row in conn.execute(f"select report_code, business_date, recipient, sent_at, message_id, "
                                    f"'re-sent: ' || reason from {OPS_SCHEMA}.report_resends {clause} "
                                    f"order by sent_at", params).fetchall():
                print("\t".join(str(v) for v in row))
        return 0
    if args.command == "render":
        from chiso.reports.recipients import load_recipients
        from chiso.reports.send import render_for

        recipient = next((r for r in load_recipients() if r.email == args.to.lower()), None)
        if recipient is None:
            print(f"{args.to} is not in the recipients file", file=sys.stderr)
            return 1
        print(write_rendered(render_for(args.report, args.date, recipient), args.out))
        return 0
    from chiso.reports.send import resend as resend_report

    message_id = resend_report(args.report, args.date, args.to, args.reason, mailer=_mailer(args.smtp))
    print(f"re-sent {args.report} {args.date} to {args.to}: {message_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
