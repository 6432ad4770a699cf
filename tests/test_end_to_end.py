"""End to end: real Airflow DAG runs against the portal simulator, real Postgres, dbt, GX and SMTP.

The tests of this module share one stack and run in file order: two business days, a re-run, a
corrupted mart, and the recovery after it. Expected figures are computed here, independently of the
pipeline, from the extract payload the portal served.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import psycopg
import pytest
import requests

from chiso.orchestration.airflow_env import AirflowSetup
from chiso.contract import ENTITIES
from chiso.dev.mailcatcher import MailCatcher
from chiso.simulator.scenarios import get_scenario
from chiso.simulator.server import PortalSimulator, RunningSimulator

TOKEN = "e2e-token"
DAY_1 = date(2024, 11, 14)  # run as the scheduler would: logical date = the next morning, no conf
DAY_2 = date(2024, 11, 15)  # run manually, the day named in conf
DAY_3 = date(2024, 11, 16)  # its mart gets corrupted before the gate
SCOPED_UNIT = "000.37.27.H15"  # Ea Ktur
RECIPIENTS = f"""
recipients:
  - email: huyen@cukuin.example.vn
    name: UBND huyện Cư Kuin
    scope: all
  - email: chutich@eaktur.example.vn
    name: Chủ tịch UBND xã Ea Ktur
    scope: {SCOPED_UNIT}
data_engineering:
  - email: dulieu@chiso.example.vn
    name: Nhóm kỹ thuật dữ liệu
"""
ENGINEER = "dulieu@chiso.example.vn"
PERSONAL_FIELDS = ("ChuHoSo", "SoGiayToChuHoSo", "SoDienThoai", "Email", "DiaChiChuHoSo")
# Append-only histories that grow on every run by design: gate runs and validation results, publications,
# and the engine's log of complete builds (docs/engine-incremental.md); and the published day's timestamp.
AUDIT_TABLES = {"ops.gate_runs", "intermediate.int_engine_watermarks", "ops.validation_results",
                "ops.reporting_publications", "reporting.publication_status",
                # The engine's per-build scratch: what the latest build found changed and reopened (empty on
                # a re-run that loads nothing), not data (docs/engine-incremental.md).
                "intermediate.int_engine_run", "intermediate.int_engine_changes",
                "intermediate.int_engine_reopened_periods", "intermediate.int_engine_previous_events",
                "intermediate.int_engine_previous_procedure_days", "intermediate.int_procedure_first_day_changes",
                "intermediate.int_indicator_delta_changes",
                "intermediate.int_engine_changed_periods", "intermediate.int_plan_metric_previous_events",
                "intermediate.int_plan_procedure_first_day_changes", "intermediate.int_plan_metric_delta_changes",
                "intermediate.int_plan_metric_changed_periods", "intermediate.int_engine_previous_dossiers",
                "intermediate.int_dossier_indicator_event_changes", "intermediate.int_day_on_time_changed_days",
                # The pipeline-health view's table counts those runs and publications (docs/bi.md).
                "marts.pipeline_health", "reporting.pipeline_health"}
GATE_LAYERS = 3  # raw, staging, marts: one ops.gate_runs row each per run


# ---------------------------------------------------------------- the stack


@pytest.fixture(scope="module")
def stack(make_database, tmp_path_factory):
    home = tmp_path_factory.mktemp("chiso-home")
    recipients = home / "recipients.yml"
    recipients.write_text(RECIPIENTS, encoding="utf-8")
    warehouse = make_database("chiso_e2e_wh")
    metadata = make_database("chiso_e2e_af").replace("postgresql://", "postgresql+psycopg2://")
    with RunningSimulator(PortalSimulator(2024, get_scenario("cu_kuin_2024")), TOKEN) as simulator, \
            MailCatcher(home / "mail") as mail:
        setup = AirflowSetup(home=home / "airflow", metadata_url=metadata, warehouse_url=warehouse,
                             portal_url=simulator.url, portal_token=TOKEN, smtp_host=mail.host,
                             smtp_port=mail.port, pseudonym_key="e2e-secret-key", chiso_home=home,
                             recipients_file=recipients, retry_delay_seconds=1)
        setup.migrate()
        yield {"setup": setup, "mail": mail, "simulator": simulator, "warehouse": warehouse,
               "metadata": metadata.replace("+psycopg2", "")}


def run_day(stack, logical_date: str, business_date: date | None = None, **kwargs):
    conf = {"business_date": business_date.isoformat()} if business_date else None
    return stack["setup"].test_dag_run(logical_date, conf, **kwargs)


def assert_succeeded(result):
    assert result.returncode == 0, f"DAG run failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"


@pytest.fixture(scope="module")
def two_days(stack):
    assert_succeeded(run_day(stack, "2024-11-15T06:00:00+07:00"))  # business date derived: DAY_1
    assert_succeeded(run_day(stack, "2024-11-20T10:00:00+07:00", DAY_2))
    return stack


# ------------------------------------------------- the test's own calculation


def served_rows(stack, entity: str, day: date) -> list[dict]:
    """The day's rows as the portal serves them, read with plain HTTP calls."""
    rows, page, pages = [], 1, 1
    while page <= pages:
        body = requests.get(f"{stack['simulator'].url}/api/v1/{entity}",
                            params={"ngay": day.isoformat(), "page": page, "page_size": 1000},
                            headers={"X-Api-Token": TOKEN}, timeout=30).json()
        rows += body["items"]
        pages = body["total_pages"]
        page += 1
    return rows


def served_manifest(stack, entity: str, day: date) -> dict:
    return requests.get(f"{stack['simulator'].url}/api/v1/{entity}/manifest", params={"ngay": day.isoformat()},
                        headers={"X-Api-Token": TOKEN}, timeout=30).json()


def _moment(text):
    return datetime.strptime(text, "%Y%m%d%H%M%S") if text else None


def _rate(numerator, denominator):
    if denominator == 0:
        return None
    return (Decimal(100 * numerator) / Decimal(denominator)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def with_day_on_time(stack, expected: dict) -> dict:
    """The day table's DAY_ON_TIME (seed report_day_measures) from marts.mart_day_on_time, which
    tests/test_reports.py checks against a calculation from the dossiers; the e-mail must show the mart's."""
    rows = query(stack["warehouse"], "select business_date, unit_code, numerator, denominator, rate "
                                     "from marts.mart_day_on_time")
    return {**expected, **{(day, "day", unit, "DAY_ON_TIME"): (numerator, denominator, rate)
                           for day, unit, numerator, denominator, rate in rows}}


def expected_values(stack, days: list[date]) -> dict[tuple[date, str, str, str], tuple[int, int, Decimal | None]]:
    """(day, period, unit, indicator) -> (numerator, denominator, rate), from the payload alone.

    Latest version of each dossier wins (later extract, then later line). ON_TIME: dossiers received on
    the day; on time if ended by the due date (the supplement's new due date if any; more than one
    supplement is late), or still open at the day's end with that date not yet passed.
    ONLINE_DOSSIER_SHARE: dossiers received on the day, online (channel 2).
    """
    latest = {}
    for day in sorted(days):
        for row in served_rows(stack, "dossiers", day):
            latest[row["MaHoSo"]] = row
    dossiers = []
    for row in latest.values():
        if row["TrangThaiHoSo"] in (1, 3):
            continue
        ends = [_moment(row.get(f)) for f in ("NgayKetThucXuLy", "NgayTra", "NgayTuChoi") if row.get(f)]
        supplements = row.get("DanhSachHoSoBoSung") or []
        new_dues = [_moment(s["NgayHenTraMoi"]) for s in supplements if s.get("NgayHenTraMoi")]
        dossiers.append({"unit": row["MaDonViTiepNhan"], "received": _moment(row["NgayTiepNhan"]),
                         "due": max(new_dues) if new_dues else _moment(row["NgayHenTra"]),
                         "supplements": len(supplements), "end": min(ends) if ends else None,
                         "online": row.get("KenhThucHien") == 2})
    catalogue = served_rows(stack, "units", days[-1])
    values = {}
    for day in days:
        day_end = datetime.combine(day + timedelta(days=1), datetime.min.time())
        stamp = day.strftime("%Y%m%d")
        # Units scored on their own dossiers that exist on the day: departments, districts, communes.
        units = [u["MaDonVi"] for u in catalogue if u["LoaiDonVi"] in ("AGENCY", "DISTRICT", "COMMUNE")
                 and u["HieuLucTu"][:8] <= stamp and (u["HieuLucDen"] is None or u["HieuLucDen"][:8] >= stamp)]
        for unit in units:
            mine = [d for d in dossiers if d["unit"] == unit]
            # The day, and the month to date (the dossiers of the month the two extracts carried).
            for period, first in (("day", day), ("month", day.replace(day=1))):
                population = [d for d in mine if first <= d["received"].date() <= day]
                on_time = sum(1 for d in population if d["supplements"] <= 1 and d["due"] is not None
                              and ((d["end"] is not None and d["end"] <= d["due"]) or d["due"] >= day_end))
                values[(day, period, unit, "ON_TIME")] = (on_time, len(population), _rate(on_time, len(population)))
                online = sum(1 for d in population if d["online"])
                values[(day, period, unit, "ONLINE_DOSSIER_SHARE")] = (online, len(population),
                                                                     _rate(online, len(population)))
    return values


# ------------------------------------------------------------- helpers


def query(url, sql, params=None):
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def warehouse_tables(url, kinds=("r", "p")) -> list[str]:
    """Tables (a partitioned table once, as its parent: its partitions' rows are its rows) and, on request,
    views."""
    rows = query(url, """
        select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where c.relkind = any(%s) and not c.relispartition
          and n.nspname not in ('pg_catalog', 'information_schema')
          and n.nspname not like 'pg_toast%%' order by 1""", (list(kinds),))
    return [name for (name,) in rows]


def table_fingerprints(url) -> dict[str, str]:
    fingerprints = {}
    for table in warehouse_tables(url):
        rows = query(url, f"select t::text from {table} as t")
        fingerprints[table] = hashlib.sha256("\n".join(sorted(r[0] for r in rows)).encode()).hexdigest()
    return fingerprints


def messages_for(stack, day: date):
    stamp = day.strftime("%d/%m/%Y")
    return [m for m in stack["mail"].messages() if stamp in str(m["Subject"])]


CELL = re.compile(r'data-indicator="(?P<code>[A-Z_]+)">\s*<strong>(?P<rate>[^<]+)</strong><br>\s*'
                  r'<span[^>]*>(?P<num>\d+)/(?P<den>\d+)</span>')


def figures_in(message) -> dict[tuple[str, str], tuple[int, int, str]]:
    html = message.get_body(("html",)).get_content()
    figures = {}
    for chunk in html.split('data-unit="')[1:]:
        unit = chunk.split('"', 1)[0]
        for cell in CELL.finditer(chunk):
            figures[(unit, cell["code"])] = (int(cell["num"]), int(cell["den"]), cell["rate"])
    return figures


def vietnamese_rate(rate: Decimal | None) -> str:
    return "—" if rate is None else f"{rate:.2f}".replace(".", ",")


def task_states(stack, business_date_conf: str | None = None) -> dict[str, str]:
    rows = query(stack["metadata"], """
        select ti.task_id, ti.state from task_instance ti
        join dag_run dr on dr.run_id = ti.run_id and dr.dag_id = ti.dag_id
        where dr.dag_id = 'chiso_daily' order by dr.id desc, ti.task_id""")
    latest = {}
    for task_id, state in rows:
        latest.setdefault(task_id, state)
    return latest


# ---------------------------------------------------------------- tests


def test_raw_row_counts_equal_the_manifests(two_days):
    for day in (DAY_1, DAY_2):
        for entity in ENTITIES:  # all 8 of the contract; some are empty on a given day
            manifest = served_manifest(two_days, entity, day)
            (loaded,) = query(two_days["warehouse"], f"select count(*) from raw.portal__{entity} "
                                                     "where business_date = %s", (day,))[0]
            ledger = query(two_days["warehouse"], "select rows_in_manifest, rows_loaded, rows_quarantined, checksum "
                           "from raw.load_ledger where entity = %s and business_date = %s and status = 'loaded'",
                           (entity, day))
            assert ledger == [(manifest["row_count"], loaded, 0, manifest["sha256"])]
            assert loaded == manifest["row_count"]
            assert loaded > 0 or entity not in ("units", "procedures", "dossiers", "process_log")


def test_every_indicator_value_equals_the_independent_calculation(two_days):
    expected = expected_values(two_days, [DAY_1, DAY_2])
    actual = {(d, p, u, c): (n, m, r) for d, p, u, c, n, m, r in query(
        two_days["warehouse"],
        "select business_date, period_type, unit_code, indicator_code, numerator, denominator, rate "
        "from marts.fct_indicator_values join marts.dim_units using (unit_code) "
        "where period_type in ('day', 'month') and indicator_code in ('ON_TIME', 'ONLINE_DOSSIER_SHARE') "
        "and is_evaluated")}
    assert actual == expected
    # The data is not degenerate: the online share varies, and some dossiers of the month are late.
    assert len({v[2] for k, v in expected.items() if k[3] == "ONLINE_DOSSIER_SHARE"}) > 3
    assert any(v[0] < v[1] for k, v in expected.items() if k[3] == "ON_TIME" and k[1] == "month")


def test_one_email_per_recipient_per_day_with_the_figures(two_days):
    calculated = expected_values(two_days, [DAY_1, DAY_2])
    expected = with_day_on_time(two_days, calculated)
    for day in (DAY_1, DAY_2):
        messages = messages_for(two_days, day)
        assert sorted(str(m["To"]) for m in messages) == ["chutich@eaktur.example.vn", "huyen@cukuin.example.vn"]
        for message in messages:
            assert "Báo cáo chỉ số phục vụ người dân, doanh nghiệp ngày" in str(message["Subject"])
            html = message.get_body(("html",)).get_content()
            assert "Tỷ lệ hồ sơ đúng hạn trong ngày" in html and "Tỷ lệ hồ sơ trực tuyến" in html
            figures = figures_in(message)
            scope = {SCOPED_UNIT} if str(message["To"]).startswith("chutich") else \
                {unit for (d, _, unit, _) in calculated if d == day}
            assert {unit for unit, _ in figures} == scope
            for (unit, code), (numerator, denominator, rate_text) in figures.items():
                exp_num, exp_den, exp_rate = expected[(day, "day", unit, code)]
                assert (numerator, denominator, rate_text) == (exp_num, exp_den, vietnamese_rate(exp_rate))
    published = query(two_days["warehouse"], "select business_date, recipients from ops.publications order by 1")
    assert published == [(DAY_1, 2), (DAY_2, 2)]


def test_no_personal_data_in_clear_anywhere_in_the_warehouse(two_days):
    clear = {row[field] for day in (DAY_1, DAY_2) for row in served_rows(two_days, "dossiers", day)
             for field in PERSONAL_FIELDS if row.get(field)}
    # Officials handling dossiers (NguoiXuLy) are not applicants and are kept as the contract sends them
    # (who did what, docs/targets.md): an applicant who shares an official's name is not found through it.
    officials = {row["NguoiXuLy"] for day in (DAY_1, DAY_2) for row in served_rows(two_days, "process_log", day)
                 if row.get("NguoiXuLy")}
    assert officials and len(clear - officials) > 500
    clear -= officials
    for relation in warehouse_tables(two_days["warehouse"], kinds=("r", "p", "v", "m")):
        text = "\n".join(r[0] for r in query(two_days["warehouse"], f"select t::text from {relation} as t"))
        leaked = [value for value in clear if value in text]
        assert not leaked, f"{relation} holds personal data in clear, e.g. {leaked[:3]}"


def test_running_a_day_again_changes_no_row_and_sends_nothing(two_days):
    before = table_fingerprints(two_days["warehouse"])
    mails_before = len(two_days["mail"].messages())
    gate_runs_before = query(two_days["warehouse"], "select count(*) from ops.gate_runs")[0][0]

    assert_succeeded(run_day(two_days, "2024-11-20T10:00:00+07:00", DAY_2))

    after = table_fingerprints(two_days["warehouse"])
    changed = sorted(t for t in before.keys() | after.keys()
                     if before.get(t) != after.get(t) and t not in AUDIT_TABLES)
    assert changed == []
    assert {"raw.portal__dossiers", "marts.fct_indicator_values", "ops.report_deliveries"} <= before.keys()
    assert len(two_days["mail"].messages()) == mails_before
    assert query(two_days["warehouse"], "select count(*) from ops.gate_runs")[0][0] == gate_runs_before + GATE_LAYERS


def test_a_corrupted_mart_stops_the_email(two_days):
    stack = two_days
    # Load and build DAY_3 without publishing, then corrupt its mart rows behind the pipeline's back.
    assert_succeeded(run_day(stack, "2024-11-20T11:00:00+07:00", DAY_3,
                             mark_success_pattern="^(quality_gate|publish_reporting|send_report|record_publication)$"))
    query_count = "select count(*) from marts.fct_indicator_values where business_date = %s"
    assert query(stack["warehouse"], query_count, (DAY_3,))[0][0] > 0
    with psycopg.connect(stack["warehouse"]) as conn:
        conn.execute("update marts.fct_indicator_values set numerator = denominator + 5, rate = 130 "
                     "where business_date = %s and unit_code = %s and indicator_code = 'ONLINE_DOSSIER_SHARE'",
                     (DAY_3, SCOPED_UNIT))

    result = run_day(stack, "2024-11-20T11:00:00+07:00", DAY_3, mark_success_pattern="^(fetch|land|load)_|^dbt_build$")

    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "expect_column_values_to_be_between on column rate" in output
    assert "expect_column_pair_values_a_to_be_greater_than_b" in output
    states = task_states(stack)
    assert states["raw_gate"] == "success"
    assert states["quality_gate"] == "failed"
    assert states["publish_reporting"] == states["send_report"] == "upstream_failed"
    assert messages_for(stack, DAY_3) == []
    # BI users still see the last good day, complete; the BI role never sees the marts dbt writes.
    assert query(stack["warehouse"], "select business_date from reporting.publication_status") == [(DAY_2,)]
    assert query(stack["warehouse"], "select count(*) from reporting.fct_indicator_values where business_date = %s",
                 (DAY_3,)) == [(0,)]
    assert query(stack["warehouse"], "select has_schema_privilege('chiso_bi', 'marts', 'usage'), "
                                     "has_schema_privilege('chiso_bi', 'reporting', 'usage')") == [(False, True)]
    # The data engineers got one alert naming the DAG, the day, the failed expectations with sample values
    # and the Data Docs page of the failing validation; the report recipients got nothing.
    alerts = [m for m in stack["mail"].messages() if "[chiso ALERT]" in str(m["Subject"])]
    assert [(str(m["To"]), str(m["Subject"])) for m in alerts] == [
        (ENGINEER, f"[chiso ALERT] chiso_daily {DAY_3}: quality_gate failed")]
    body = alerts[0].get_body(("html",)).get_content()
    assert "DAG: chiso_daily" in body and f"Business date: {DAY_3}" in body
    assert "[block] marts.fct_indicator_values: rate_0_to_100" in body and "130" in body
    assert "numerator_at_most_denominator" in body
    pages = re.findall(r"(/\S+/validations/marts/fct_indicator_values/\S+\.html)", body)
    assert pages and all(Path(page).is_file() for page in pages), body
    assert query(stack["warehouse"], "select count(*) from ops.publications where business_date = %s", (DAY_3,)) == [(0,)]
    (success, failures), = query(stack["warehouse"], "select success, failed_expectations from ops.gate_runs "
                                 "where business_date = %s order by gate_run_id desc limit 1", (DAY_3,))
    assert success is False and {f["column"] for f in failures} == {"rate", "denominator, numerator"}


def test_after_the_data_is_fixed_the_day_publishes(two_days):
    # A full re-run rebuilds the mart from raw data, which was never corrupted.
    def alerts():
        return [str(m["Subject"]) for m in two_days["mail"].messages() if "[chiso ALERT]" in str(m["Subject"])]

    alerts_before = alerts()
    assert_succeeded(run_day(two_days, "2024-11-20T11:00:00+07:00", DAY_3))
    assert len(messages_for(two_days, DAY_3)) == 2
    assert query(two_days["warehouse"], "select business_date from reporting.publication_status") == [(DAY_3,)]
    assert query(two_days["warehouse"], "select count(*) > 0 from reporting.fct_unit_scores where business_date = %s",
                 (DAY_3,)) == [(True,)]
    assert alerts() == alerts_before  # a run that publishes alerts nobody
    expected = with_day_on_time(two_days, expected_values(two_days, [DAY_1, DAY_2, DAY_3]))
    for message in messages_for(two_days, DAY_3):
        for (unit, code), (numerator, denominator, _) in figures_in(message).items():
            assert (numerator, denominator) == expected[(DAY_3, "day", unit, code)][:2]
