"""The simulator's faults, played through the real daily DAG: what the pipeline survives, what it
quarantines, and what stops it with a message that names the problem."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest

from chiso.airflow_env import AirflowSetup
from chiso.mailcatcher import MailCatcher
from chiso.simulator.faults import FaultSchedule
from chiso.simulator.scenarios import get_scenario
from chiso.simulator.server import PortalSimulator, RunningSimulator

TOKEN = "fault-token"
SURVIVABLE_DAY = date(2024, 11, 14)
BROKEN_DAY = date(2024, 11, 15)
FAULTS = (f"{SURVIVABLE_DAY}/dossiers=http_503:attempts=2,duplicate_rows:rate=0.05,malformed_dates:rate=0.03,"
          f"nfd_text,update_before_create:rate=0.05;"
          f"{BROKEN_DAY}/dossiers=renamed_column")


def query(url, sql, params=None):
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def runs(make_database, tmp_path_factory):
    home = tmp_path_factory.mktemp("chiso-faults")
    recipients = home / "recipients.yml"
    recipients.write_text("recipients:\n  - {email: huyen@cukuin.example.vn, name: UBND huyện Cư Kuin}\n",
                          encoding="utf-8")
    warehouse = make_database("chiso_faults_wh")
    metadata = make_database("chiso_faults_af").replace("postgresql://", "postgresql+psycopg2://")
    portal = PortalSimulator(2024, get_scenario("cu_kuin_2024"), FaultSchedule.parse(FAULTS))
    with RunningSimulator(portal, TOKEN) as simulator, MailCatcher(home / "mail") as mail:
        setup = AirflowSetup(home=home / "airflow", metadata_url=metadata, warehouse_url=warehouse,
                             portal_url=simulator.url, portal_token=TOKEN, smtp_host=mail.host, smtp_port=mail.port,
                             pseudonym_key="fault-key", chiso_home=home, recipients_file=recipients,
                             retry_delay_seconds=1)
        setup.migrate()
        results = {day: setup.test_dag_run(f"{day}T23:00:00+07:00", {"business_date": day.isoformat()})
                   for day in (SURVIVABLE_DAY, BROKEN_DAY)}
        yield {"results": results, "warehouse": warehouse, "mail": mail}


def test_a_day_with_survivable_faults_is_loaded_accounted_for_and_published(runs):
    result = runs["results"][SURVIVABLE_DAY]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    url = runs["warehouse"]
    (manifest, loaded, quarantined), = query(url, """
        select rows_in_manifest, rows_loaded, rows_quarantined from raw.load_ledger
        where entity = 'dossiers' and business_date = %s and status = 'loaded'""", (SURVIVABLE_DAY,))
    assert loaded + quarantined == manifest and quarantined > 0
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


def test_a_renamed_column_stops_the_day_with_its_name_and_publishes_nothing(runs):
    result = runs["results"][BROKEN_DAY]
    assert result.returncode != 0
    assert "the extract has columns the contract does not know: TrangThai" in result.stdout + result.stderr
    assert result.stdout.count("Task failed with exception") == 1, "a contract breach is not retried"
    url = runs["warehouse"]
    assert query(url, "select count(*) from raw.load_ledger where entity = 'dossiers' and business_date = %s",
                 (BROKEN_DAY,)) == [(0,)]
    assert query(url, "select count(*) from ops.publications where business_date = %s", (BROKEN_DAY,)) == [(0,)]
    assert not [m for m in runs["mail"].messages() if "15/11/2024" in str(m["Subject"])]
