"""The simulator's faults, played through the real daily DAG: what the pipeline survives, what it
quarantines, and what stops it with a message that names the problem.

Each DAG run costs about 25 s, so the faults are packed into three runs, one business day each, with
the settings a deployment would set for them:

* SURVIVABLE_DAY, whole-day files, CHISO_ALLOW_NEW_COLUMNS=true, a 1 s read timeout: 503s, duplicates,
  malformed dates, NFD text and out-of-order updates in dossiers; 429 with Retry-After on units; slow
  answers and read timeouts on process_log; an extra column in ratings; an empty feedback day. The
  day loads, is accounted for and publishes.
* BROKEN_DAY, whole-day files: a renamed column in dossiers, an extra column in ratings (not allowed
  this time), a truncated process_log file. Each stops its entity, naming the problem; the entities
  without faults still load; nothing is published.
* EMPTY_DAY, pages: no dossiers at all, Windows-1258 units and procedures. Everything loads (0 dossiers),
  the raw gate says the day is empty and nothing is published (accepting an empty day, conf
  accept_empty_day, is tested in test_ingest.py, without a DAG run).
"""

from __future__ import annotations

import json
import re
from datetime import date

import psycopg
import pytest

from chiso.orchestration.airflow_env import AirflowSetup
from chiso.contract import ENTITIES, canonical_line
from chiso.dev.mailcatcher import MailCatcher
from chiso.simulator.faults import FaultSchedule
from chiso.simulator.scenarios import get_scenario
from chiso.simulator.server import PortalSimulator, RunningSimulator

TOKEN = "fault-token"
SURVIVABLE_DAY = date(2024, 11, 14)
BROKEN_DAY = date(2024, 11, 15)
EMPTY_DAY = date(2024, 11, 16)
READ_TIMEOUT = 1  # seconds (CHISO_PORTAL_READ_TIMEOUT_SECONDS), so that a timeout costs little
FAULTS = ";".join([
    f"{SURVIVABLE_DAY}/dossiers=http_503:attempts=2,duplicate_rows:rate=0.05,malformed_dates:rate=0.03,"
    f"nfd_text,update_before_create:rate=0.05",
    f"{SURVIVABLE_DAY}/units=http_429:attempts=1:retry_after=1",
    f"{SURVIVABLE_DAY}/process_log=slow:seconds=0.2,timeout:attempts=1:seconds=2",
    f"{SURVIVABLE_DAY}/ratings=extra_column",
    f"{SURVIVABLE_DAY}/feedback=empty_day",
    f"{BROKEN_DAY}/dossiers=renamed_column",
    f"{BROKEN_DAY}/ratings=extra_column",
    f"{BROKEN_DAY}/process_log=truncated_file",
    f"{EMPTY_DAY}/dossiers=empty_day",
    f"{EMPTY_DAY}/units=cp1258_text",
    f"{EMPTY_DAY}/procedures=cp1258_text",
])
RUN_SETTINGS = {
    SURVIVABLE_DAY: {"CHISO_PORTAL_TRANSFER": "files", "CHISO_ALLOW_NEW_COLUMNS": "true",
                     "CHISO_PORTAL_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT)},
    BROKEN_DAY: {"CHISO_PORTAL_TRANSFER": "files", "CHISO_ALLOW_NEW_COLUMNS": "false"},
    # Pages: the simulator's cp1258_text re-encodes a body as text, which a gzip file is not.
    EMPTY_DAY: {"CHISO_PORTAL_TRANSFER": "pages", "CHISO_ALLOW_NEW_COLUMNS": "false"},
}
BROKEN_ENTITIES = {"dossiers", "ratings", "process_log"}  # on BROKEN_DAY
ENGINEER = "dulieu@chiso.example.vn"  # receives the alerts (chiso.orchestration.alerts)


def query(url, sql, params=None):
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def runs(make_database, tmp_path_factory):
    home = tmp_path_factory.mktemp("chiso-faults")
    recipients = home / "recipients.yml"
    recipients.write_text("recipients:\n  - {email: huyen@cukuin.example.vn, name: UBND huyện Cư Kuin}\n"
                          f"data_engineering:\n  - {{email: {ENGINEER}, name: Nhóm dữ liệu}}\n", encoding="utf-8")
    warehouse = make_database("chiso_faults_wh")
    metadata = make_database("chiso_faults_af").replace("postgresql://", "postgresql+psycopg2://")
    schedule = FaultSchedule.parse(FAULTS)
    portal = PortalSimulator(2024, get_scenario("cu_kuin_2024"), schedule)
    with RunningSimulator(portal, TOKEN) as simulator, MailCatcher(home / "mail") as mail:
        setup = AirflowSetup(home=home / "airflow", metadata_url=metadata, warehouse_url=warehouse,
                             portal_url=simulator.url, portal_token=TOKEN, smtp_host=mail.host, smtp_port=mail.port,
                             pseudonym_key="fault-key", chiso_home=home, recipients_file=recipients,
                             retry_delay_seconds=1)
        setup.migrate()
        results, states = {}, {}
        for day, settings in RUN_SETTINGS.items():
            with pytest.MonkeyPatch.context() as env:  # the DAG's tasks inherit the test's environment
                for name, value in settings.items():
                    env.setenv(name, value)
                results[day] = setup.test_dag_run(f"{day}T23:00:00+07:00", {"business_date": day.isoformat()})
            states[day] = task_states(metadata, day)
        yield {"results": results, "states": states, "warehouse": warehouse, "mail": mail, "setup": setup,
               "home": home, "portal": portal, "schedule": schedule}


def task_states(metadata_url: str, day: date) -> dict[str, tuple[str, int]]:
    """task id -> (state, try number) in the latest run of ``day``."""
    rows = query(metadata_url.replace("+psycopg2", ""), """
        select ti.task_id, ti.state, ti.try_number from task_instance ti
        join dag_run dr on dr.run_id = ti.run_id and dr.dag_id = ti.dag_id
        where dr.dag_id = 'chiso_daily' and dr.conf::jsonb ->> 'business_date' = %s""", (day.isoformat(),))
    return {task_id: (state, tries) for task_id, state, tries in rows}


def output(runs, day) -> str:
    result = runs["results"][day]
    return result.stdout + result.stderr


def served_manifest(runs, entity: str, day: date) -> dict:
    """The rows' manifest of the day as the faulty portal serves it (row faults included)."""
    return runs["portal"].manifest(entity, day, runs["schedule"].plan_for(entity, day))


def ledger(runs, day: date) -> dict[str, tuple]:
    return {entity: tuple(rest) for entity, *rest in query(runs["warehouse"], """
        select entity, rows_in_manifest, rows_loaded, rows_quarantined, checksum from raw.load_ledger
        where business_date = %s and status = 'loaded'""", (day,))}


def assert_accounted_for(runs, day: date, entities) -> dict[str, tuple]:
    """Every entity's load of the day matches what the portal served, row for row: the ledger's
    manifest and checksum are the served ones, loaded + quarantined = manifest, and raw and the
    quarantine hold exactly the rows the ledger counts."""
    url, loads = runs["warehouse"], ledger(runs, day)
    assert set(loads) == set(entities)
    for entity in entities:
        in_manifest, loaded, quarantined, checksum = loads[entity]
        manifest = served_manifest(runs, entity, day)
        assert (in_manifest, checksum) == (manifest["row_count"], manifest["sha256"]), entity
        assert loaded + quarantined == in_manifest, entity
        raw_table = ENTITIES[entity].raw_table
        assert query(url, f"select count(*) from raw.{raw_table} where business_date = %s", (day,)) == [(loaded,)]
        assert query(url, "select count(*) from raw.quarantine where entity = %s and business_date = %s",
                     (entity, day)) == [(quarantined,)], entity
    return loads


def mails_for(runs, day: date):
    return [m for m in runs["mail"].messages() if day.strftime("%d/%m/%Y") in str(m["Subject"])]


def retry_logs(text: str, entity: str) -> list[tuple[str, float]]:
    """(causes, seconds) of every 'answered after N retries' line fetch logged for ``entity``."""
    pattern = rf"GET \S+/api/v1/{entity}/\S+ answered after \d+ retr(?:y|ies) \(([^)]*)\), ([0-9.]+) s in all"
    return [(causes, float(seconds)) for causes, seconds in re.findall(pattern, text)]


# ------------------------------------------------------------------- a day that survives its faults


def test_a_day_with_survivable_faults_is_loaded_accounted_for_and_published(runs):
    result = runs["results"][SURVIVABLE_DAY]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    loads = assert_accounted_for(runs, SURVIVABLE_DAY, ENTITIES)
    url = runs["warehouse"]
    # Only the malformed dates were quarantined.
    assert loads["dossiers"][2] > 0 and sum(load[2] for load in loads.values()) == loads["dossiers"][2]
    reasons = [r for (r,) in query(url, "select reason from raw.quarantine where business_date = %s", (SURVIVABLE_DAY,))]
    assert reasons and all("is not a yyyyMMddHHmmss date" in r for r in reasons)
    # Duplicated rows reached raw, but staging holds one row per dossier (its dbt test passed).
    (raw_rows, distinct), = query(url, "select count(*), count(distinct record->>'MaHoSo') from raw.portal__dossiers")
    assert raw_rows > distinct
    # Decomposed text was stored composed.
    assert query(url, "select count(*) from raw.portal__dossiers where record::text <> normalize(record::text, NFC)") \
        == [(0,)]
    # An update delivered before its creation did not win over it: staging keeps the latest version.
    assert query(url, """
        select count(*) from staging.stg_portal__dossiers as s
        join (select record->>'MaHoSo' as code, max(record->>'NgayCapNhat') as last_change
              from raw.portal__dossiers group by 1) as r on r.code = s.dossier_code
        where to_char(s.updated_at, 'YYYYMMDDHH24MISS') <> r.last_change""") == [(0,)]
    assert [m for m in runs["mail"].messages() if "14/11/2024" in str(m["Subject"])]
    assert query(url, "select count(*) from ops.publications where business_date = %s", (SURVIVABLE_DAY,)) == [(1,)]


def test_warnings_do_not_block_the_day_is_published_with_a_notice(runs):
    # The quarantined dates (3%) and the duplicated rows are warn-level failures of the raw gate: the day
    # is published, the reporting schema says with which warnings, and the engineers get a notice.
    url = runs["warehouse"]
    (published_day, warnings), = query(url, "select business_date, warnings from reporting.publication_status")
    assert published_day == SURVIVABLE_DAY
    assert {w["name"] for w in warnings} == {"quarantined_share_under_1_percent", "no_duplicate_dossier_versions"}
    assert all(w["severity"] == "warn" for w in warnings)
    notices = [m for m in runs["mail"].messages() if str(m["Subject"]).startswith("[chiso notice]")]
    assert [(str(m["To"]), str(m["Subject"])) for m in notices] == [
        (ENGINEER, f"[chiso notice] chiso_daily {SURVIVABLE_DAY}: published with 2 warning(s)")]
    assert runs["states"][SURVIVABLE_DAY]["raw_gate"] == ("success", 1)


def test_the_day_came_as_whole_day_files(runs):
    landed = sorted((runs["home"] / "landing" / "portal").glob(f"*/business_date={SURVIVABLE_DAY}/sha256=*"))
    assert {path.parent.parent.name for path in landed} == set(ENTITIES)
    for path in landed:
        assert sorted(p.name for p in path.iterdir()) == ["day.ndjson.gz", "file-manifest.json", "manifest.json"]
        assert json.loads((path / "manifest.json").read_text())["transfer"] == "files"
    assert query(runs["warehouse"], "select distinct source_file from raw.portal__dossiers where business_date = %s",
                 (SURVIVABLE_DAY,)) == [("day.ndjson.gz",)]


def test_throttling_is_waited_out_as_the_portal_asks(runs):
    throttled = retry_logs(output(runs, SURVIVABLE_DAY), "units")
    assert len(throttled) == 2  # the file's manifest and the file, each answered 429 once
    assert all(causes == "HTTP 429" and seconds >= 1.0 for causes, seconds in throttled), throttled


def test_slow_answers_and_read_timeouts_are_retried_and_then_succeed(runs):
    timed_out = retry_logs(output(runs, SURVIVABLE_DAY), "process_log")
    assert len(timed_out) == 2 and all(causes == "ReadTimeoutError" for causes, _ in timed_out), timed_out
    assert all(seconds >= READ_TIMEOUT for _, seconds in timed_out)
    assert runs["states"][SURVIVABLE_DAY]["fetch_process_log"] == ("success", 1)  # urllib3 retried, not Airflow


def test_an_extra_column_loads_when_the_setting_allows_it(runs):
    (in_manifest, loaded, quarantined, _) = ledger(runs, SURVIVABLE_DAY)["ratings"]
    assert loaded == in_manifest > 0 and quarantined == 0
    assert query(runs["warehouse"], "select count(*), count(*) filter (where record->>'GhiChuNoiBo' = 'ghi chú') "
                 "from raw.portal__ratings where business_date = %s", (SURVIVABLE_DAY,)) == [(loaded, loaded)]
    assert "keeping columns the contract does not know: GhiChuNoiBo" in output(runs, SURVIVABLE_DAY)


def test_an_empty_day_of_an_entity_that_may_be_empty_loads_nothing_and_the_day_publishes(runs):
    assert served_manifest(runs, "feedback", SURVIVABLE_DAY)["row_count"] == 0
    assert runs["portal"].manifest("feedback", SURVIVABLE_DAY)["row_count"] > 0  # the fault emptied it
    assert ledger(runs, SURVIVABLE_DAY)["feedback"][:3] == (0, 0, 0)


# ------------------------------------------------------------------- a day its faults stop


def test_a_broken_day_stops_each_broken_entity_naming_its_fault_and_publishes_nothing(runs):
    result = runs["results"][BROKEN_DAY]
    assert result.returncode != 0
    text = output(runs, BROKEN_DAY)
    assert "dossiers: the extract has columns the contract does not know: TrangThai" in text
    assert "ratings: the extract has columns the contract does not know: GhiChuNoiBo" in text
    # The entities without faults loaded, from their whole-day files; the broken ones left nothing.
    assert_accounted_for(runs, BROKEN_DAY, set(ENTITIES) - BROKEN_ENTITIES)
    url = runs["warehouse"]
    assert query(url, "select count(*) from raw.load_ledger where business_date = %s and entity = any(%s)",
                 (BROKEN_DAY, sorted(BROKEN_ENTITIES))) == [(0,)]
    states = runs["states"][BROKEN_DAY]
    assert states["load_dossiers"] == states["load_ratings"] == ("failed", 1), "a contract breach is not retried"
    assert states["raw_gate"][0] == states["dbt_build"][0] == "upstream_failed"
    assert query(url, "select count(*) from ops.publications where business_date = %s", (BROKEN_DAY,)) == [(0,)]
    assert not mails_for(runs, BROKEN_DAY)
    # Each task that failed for good alerted the data engineers, naming the day and the problem.
    alerts = {str(m["Subject"]): m.get_body(("html",)).get_content() for m in runs["mail"].messages()
              if f"[chiso ALERT] chiso_daily {BROKEN_DAY}" in str(m["Subject"])}
    assert set(alerts) == {f"[chiso ALERT] chiso_daily {BROKEN_DAY}: {task} failed"
                           for task in ("load_dossiers", "load_ratings", "fetch_process_log")}
    assert "the extract has columns the contract does not know: TrangThai" in \
        alerts[f"[chiso ALERT] chiso_daily {BROKEN_DAY}: load_dossiers failed"]


def test_a_truncated_file_is_fetched_again_then_fails_naming_its_url(runs):
    text = output(runs, BROKEN_DAY)
    url = f"{runs['setup'].portal_url}/api/v1/process_log/files/{BROKEN_DAY}.ndjson.gz"
    refused = re.findall(rf"GET {re.escape(url)} gave \d+ bytes with sha256 \w+; its manifest says \d+ bytes "
                         rf"with sha256 \w+ \(truncated or corrupted, 2 downloads\)", text)
    assert refused, text[-3000:]
    state, tries = runs["states"][BROKEN_DAY]["fetch_process_log"]
    assert state == "failed" and tries > 1, "a transfer fault is retried by the task too"
    assert not list((runs["home"] / "landing" / "portal" / "process_log").glob(f"business_date={BROKEN_DAY}"))


# ------------------------------------------------------------------- an empty day


def test_an_empty_dossiers_day_loads_zero_rows_and_the_gate_says_so_instead_of_publishing(runs):
    result = runs["results"][EMPTY_DAY]
    assert result.returncode != 0
    loads = assert_accounted_for(runs, EMPTY_DAY, ENTITIES)
    assert loads["dossiers"][:3] == (0, 0, 0)
    assert f"The extract of {EMPTY_DAY} has no rows of dossiers (dossiers: 0 in the manifest, 0 loaded)" \
        in output(runs, EMPTY_DAY)
    states = runs["states"][EMPTY_DAY]
    assert states["raw_gate"] == ("failed", 1)
    assert states["dbt_build"][0] == states["send_report"][0] == "upstream_failed"
    assert query(runs["warehouse"], "select count(*) from ops.publications where business_date = %s",
                 (EMPTY_DAY,)) == [(0,)]
    assert not mails_for(runs, EMPTY_DAY)


def test_windows_1258_extracts_load_to_the_same_nfc_bytes_as_clean_utf8(runs):
    url = runs["warehouse"]
    for entity, vietnamese in (("units", "Đắk Lắk"), ("procedures", "Đăng ký khai sinh")):
        landed = next((runs["home"] / "landing" / "portal" / entity).glob(f"business_date={EMPTY_DAY}/sha256=*"))
        sent = b"".join(p.read_bytes() for p in sorted(landed.glob("page-*.json")))
        with pytest.raises(UnicodeDecodeError):
            sent.decode("utf-8")  # the portal really sent Windows-1258
        clean = sorted(canonical_line(row) for row in runs["portal"].rows(entity, EMPTY_DAY))
        stored = sorted(canonical_line(record) for (record,) in query(
            url, f"select record from raw.{ENTITIES[entity].raw_table} where business_date = %s", (EMPTY_DAY,)))
        assert stored == clean and any(vietnamese.encode() in line for line in stored), entity
        assert query(url, f"select count(*) from raw.{ENTITIES[entity].raw_table} "
                          f"where record::text <> normalize(record::text, NFC)") == [(0,)]
