"""The simulator's faults do what they claim, deterministically, without touching their input."""

from __future__ import annotations

import copy
import json
import threading
import unicodedata
from datetime import date, datetime

import pytest

from chiso.contract import canonical_line, sha256_of_rows
from chiso.contract.entities import DOSSIERS, PORTAL_DATETIME_FORMAT, UNITS
from chiso.core.settings import REPO_ROOT
from chiso.simulator.faults import (
    FAULTS,
    LEVELS,
    ActiveFault,
    AttemptCounter,
    FaultPlan,
    FaultSchedule,
    apply_byte_faults,
    apply_manifest_faults,
    apply_row_faults,
    describe_faults,
    encode_cp1258,
    http_fault_for,
)

DAY = date(2024, 11, 15)
VIETNAMESE = ("Đắk Lắk", "Nguyễn Thị Hương", "Ủy ban nhân dân xã Ea Ktur")
NAMES = ("Nguyễn Thị Hương", "Trần Văn Bình", "Lê Ngọc Ánh", "Phạm Đức Thắng", "H'Hen Niê", "Y Byă Êban")


def _dossier(i: int) -> dict:
    return {
        "MaHoSo": f"000.00.12.H21-241115-{i:04d}",
        "MaTTHC": "1.001193",
        "TenTTHC": "Đăng ký khai sinh",
        "MaDonViTiepNhan": "000.00.12.H21",
        "KenhThucHien": 1 + i % 3,
        "NgayTiepNhan": f"20241115{8 + i % 9:02d}{i % 60:02d}00",
        "NgayHenTra": "20241120170000",
        "NgayTra": None,
        "NgayCapNhat": f"20241115{9 + i % 9:02d}{i % 60:02d}00",
        "TrangThaiHoSo": 2 + i % 8,
        "ChuHoSo": NAMES[i % len(NAMES)],
        "DiaChiChuHoSo": "Xã Ea Ktur, huyện Cư Kuin, tỉnh Đắk Lắk",
        "LoaiDoiTuong": 1,
        "DanhSachLePhi": [{"MaPhiLePhi": "LP01", "TenPhiLePhi": "Lệ phí hộ tịch", "Gia": 8000}],
    }


ROWS = tuple(_dossier(i) for i in range(40))


def _apply(text: str, rows=ROWS, entity=DOSSIERS, day=DAY) -> list[dict]:
    return list(apply_row_faults(FaultPlan.parse(text), entity, day, rows))


def _is_portal_datetime(value) -> bool:
    try:
        datetime.strptime(value, PORTAL_DATETIME_FORMAT)
    except (TypeError, ValueError):
        return False
    return True


# ----------------------------------------------------------------------------- registry and parsing


def test_every_fault_has_a_level_and_a_one_line_description():
    assert len(FAULTS) == 18
    for spec in FAULTS.values():
        assert spec.level in LEVELS
        assert spec.description and "\n" not in spec.description and spec.description.isascii()


@pytest.mark.parametrize("name", [n for n, s in FAULTS.items() if s.level == "rows"])
def test_every_row_fault_changes_a_small_day(name):
    assert _apply(name, ROWS[:5]) != list(ROWS[:5])


def test_plan_text_round_trips_and_order_does_not_matter():
    plan = FaultPlan.parse("duplicate_rows:rate=0.05, http_429:attempts=3:retry_after=7,seed=11")
    assert [f.name for f in plan.faults] == ["http_429", "duplicate_rows"]
    assert plan.get("http_429")["attempts"] == 3 and plan.get("http_429")["retry_after"] == 7
    assert plan.seed == 11
    assert FaultPlan.parse(plan.to_text()) == plan
    assert FaultPlan.parse("http_429:retry_after=7:attempts=3,seed=11,duplicate_rows") == plan
    assert FaultPlan.parse("") == FaultPlan.parse("none") == FaultPlan.none()
    assert FaultPlan.none().to_text() == "none" and FaultPlan.none().is_empty


@pytest.mark.parametrize("text, named", [
    ("http_418", "'http_418'"),
    ("duplicate_rows:ratio=0.1", "'ratio'"),
    ("duplicate_rows:rate=1.5", "rate='1.5'"),
    ("duplicate_rows:rate=many", "rate='many'"),
    ("http_429:attempts=0", "attempts='0'"),
    ("slow:seconds=inf", "seconds='inf'"),
    ("truncated_file:fraction", "'fraction'"),
    ("seed=abc", "'seed=abc'"),
    ("slow,slow:seconds=1", "'slow'"),
    ("manifest_mismatch:what=everything", "what='everything'"),
])
def test_parse_errors_name_the_bad_token(text, named):
    with pytest.raises(ValueError) as raised:
        FaultPlan.parse(text)
    assert named in str(raised.value)


def test_faults_built_in_code_are_checked_too():
    assert ActiveFault("duplicate_rows", {"rate": 0.5}) == ActiveFault.parse("duplicate_rows:rate=0.5")
    with pytest.raises(ValueError, match="rate"):
        ActiveFault("duplicate_rows", {"rate": "0.5"})
    with pytest.raises(ValueError, match="'nope'"):
        ActiveFault("nope")


def test_schedule_combines_day_and_entity_entries_and_a_request_override_wins():
    schedule = FaultSchedule.parse(
        "*=slow:seconds=0.5;2024-11-15=http_503:attempts=2;2024-11-15/dossiers=http_503:attempts=4,"
        "duplicate_rows;units=empty_day")
    dossiers = schedule.plan_for("dossiers", DAY)
    assert {f.name for f in dossiers.faults} == {"slow", "http_503", "duplicate_rows"}
    assert dossiers.get("http_503")["attempts"] == 4  # the more specific entry wins
    assert {f.name for f in schedule.plan_for("units", DAY).faults} == {"slow", "http_503", "empty_day"}
    assert {f.name for f in schedule.plan_for("dossiers", date(2024, 11, 16)).faults} == {"slow"}
    assert schedule.plan_for("dossiers", DAY, "malformed_dates") == FaultPlan.parse("malformed_dates")
    assert schedule.plan_for("dossiers", DAY, "none").is_empty
    assert FaultSchedule.parse(schedule.to_text()) == schedule
    assert FaultSchedule.parse(None).plan_for("dossiers", DAY).is_empty


@pytest.mark.parametrize("text, named", [
    ("2024-11-31=slow", "'2024-11-31'"),
    ("2024-11-15/hoso=slow", "'hoso'"),
    ("2024-11-15", "'2024-11-15'"),
    ("2024-11-15=slow;2024-11-15=empty_day", "'2024-11-15'"),
    ("2024-11-15=slo", "'slo'"),
])
def test_schedule_errors_name_the_bad_token(text, named):
    with pytest.raises(ValueError) as raised:
        FaultSchedule.parse(text)
    assert named in str(raised.value)


# ----------------------------------------------------------------------------- row faults


def test_no_plan_passes_rows_through():
    assert _apply("none") == list(ROWS)


def test_duplicate_rows_adds_exact_copies_and_keeps_the_rest_in_order():
    out = _apply("duplicate_rows:rate=0.3")
    assert len(out) > len(ROWS)
    deduplicated, extras = [], []
    for row in out:
        (extras if deduplicated and row == deduplicated[-1] else deduplicated).append(row)
    assert deduplicated == list(ROWS)
    assert len(extras) == len(out) - len(ROWS)
    assert all(extra in ROWS for extra in extras)


def test_a_low_rate_still_hits_one_row_of_a_small_day():
    assert len(_apply("duplicate_rows:rate=0.001", ROWS[:3])) == 4


def test_update_before_create_sends_a_later_version_first():
    out = _apply("update_before_create:rate=0.2")
    assert len(out) > len(ROWS)
    seen: dict[str, dict] = {}
    out_of_order = []
    for row in out:
        earlier_seen = seen.get(row["MaHoSo"])
        if earlier_seen is not None and earlier_seen["NgayCapNhat"] > row["NgayCapNhat"]:
            out_of_order.append((earlier_seen, row))
        seen[row["MaHoSo"]] = row
    assert out_of_order, "some key arrives as a later version before its earlier one"
    for later, earlier in out_of_order:
        assert earlier in ROWS  # the earlier version is the original, untouched
        assert later["TrangThaiHoSo"] >= earlier["TrangThaiHoSo"]
        assert _is_portal_datetime(later["NgayCapNhat"])
        assert later["NgayCapNhat"][:8] == "20241115"  # still within the business day


def test_update_before_create_leaves_snapshots_alone():
    units = [{"MaDonVi": "000.00.12.H21", "TenDonVi": "UBND xã Ea Ktur", "LoaiDonVi": "COMMUNE",
              "HieuLucTu": "20240101000000"}]
    assert _apply("update_before_create:rate=1", units, UNITS) == units


def test_malformed_dates_break_the_portal_format():
    out = _apply("malformed_dates:rate=1")
    assert len(out) == len(ROWS)
    bad_values = set()
    for original, row in zip(ROWS, out):
        changed = [name for name in DOSSIERS.datetime_fields if row.get(name) != original.get(name)]
        assert len(changed) == 1
        assert not _is_portal_datetime(row[changed[0]])
        bad_values.add(row[changed[0]])
        assert {k: v for k, v in row.items() if k not in changed} == \
            {k: v for k, v in original.items() if k not in changed}
    assert "15/11/2024" in bad_values and "2024-13-45 25:61" in bad_values


def test_malformed_codes_leave_the_code_list():
    out = _apply("malformed_codes:rate=1")
    lists = DOSSIERS.code_lists
    for original, row in zip(ROWS, out):
        outside = [name for name in lists if name in row and row[name] not in lists[name]
                   and row[name] is not None]
        assert len(outside) == 1 and outside[0] != "TrangThaiHoSo"
        assert row["TrangThaiHoSo"] == original["TrangThaiHoSo"]
    malformed = [row[name] for row in out for name in lists if name in row and row[name] not in lists[name]
                 and row[name] is not None]
    assert any(isinstance(value, str) for value in malformed)  # "hai", or a code's label
    assert any(isinstance(value, int) for value in malformed)  # a number past the list


def test_unknown_status_is_off_the_status_list():
    out = _apply("unknown_status:rate=1")
    statuses = {row["TrangThaiHoSo"] for row in out}
    assert statuses == {0, 11}
    assert not statuses & DOSSIERS.code_lists["TrangThaiHoSo"]


def test_renamed_column_renames_in_every_row():
    out = _apply("renamed_column")
    for original, row in zip(ROWS, out):
        assert set(row) == set(original) - {"TrangThaiHoSo"} | {"TrangThai"}
        assert row["TrangThai"] == original["TrangThaiHoSo"]
    chosen = _apply("renamed_column:field=KenhThucHien:to=Kenh")
    assert all(set(row) == set(ROWS[0]) - {"KenhThucHien"} | {"Kenh"} for row in chosen)


def test_extra_column_adds_an_undeclared_field_to_every_row():
    out = _apply("extra_column")
    extra = set(out[0]) - set(ROWS[0])
    assert len(extra) == 1 and not extra & set(DOSSIERS.fields)
    assert all(set(row) == set(original) | extra for original, row in zip(ROWS, out))
    assert all(row["MaHoSoCu"] == "x" for row in _apply("extra_column:name=MaHoSoCu:value=x"))
    with pytest.raises(ValueError, match="ChuHoSo"):
        _apply("extra_column:name=ChuHoSo")


def test_nfd_text_changes_bytes_but_nfc_restores_them():
    out = _apply("nfd_text")
    assert [canonical_line(r) for r in out] != [canonical_line(r) for r in ROWS]
    assert out[0]["DanhSachLePhi"][0]["TenPhiLePhi"] != ROWS[0]["DanhSachLePhi"][0]["TenPhiLePhi"]
    restored = [json.loads(unicodedata.normalize("NFC", canonical_line(r).decode())) for r in out]
    assert restored == list(ROWS)


def test_empty_day_has_no_rows():
    assert _apply("empty_day") == []


def test_row_faults_never_modify_their_input():
    rows = copy.deepcopy(ROWS)
    every_row_fault = ",".join(f"{name}:rate=1" if spec.params and spec.params[0].name == "rate" else name
                               for name, spec in FAULTS.items() if spec.level == "rows" and name != "empty_day")
    out = list(apply_row_faults(FaultPlan.parse(every_row_fault), DOSSIERS, DAY, rows))
    assert len(out) > len(rows)
    assert rows == ROWS


def test_row_faults_are_deterministic_and_vary_with_seed_and_day():
    text = "duplicate_rows:rate=0.3,malformed_dates:rate=0.3,update_before_create:rate=0.3"
    assert _apply(text) == _apply(text)
    assert _apply(text) != _apply(text + ",seed=2")
    assert _apply(text) != _apply(text, day=date(2024, 11, 16))


def test_row_faults_stream_lazily():
    def rows_then_explode():
        yield from ROWS[:5]
        raise AssertionError("read past what was asked for")

    stream = apply_row_faults(FaultPlan.parse("duplicate_rows:rate=1,nfd_text"), DOSSIERS, DAY,
                              rows_then_explode())
    assert len([next(stream) for _ in range(4)]) == 4


# ----------------------------------------------------------------------------- byte and manifest faults


@pytest.mark.parametrize("text", VIETNAMESE)
def test_cp1258_is_not_utf8_yet_decodes_back_to_the_same_vietnamese(text):
    body = apply_byte_faults(FaultPlan.parse("cp1258_text"), text.encode("utf-8"))
    assert body != text.encode("utf-8")
    try:
        assert body.decode("utf-8") != text
    except UnicodeDecodeError:
        pass
    assert unicodedata.normalize("NFC", body.decode("cp1258")) == text


def test_cp1258_keeps_tone_marks_combining_and_replaces_what_it_cannot_encode():
    assert encode_cp1258("ệ") == "ê\u0323".encode("cp1258")
    assert encode_cp1258("à") == "a\u0300".encode("cp1258")
    assert encode_cp1258("Hà Nội 中") == b"Ha\xcc N\xf4\xf2i ?"


def test_cp1258_page_is_still_json_after_decoding():
    page = json.dumps({"items": list(ROWS)}, ensure_ascii=False).encode()
    body = apply_byte_faults(FaultPlan.parse("cp1258_text"), page)
    assert json.loads(unicodedata.normalize("NFC", body.decode("cp1258"))) == {"items": list(ROWS)}


def test_truncated_file_is_a_strict_prefix():
    body = b"".join(canonical_line(r) for r in ROWS)
    cut = apply_byte_faults(FaultPlan.parse("truncated_file"), body)
    assert body.startswith(cut) and len(cut) == int(len(body) * 0.6)
    tiny = apply_byte_faults(FaultPlan.parse("truncated_file:fraction=0.99"), b"{}")
    assert tiny == b"{"
    assert apply_byte_faults(FaultPlan.none(), body) == body


def test_cp1258_then_truncation():
    body = "Đắk Lắk".encode()
    both = apply_byte_faults(FaultPlan.parse("truncated_file:fraction=0.5,cp1258_text"), body)
    assert encode_cp1258("Đắk Lắk").startswith(both) and len(both) == len(encode_cp1258("Đắk Lắk")) // 2


@pytest.mark.parametrize("what, count_differs, sha_differs", [
    ("both", True, True), ("row_count", True, False), ("sha256", False, True)])
def test_manifest_mismatch_disagrees_with_the_payload(what, count_differs, sha_differs):
    sha256, count = sha256_of_rows(ROWS)
    manifest = {"entity": "dossiers", "business_date": "2024-11-15", "row_count": count, "sha256": sha256}
    before = dict(manifest)
    faulty = apply_manifest_faults(FaultPlan.parse(f"manifest_mismatch:what={what}"), manifest)
    assert manifest == before
    assert (faulty["row_count"] != count) is count_differs
    assert (faulty["sha256"] != sha256) is sha_differs
    assert len(faulty["sha256"]) == 64
    assert apply_manifest_faults(FaultPlan.none(), manifest) == manifest


# ----------------------------------------------------------------------------- HTTP faults


def test_http_429_has_retry_after_and_stops_after_k_attempts_of_the_same_request():
    plan, counter = FaultPlan.parse("http_429:attempts=2:retry_after=3"), AttemptCounter()
    first, second, third = (http_fault_for(plan, "dossiers/2024-11-15/p1", counter) for _ in range(3))
    for fault in (first, second):
        assert fault.status == 429 and dict(fault.headers)["Retry-After"] == "3"
        assert "http_429" in fault.error_body()["error"]
    assert third is None
    assert http_fault_for(plan, "dossiers/2024-11-15/p2", counter).status == 429  # another request


@pytest.mark.parametrize("name, status", [("http_500", 500), ("http_503", 503)])
def test_server_errors_for_the_first_k_attempts(name, status):
    plan, counter = FaultPlan.parse(f"{name}:attempts=3"), AttemptCounter()
    answers = [http_fault_for(plan, "key", counter) for _ in range(4)]
    assert [a.status if a else None for a in answers] == [status] * 3 + [None]
    assert answers[0].headers == ()


def test_http_503_may_carry_retry_after():
    fault = http_fault_for(FaultPlan.parse("http_503:retry_after=30"), "key", AttemptCounter())
    assert dict(fault.headers) == {"Retry-After": "30"}


def test_failing_faults_take_turns_and_slow_delays_every_answer():
    plan = FaultPlan.parse("slow:seconds=0.25,http_503:attempts=1,http_429:attempts=1,drop_connection")
    counter = AttemptCounter()
    answers = [http_fault_for(plan, "key", counter) for _ in range(4)]
    assert [a.status for a in answers[:2]] == [429, 503]
    assert answers[2].status is None and answers[2].drop_after_fraction == 0.5
    assert answers[3].faults == ("slow",) and answers[3].status is None
    assert all(a.delay_seconds == 0.25 for a in answers)


def test_timeout_outlasts_the_read_timeout_once():
    plan, counter = FaultPlan.parse("timeout:seconds=3"), AttemptCounter()
    assert http_fault_for(plan, "key", counter).delay_seconds == 3
    assert http_fault_for(plan, "key", counter) is None
    assert http_fault_for(FaultPlan.parse("timeout"), "key", counter).delay_seconds > 60


def test_drop_connection_sends_part_of_the_body_only():
    fault = http_fault_for(FaultPlan.parse("drop_connection:fraction=0.9"), "key", AttemptCounter())
    assert fault.bytes_before_drop(1000) == 900
    assert fault.bytes_before_drop(1) == 0
    assert http_fault_for(FaultPlan.none(), "key", AttemptCounter()) is None


def test_plans_do_not_share_attempt_counts():
    counter = AttemptCounter()
    assert http_fault_for(FaultPlan.parse("http_500:attempts=1"), "key", counter).status == 500
    assert http_fault_for(FaultPlan.parse("http_503:attempts=1"), "key", counter).status == 503


def test_attempt_counter_is_thread_safe():
    counter, seen = AttemptCounter(), []

    def hammer():
        numbers = [counter.next_attempt("key") for _ in range(2000)]
        seen.extend(numbers)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == list(range(1, 16001))
    assert counter.attempts("key") == 16000
    counter.reset()
    assert counter.attempts("key") == 0


# ----------------------------------------------------------------------------- documentation


def test_docs_carry_the_fault_table_verbatim():
    docs = (REPO_ROOT / "docs" / "simulator-faults.md").read_text(encoding="utf-8")
    assert describe_faults() in docs
    assert all(f"`{name}`" in describe_faults() for name in FAULTS)
