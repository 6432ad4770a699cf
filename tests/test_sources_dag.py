"""The same day through the real daily DAG twice, on two warehouses: once fetched whole, once in
province slices (CHISO_PORTAL_SOURCES, two provinces: the mapped tasks of docs/ingest.md "Province
slices"). Whatever the slicing, the marts, the published `reporting` rows and the e-mails are the same."""

from __future__ import annotations

import email
import email.policy
import sys
from datetime import date
from pathlib import Path

import psycopg
import pytest

from chiso.dev.mailcatcher import MailCatcher
from chiso.orchestration.airflow_env import AirflowSetup
from chiso.simulator.server import PortalSimulator, RunningSimulator

sys.path.insert(0, str(Path(__file__).parent))
from bi_world import two_provinces_world  # noqa: E402

DAY = date(2024, 11, 14)
TOKEN = "slices-dag"
SLICES = "H15=/tinh/H15,H21=/tinh/H21"
SLICED = ("dossiers", "process_log", "feedback", "ratings")
# Differ by design between two warehouses: when and by which load a row was written.
VARYING = ("built_at", "published_at", "load_id", "publication_id", "loaded_at", "run_at", "gate_run_id",
           "recorded_at", "finished_at", "started_at")


def query(url, statement, params=None):
    with psycopg.connect(url) as conn:
        return conn.execute(statement, params).fetchall()


@pytest.fixture(scope="module")
def runs(make_database, tmp_path_factory):
    portal = PortalSimulator(766, two_provinces_world(0.3))
    done = {}
    with RunningSimulator(portal, TOKEN) as simulator:
        for name, sources in (("whole", None), ("sliced", SLICES)):
            home = tmp_path_factory.mktemp(f"chiso-sources-{name}")
            recipients = home / "recipients.yml"
            recipients.write_text(
                "recipients:\n"
                "  - {email: tinh@daklak.example.vn, name: UBND tỉnh Đắk Lắk, scope: {province: 000.00.00.H15}}\n"
                "  - {email: tinh@gialai.example.vn, name: UBND tỉnh Gia Lai, scope: {province: 000.00.00.H21}}\n",
                encoding="utf-8")
            warehouse = make_database(f"chiso_src_{name}_wh")
            metadata = make_database(f"chiso_src_{name}_af").replace("postgresql://", "postgresql+psycopg2://")
            with MailCatcher(home / "mail") as mail:
                setup = AirflowSetup(home=home / "airflow", metadata_url=metadata, warehouse_url=warehouse,
                                     portal_url=simulator.url, portal_token=TOKEN, smtp_host=mail.host,
                                     smtp_port=mail.port, pseudonym_key="slices-key", chiso_home=home,
                                     recipients_file=recipients, retry_delay_seconds=1)
                setup.migrate()
                with pytest.MonkeyPatch.context() as env:  # the DAG's tasks inherit the test's environment
                    if sources:
                        env.setenv("CHISO_PORTAL_SOURCES", sources)
                    result = setup.test_dag_run(f"{DAY}T23:00:00+07:00", {"business_date": DAY.isoformat()})
            done[name] = {"result": result, "warehouse": warehouse, "metadata": metadata.replace("+psycopg2", ""),
                          "mail": home / "mail"}
    return done


def relations(url: str, schema: str) -> dict[str, list[tuple]]:
    """Every table and view of ``schema``, its rows without the columns that differ by design, sorted."""
    names = [name for (name,) in query(url, """select table_name from information_schema.tables
                                               where table_schema = %s and table_name not like '%%pipeline_health%%'
                                               order by 1""", (schema,))]
    out = {}
    for name in names:
        columns = [c for (c,) in query(url, """select column_name from information_schema.columns
                                               where table_schema = %s and table_name = %s order by ordinal_position""",
                                       (schema, name)) if c not in VARYING]
        listed = ", ".join(f'"{c}"::text' for c in columns)
        out[name] = sorted(query(url, f'select {listed} from "{schema}"."{name}"'), key=repr)
    return out


def mails(folder: Path) -> dict[str, tuple[str, str]]:
    out = {}
    for path in sorted(folder.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = message.get_body(("plain",)).get_content()
        out[str(message["To"])] = (str(message["Subject"]), body)
    return out


def test_both_runs_succeed_and_the_sliced_one_ran_a_task_per_province(runs):
    for name, run in runs.items():
        assert run["result"].returncode == 0, (name, run["result"].stdout[-3000:], run["result"].stderr[-3000:])
    mapped = query(runs["sliced"]["metadata"], """
        select task_id, count(*), array_agg(rendered_map_index order by map_index) from task_instance
        where dag_id = 'chiso_daily' and map_index >= 0 group by task_id""")
    by_task = {task: (n, list(names)) for task, n, names in mapped}
    for entity in SLICED:
        for step in ("fetch", "land", "load"):
            assert by_task[f"{step}_{entity}"] == (2, ["H15", "H21"]), (step, entity, by_task)
    assert not query(runs["whole"]["metadata"], "select 1 from task_instance where map_index >= 0 "
                                                "and task_id like 'fetch_%%'")


def test_the_ledger_holds_a_load_per_province_of_each_sliced_entity(runs):
    ledger = query(runs["sliced"]["warehouse"], """select entity, array_agg(source order by source)
                                                   from raw.load_ledger where status = 'loaded' group by entity""")
    for entity, sources in ledger:
        assert sources == (["H15", "H21"] if entity in SLICED else ["national"]), entity


@pytest.mark.parametrize("schema", ["marts", "reporting"])
def test_the_marts_and_the_published_rows_are_the_same(runs, schema):
    whole, sliced = relations(runs["whole"]["warehouse"], schema), relations(runs["sliced"]["warehouse"], schema)
    assert set(whole) == set(sliced) and len(whole) > 10
    assert any(rows for rows in whole.values())
    for name in whole:
        assert sliced[name] == whole[name], f"{schema}.{name}"


def test_the_e_mails_are_the_same(runs):
    whole, sliced = mails(runs["whole"]["mail"]), mails(runs["sliced"]["mail"])
    assert set(whole) == {"tinh@daklak.example.vn", "tinh@gialai.example.vn"}
    assert sliced == whole
