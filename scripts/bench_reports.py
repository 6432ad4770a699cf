"""Benchmark: the nightly e-mail to every recipient of a national night, the former way against the new.

    .venv/bin/python scripts/bench_reports.py [--former-commit 009c68b] [--former-every 10] [--workers N]
        [--day 2025-11-12] [--database-url postgresql://postgres@127.0.0.1:5432/postgres] [--skip-former]

The night is synthesised at the render layer (tests/test_report_size.py's ``synthetic_report``: the
national world's 34 provinces and 3,321 communes, scored, ranked, with the day's figures and the plans'
lists) and sent to the world's recipients (chiso.reports.recipients.world_recipients: every province,
every commune, the data team: 3,356) through ``chiso.reports.send.send_daily``, the real send path:
``build_daily_report`` is replaced by the synthetic report, everything after it is the code under test
(each recipient's view, the charts, the HTML, the MIME message and its size check, the SMTP exchange
with a local catcher, chiso.dev.mailcatcher.MailCatcher, running in its own process, and the exactly-once
ledger ops.report_deliveries in a throw-away database).

The former way is the code of ``--former-commit`` (default: the commit before this work), checked out
in a temporary git worktree and run in its own process, on every ``--former-every``-th recipient (and
the team): at ~200 ms an e-mail the whole night would take 10 minutes. The new way runs on the same
sample, then on the whole night. Each run is its own process; its peak memory is the largest sum of the
proportional set sizes (PSS: a page shared by n processes counts 1/n in each) of the process and its
workers, sampled every 50 ms. Also timed, in-process, on a
sample of 60 communes, 2 provinces and the team: each stage of one e-mail (view, charts, HTML, MIME
message) and the ledger alone (deliver_once with a send that does nothing, every recipient).

Prints JSON lines, then a table with the ratios. Not a test (no timing is asserted anywhere).
"""

from __future__ import annotations

import argparse
import email.parser
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FORMER_COMMIT = "009c68b"   # main before the nightly e-mails were made fast


# ----------------------------------------------------------------------------- one run, in its own process

def _tree_memory_kb(pid: int) -> int:
    """Memory of a process and all its descendants (Linux /proc): the sum of their proportional set
    sizes, so that the pages forked workers share with their parent count once, not once per process."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/smaps_rollup") as rollup:
                total += next((int(line.split()[1]) for line in rollup if line.startswith("Pss:")), 0)
            with open(f"/proc/{current}/task/{current}/children") as children:
                stack += [int(child) for child in children.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


class PeakMemory:
    def __init__(self):
        self.peak_kb, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.wait(0.05):
            self.peak_kb = max(self.peak_kb, _tree_memory_kb(os.getpid()))

    def __enter__(self):
        self.peak_kb = _tree_memory_kb(os.getpid())
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _recipients(day: date):
    from chiso.reports.recipients import Recipient, Scope, world_recipients
    from chiso.simulator.scenarios import national

    everyone = []
    for entry in world_recipients(national(), day):
        scope = entry["scope"]
        everyone.append(Recipient(entry["email"], entry["name"],
                                  Scope("team") if scope == "team" else Scope(*next(iter(scope.items()))),
                                  reports=tuple(entry.get("reports", ("daily", "campaign")))))
    return everyone


def _sample(everyone, every: int):
    if every <= 1:
        return everyone
    chosen = everyone[::every]
    return chosen + [r for r in everyone if r.is_team and r not in chosen]


def run(args) -> dict:
    """Inside the run's process: ``args.tree`` is the code under test (this tree or the former one)."""
    sys.path[:0] = [str(args.tree), str(Path(args.tree) / "tests")]
    import inspect

    from test_report_size import synthetic_report

    from chiso.reports import daily, send
    from chiso.reports.delivery import deliver_once
    from chiso.reports.mail import SmtplibMailer, build_message
    from chiso.core.warehouse import connect, ensure_schema

    assert Path(daily.__file__).resolve().is_relative_to(Path(args.tree).resolve()), daily.__file__
    day = date.fromisoformat(args.day)
    report = synthetic_report(day)
    everyone = _recipients(day)
    recipients = _sample(everyone, args.every)
    ensure_schema(args.url)
    with connect(args.url) as conn:
        conn.execute("truncate ops.report_deliveries")
    daily.build_daily_report = lambda business_date, url=None: report   # the synthetic night
    daily.add_technical_facts = lambda report, url=None: None            # it has its technical facts
    host, port = args.smtp.split(":")

    class TimedMailer(SmtplibMailer):
        """Counts the time this process spends in the SMTP exchange (the catcher shares the machine)."""
        waiting = 0.0

        def send(self, message):
            started = time.perf_counter()
            try:
                super().send(message)
            finally:
                TimedMailer.waiting += time.perf_counter() - started

    mailer = TimedMailer(host, int(port))
    options = {"workers": args.workers} if "workers" in inspect.signature(send.send_daily).parameters else {}
    cpu = os.times()
    with PeakMemory() as memory:
        started = time.perf_counter()
        result = send.send_daily(day, mailer, args.url, recipients, **options)
        elapsed = time.perf_counter() - started
    cpu_after = os.times()
    with connect(args.url) as conn:
        recorded = conn.execute("select count(*), count(distinct recipient) from ops.report_deliveries").fetchone()
    out = {"tree": args.label, "recipients": len(recipients), "sent": len(result["sent"]),
           "recorded": recorded[0], "recorded_distinct": recorded[1], "seconds": round(elapsed, 2),
           "ms_per_recipient": round(1000 * elapsed / len(recipients), 1),
           "cpu_seconds": round(sum(cpu_after[:4]) - sum(cpu[:4]), 1),
           "cpu_ms_per_recipient": round(1000 * (sum(cpu_after[:4]) - sum(cpu[:4])) / len(recipients), 1),
           # the sending process's wait on the SMTP exchange; None when workers send (each on its own)
           "smtp_seconds": round(TimedMailer.waiting, 2) if TimedMailer.waiting else None,
           "peak_mb": round(memory.peak_kb / 1024), **options}
    if args.stages:
        out["stages_ms"] = _stages(report, everyone, build_message)
        out["ledger_ms_per_recipient"] = _ledger(everyone, deliver_once, args.url, connect)
    return out


def _stages(report, everyone, build_message) -> dict:
    """Each stage of one e-mail, in this process, per recipient of a sample (the charts' and templates'
    caches warm: the second pass counts)."""
    from chiso.reports import daily, mail

    # What the tree sends: the message written directly to bytes, or the standard library's generator.
    to_bytes = getattr(mail, "message_bytes", None) or (lambda *a: build_message(*a).as_bytes())
    sample = [r for r in everyone if r.scope.kind == "province"][:2] + \
        [r for r in everyone if r.scope.kind == "commune"][:60] + [r for r in everyone if r.is_team]
    totals = {}
    for _ in range(2):
        totals = dict.fromkeys(("view", "charts", "html", "message"), 0.0)
        for recipient in sample:
            started = time.perf_counter()
            mine = report.for_recipient(recipient)
            context = daily.view(mine, recipient)
            viewed = time.perf_counter()
            images = daily.draw_charts(mine, context)
            drawn = time.perf_counter()
            html = daily.render_html(mine, recipient, images, context)
            text = daily.render_text(mine, context)
            rendered_at = time.perf_counter()
            rendered = daily.RenderedReport(daily.render_subject(mine, recipient.language), html, text,
                                            list(images.values()),
                                            [context["attachment"]] if context["attachment"] is not None else [])
            to_bytes(rendered, "chiso@localhost", recipient.email, "<bench@chiso.local>")
            done = time.perf_counter()
            totals["view"] += viewed - started
            totals["charts"] += drawn - viewed
            totals["html"] += rendered_at - drawn
            totals["message"] += done - rendered_at
    return {stage: round(1000 * seconds / len(sample), 2) for stage, seconds in totals.items()}


def _ledger(everyone, deliver_once, url, connect) -> float:
    with connect(url) as conn:
        conn.execute("truncate ops.report_deliveries")
    started = time.perf_counter()
    deliver_once("bench_ledger", date(2000, 1, 1), everyone, lambda recipient, message_id: None, url)
    elapsed = time.perf_counter() - started
    with connect(url) as conn:
        conn.execute("truncate ops.report_deliveries")
    return round(1000 * elapsed / len(everyone), 3)


# ----------------------------------------------------------------------------- the driver

def _catcher(folder: str, port_queue) -> None:
    from chiso.dev.mailcatcher import MailCatcher

    with MailCatcher(Path(folder)) as catcher:
        port_queue.put(catcher.port)
        threading.Event().wait()


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _received(folder: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    parser = email.parser.BytesHeaderParser()
    for path in folder.glob("*.eml"):
        with path.open("rb") as handle:
            to = str(parser.parse(handle)["To"])
        counts[to] = counts.get(to, 0) + 1
        path.unlink()
    return counts


def _one_run(label: str, tree: Path, every: int, workers: int | None, stages: bool, args, smtp: str,
             folder: Path) -> dict:
    command = [sys.executable, __file__, "--run", "--tree", str(tree), "--label", label, "--every", str(every),
               "--url", args.bench_url, "--smtp", smtp, "--day", args.day]
    if workers:
        command += ["--workers", str(workers)]
    if stages:
        command.append("--stages")
    catcher_cpu = _cpu_seconds(args.catcher_pid)
    finished = subprocess.run(command, check=True, capture_output=True, text=True, cwd=tree)
    result = json.loads(finished.stdout.strip().splitlines()[-1])
    result["catcher_cpu_seconds"] = round(_cpu_seconds(args.catcher_pid) - catcher_cpu, 1)
    received = _received(folder)
    result["received"] = sum(received.values())
    result["received_twice"] = sum(1 for count in received.values() if count > 1)
    assert result["received"] == result["sent"] == result["recorded_distinct"] == result["recipients"], result
    assert result["received_twice"] == 0, result
    print(json.dumps(result), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--former-commit", default=FORMER_COMMIT)
    parser.add_argument("--former-every", type=int, default=10, help="the former way sends to every n-th recipient")
    parser.add_argument("--workers", type=int, help="render workers of the new way (default: one per core)")
    parser.add_argument("--day", default="2025-11-12")
    parser.add_argument("--database-url", default=os.environ.get(
        "CHISO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--skip-former", action="store_true")
    # inside a run's process
    parser.add_argument("--run", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tree", help=argparse.SUPPRESS)
    parser.add_argument("--label", help=argparse.SUPPRESS)
    parser.add_argument("--every", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--smtp", help=argparse.SUPPRESS)
    parser.add_argument("--stages", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        print(json.dumps(run(args)))
        return 0

    import psycopg

    name = f"chiso_reports_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    args.bench_url = f"{args.database_url.rpartition('/')[0]}/{name}"
    work = Path(tempfile.mkdtemp(prefix="chiso-bench-reports-"))
    folder = work / "mail"
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    catcher = context.Process(target=_catcher, args=(str(folder), ports), daemon=True)
    catcher.start()
    smtp = f"127.0.0.1:{ports.get(timeout=60)}"
    args.catcher_pid = catcher.pid
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    results = {}
    try:
        if not args.skip_former:
            former_tree = work / "former"
            subprocess.run(["git", "worktree", "add", "--detach", str(former_tree), args.former_commit],
                           cwd=REPO, check=True, capture_output=True)
            try:
                results["former_sample"] = _one_run(f"former {args.former_commit}", former_tree, args.former_every,
                                                    None, True, args, smtp, folder)
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", str(former_tree)], cwd=REPO, check=False)
        results["new_serial_sample"] = _one_run(f"new {head}, 1 process", REPO, args.former_every, 1, False, args,
                                                smtp, folder)
        results["new_sample"] = _one_run(f"new {head}", REPO, args.former_every, args.workers, False, args,
                                         smtp, folder)
        results["new_night"] = _one_run(f"new {head}", REPO, 1, args.workers, True, args, smtp, folder)
    finally:
        catcher.terminate()
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
        shutil.rmtree(work, ignore_errors=True)
    _table(results)
    return 0


def _table(results: dict) -> None:
    print()
    print(f"{'run':<30} {'recipients':>10} {'wall s':>7} {'ms/recipient':>12} {'CPU ms/recipient':>16} "
          f"{'SMTP wait s':>11} {'catcher CPU s':>13} {'peak MB':>8}")
    for key, r in results.items():
        print(f"{r['tree'] + (' (sample)' if 'sample' in key else ''):<30} {r['recipients']:>10} {r['seconds']:>7} "
              f"{r['ms_per_recipient']:>12} {r['cpu_ms_per_recipient']:>16} {r['smtp_seconds'] or '—':>11} "
              f"{r['catcher_cpu_seconds']:>13} {r['peak_mb']:>8}")
    night = results["new_night"]
    if "former_sample" in results:
        former, sample = results["former_sample"], results["new_sample"]
        print(f"\nformer way extrapolated to the night's {night['recipients']} recipients: "
              f"{former['ms_per_recipient'] * night['recipients'] / 1000:.0f} s wall, "
              f"{former['cpu_ms_per_recipient'] * night['recipients'] / 1000:.0f} s CPU")
        print(f"same sample, former / new: {former['ms_per_recipient'] / sample['ms_per_recipient']:.1f}x wall, "
              f"{former['cpu_ms_per_recipient'] / sample['cpu_ms_per_recipient']:.1f}x CPU")
        print("stages, ms per e-mail in one process (former -> new): " + ", ".join(
            f"{stage} {former['stages_ms'][stage]} -> {night['stages_ms'][stage]}" for stage in former["stages_ms"]))
        print(f"ledger alone, ms per recipient: {former['ledger_ms_per_recipient']} -> "
              f"{night['ledger_ms_per_recipient']}")
    print(f"the whole night, new way: {night['seconds']} s wall, {night['cpu_seconds']} s CPU, peak {night['peak_mb']} MB")


if __name__ == "__main__":
    sys.exit(main())
