"""Benchmark: one business day of the daily DAG on the CeleryExecutor, with 1 and then 2 workers.

    .venv/bin/python scripts/bench_celery.py [--scenario cu_kuin_2024] [--volume 4] [--day 2024-11-14]
        [--workers 1,2] [--concurrency 1] [--batch-size 100] [--recipients 600]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

For each worker count, in the same process and from the same portal simulator (its days generated
before the first run, so that no run pays for them): a fresh warehouse and Airflow database, then
chiso.dev.celery_cluster's api-server, scheduler, dag-processor and N ``airflow celery worker`` processes
(``--concurrency`` task slots each) on this machine's Redis, and one triggered run of chiso_daily for
``--day``, mailed to ``--recipients`` readers (one per commune in turn, the first one the whole
district). The run's time is the DAG run's own (from its start to its end in Airflow's database), so
starting the components is not counted.

Prints, per worker count, the run's wall time, the busy time summed over its tasks, and the cost of
each kind of task (fetch, land, load per entity; the single tasks; send_report per batch); then the
speed-up of each count over the first. Not a test: figures go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import date
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
TOKEN = "bench-token"


def database(admin_url: str, created: list[str], kind: str) -> str:
    name = f"chiso_bench_celery_{kind}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    created.append(name)
    return f"{admin_url.rpartition('/')[0]}/{name}"


def one_run(args, workers: int, simulator, mail, home: Path, created: list[str]) -> dict:
    from chiso.orchestration.airflow_env import AirflowSetup
    from chiso.dev.celery_cluster import CeleryCluster

    setup = AirflowSetup(
        home=home / f"airflow-{workers}", chiso_home=home / f"chiso-{workers}",
        metadata_url=database(args.database_url, created, "af").replace("postgresql://", "postgresql+psycopg2://"),
        warehouse_url=database(args.database_url, created, "wh"), portal_url=simulator.url, portal_token=TOKEN,
        smtp_host=mail.host, smtp_port=mail.port, pseudonym_key="bench-celery-key", recipients_file=home / "recipients.yml",
        retry_delay_seconds=1, settings={"CHISO_REPORT_BATCH_SIZE": str(args.batch_size)})
    with CeleryCluster(setup, workers=workers, concurrency=args.concurrency) as cluster:
        run_id = cluster.trigger({"business_date": args.day.isoformat()})
        state = cluster.wait(run_id, timeout=3600)
        instances = cluster.task_instances(run_id)
        with psycopg.connect(setup.metadata_url.replace("+psycopg2", "")) as conn:
            start, end = conn.execute("select start_date, end_date from dag_run where run_id = %s",
                                      (run_id,)).fetchone()
    if state != "success":
        failed = [ti["task_id"] for ti in instances if ti["state"] != "success"]
        raise SystemExit(f"The run with {workers} worker(s) ended {state}: {failed}; logs in {cluster.logs}")
    costs: dict[str, list[float]] = defaultdict(list)
    for ti in instances:
        costs[ti["task_id"]].append((ti["end_date"] - ti["start_date"]).total_seconds())
    return {"wall": (end - start).total_seconds(), "costs": dict(costs),
            "busy": sum(sum(values) for values in costs.values())}


def recipients_file(world, count: int) -> str:
    """``count`` readers: the first sees every unit, the others one commune each, in turn."""
    import yaml

    communes = sorted(unit.code for unit in world.units if unit.kind == "COMMUNE")
    readers = [{"email": "lanhdao@bench.example.vn", "name": "Lãnh đạo", "scope": "all", "reports": ["daily"]}]
    readers += [{"email": f"xa{number}@bench.example.vn", "name": f"Xã {number}",
                 "scope": {"commune": communes[number % len(communes)]}, "reports": ["daily"]}
                for number in range(1, count)]
    return yaml.safe_dump({"recipients": readers}, allow_unicode=True)


def kind_of(task_id: str) -> str:
    for prefix in ("fetch_", "land_", "load_"):
        if task_id.startswith(prefix):
            return prefix + "*"
    return task_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="cu_kuin_2024")
    parser.add_argument("--volume", type=float, default=4.0, help="multiplier of the scenario's daily volume")
    parser.add_argument("--day", type=date.fromisoformat, default=date(2024, 11, 14))
    parser.add_argument("--workers", default="1,2", help="worker counts to compare, the baseline first")
    parser.add_argument("--concurrency", type=int, default=1, help="task slots per worker")
    parser.add_argument("--batch-size", type=int, default=100, help="CHISO_REPORT_BATCH_SIZE")
    parser.add_argument("--recipients", type=int, default=600, help="readers of the nightly e-mail")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]

    from chiso.contract import ENTITIES
    from chiso.dev.mailcatcher import MailCatcher
    from chiso.simulator.scenarios import get_scenario
    from chiso.simulator.server import PortalSimulator, RunningSimulator

    portal = PortalSimulator(766, get_scenario(args.scenario, args.volume))
    started = time.monotonic()
    rows = {entity: sum(1 for _ in portal.stream(entity, args.day)) for entity in ENTITIES}
    for entity in ENTITIES:
        portal.rows(entity, args.day)  # kept in the simulator's cache when small enough
    print(f"{args.scenario} x{args.volume:g}, {args.day}: {rows['dossiers']:,} dossiers, "
          f"{rows['process_log']:,} process-log rows (generated in {time.monotonic() - started:.0f} s); "
          f"{args.recipients} readers by batches of {args.batch_size}")
    created: list[str] = []
    results = {}
    try:
        with tempfile.TemporaryDirectory(prefix="chiso-bench-celery-") as tmp, \
                RunningSimulator(portal, TOKEN) as simulator, MailCatcher(Path(tmp) / "mail") as mail:
            (Path(tmp) / "recipients.yml").write_text(recipients_file(portal.world, args.recipients), encoding="utf-8")
            for workers in counts:
                results[workers] = one_run(args, workers, simulator, mail, Path(tmp), created)
                print(f"{workers} worker(s) x {args.concurrency} slot(s): {results[workers]['wall']:.1f} s "
                      f"(tasks busy {results[workers]['busy']:.1f} s)", flush=True)
    finally:
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            for name in created:
                conn.execute(f'drop database if exists "{name}" with (force)')

    print(f"\n{'task (count)':<34}" + "".join(f"{f'{n} worker(s)':>16}" for n in counts))
    kinds: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for workers, result in results.items():
        for task_id, values in result["costs"].items():
            kinds[kind_of(task_id)][workers] += values
    for kind in sorted(kinds, key=lambda k: -sum(kinds[k][counts[0]])):
        label = f"{kind} ({len(kinds[kind][counts[0]])})"
        print(f"{label:<34}" + "".join(f"{sum(kinds[kind][n]):>15.1f}s" for n in counts))
    print(f"{'DAG run, start to end':<34}" + "".join(f"{results[n]['wall']:>15.1f}s" for n in counts))
    baseline = results[counts[0]]["wall"]
    for workers in counts[1:]:
        print(f"speed-up {counts[0]} -> {workers} worker(s): {baseline / results[workers]['wall']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
