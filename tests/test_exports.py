"""Whole-day export files: the officials' CSV (read and written) and gzip NDJSON, with their manifests."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import tracemalloc
import unicodedata
from datetime import date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chiso.contract import canonical_line, get_entity, sha256_of_rows
from chiso.contract.csv_format import BOM, CsvFormatError, read_csv, write_csv
from chiso.contract.entities import ENTITIES
from chiso.simulator.exports import (
    EXPORT_FORMATS,
    csv_chunks,
    export_filename,
    file_manifest,
    ndjson_gz_chunks,
    stream_with_manifest,
)

DOSSIERS = get_entity("dossiers")
FEEDBACK = get_entity("feedback")
UNITS = get_entity("units")
DAY = date(2024, 11, 15)


def _full_row(entity, **values) -> dict:
    """A row with every field of the entity, as the portal sends it: unspecified fields are None."""
    unknown = values.keys() - set(entity.fields)
    assert not unknown, unknown
    return {name: values.get(name) for name in entity.fields}


DOSSIER_ROWS = [
    _full_row(
        DOSSIERS,
        MaHoSo="000.00.15.H21-241115-0001", MaTTHC="1.001193", TenTTHC="Đăng ký khai sinh",
        MaLinhVuc="G09-TP03", TenLinhVuc="Tư pháp - Hộ tịch", MaDonViTiepNhan="000.00.15.H21",
        DonViXuLy="000.00.15.H21", KenhThucHien=2, NgayNopHoSo="20241115081500",
        NgayTiepNhan="20241115083000", NgayHenTra="20241118170000", NgayCapNhat="20241115083000",
        TrangThaiHoSo=4, ChuHoSo="Nguyễn Thị Hương", SoGiayToChuHoSo="066190001234",
        SoDienThoai="0912345678", Email="huong@example.vn",
        DiaChiChuHoSo='Thôn 3, xã Ea Tu, "Buôn Ma Thuột", Đắk Lắk',
        LoaiDoiTuong=1, DuocThanhToanTrucTuyen=1, HoSoCoThanhPhanSoHoa=1, TaiKhoanDuocXacThucVoiVNeID=1,
        DanhSachLePhi=[{"MaPhiLePhi": "LP01", "TenPhiLePhi": "Lệ phí đăng ký", "Gia": 8000},
                       {"MaPhiLePhi": "LP02", "TenPhiLePhi": None, "Gia": 0}],
        TaiLieuNop=[{"MaGiayTo": "GT01", "TenGiayTo": "Giấy chứng sinh, bản chính", "DuocSoHoa": 1,
                     "DuocTaiSuDung": 0, "DuocLayTuKhoDMQG": 0}],
        DanhSachGiayToKetQua=[],
        DanhSachHoSoBoSung=[{"NgayBoSung": "20241116090000", "NgayTiepNhanBoSung": None,
                             "NgayHenTraMoi": "20241120170000"}],
        DongBoDVCQG=1,
    ),
    _full_row(
        DOSSIERS,
        MaHoSo="000.00.15.H21-241115-0002", MaTTHC="1.000894", MaDonViTiepNhan="000.00.15.H21",
        NgayTiepNhan="20241115140509", NgayCapNhat="20241115140509", TrangThaiHoSo=2,
        ChuHoSo="Y Bhim Niê\nKsơr", TaiLieuNop=[], DanhSachLePhi=None,
    ),
]
FEEDBACK_ROWS = [
    _full_row(
        FEEDBACK,
        MaPAKN="PAKN-2024-000123", MaDonVi="000.00.15.H21", TieuDe="Chậm trả kết quả, đề nghị xem xét",
        PhanLoai=2, NguoiGui="Trần Văn Đức", SoDienThoaiNguoiGui="0987654321", NgayGui="20241114200000",
        NgayTiepNhan="20241115080000", HanXuLy="20241205170000", NgayCapNhat="20241115080000",
        TrangThaiPAKN=2, SoLuotThich=0, CoKhieuNaiTiep=0,
    ),
]
UNIT_ROWS = [
    _full_row(UNITS, MaDonVi="000.00.00.H21", MaDonViDVCQG="H21", MaThongKe="66", TenDonVi="UBND tỉnh Đắk Lắk",
              LoaiDonVi="PROVINCE", HieuLucTu="20080101000000"),
    _full_row(UNITS, MaDonVi="000.00.15.H21", MaDonViDVCQG="H21.227", MaThongKe="24181",
              TenDonVi="UBND huyện Cư Kuin", LoaiDonVi="DISTRICT", MaDonViCha="000.00.00.H21",
              HieuLucTu="20080101000000", HieuLucDen="20250630235959"),
]


def _csv_bytes(entity, rows) -> bytes:
    return b"".join(write_csv(entity, rows))


def _records(data: bytes) -> list[list[str]]:
    """The file's records as the standard csv module reads them, independently of read_csv."""
    assert data.startswith(BOM)
    return list(csv.reader(io.StringIO(data[len(BOM):].decode("utf-8"), newline="")))


def _cells_by_label(data: bytes) -> list[dict[str, str]]:
    header, *records = _records(data)
    return [dict(zip(header, record)) for record in records]


def _handmade_csv(header: list[str], records: list[list[str]], bom: bool = True) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows([header, *records])
    return (BOM if bom else b"") + buffer.getvalue().encode("utf-8")


# ----------------------------------------------------------------------------- CSV layout

def test_csv_starts_with_the_bom_then_the_vietnamese_labels_in_contract_order():
    data = _csv_bytes(DOSSIERS, DOSSIER_ROWS)
    assert data.startswith(BOM + "Mã hồ sơ,Mã thủ tục,".encode())
    header = _records(data)[0]
    assert header == [f.label_vi for f in DOSSIERS.field_list]
    assert "Ngày tiếp nhận" in header
    assert all(unicodedata.is_normalized("NFC", label) for label in header)


def test_csv_lines_end_with_crlf_and_quote_only_where_needed():
    data = _csv_bytes(UNITS, UNIT_ROWS)
    lines = data[len(BOM):].split(b"\r\n")
    assert lines[-1] == b"" and len(lines) == 1 + len(UNIT_ROWS) + 1
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert lines[1].decode() == "000.00.00.H21,H21,66,UBND tỉnh Đắk Lắk,PROVINCE,,01/01/2008 00:00:00,"


def test_csv_cells_show_portal_dates_digits_and_vietnamese_text():
    first, second = _cells_by_label(_csv_bytes(DOSSIERS, DOSSIER_ROWS))
    assert first["Ngày tiếp nhận"] == "15/11/2024 08:30:00"
    assert first["Ngày hẹn trả"] == "18/11/2024 17:00:00"
    assert first["Chủ hồ sơ"] == "Nguyễn Thị Hương"
    assert first["Địa chỉ"] == 'Thôn 3, xã Ea Tu, "Buôn Ma Thuột", Đắk Lắk'
    assert first["Trạng thái hồ sơ"] == "4"
    assert first["Ngày từ chối"] == ""  # None
    assert second["Chủ hồ sơ"] == "Y Bhim Niê\nKsơr"
    assert second["Danh sách lệ phí"] == "" and second["Tài liệu nộp"] == "[]"


def test_csv_arrays_are_compact_json_with_nested_dates_in_the_portal_display_format():
    first = _cells_by_label(_csv_bytes(DOSSIERS, DOSSIER_ROWS))[0]
    assert first["Hồ sơ bổ sung"] == ('[{"NgayBoSung":"16/11/2024 09:00:00","NgayTiepNhanBoSung":null,'
                                      '"NgayHenTraMoi":"20/11/2024 17:00:00"}]')
    assert json.loads(first["Danh sách lệ phí"])[0] == {"MaPhiLePhi": "LP01", "TenPhiLePhi": "Lệ phí đăng ký",
                                                        "Gia": 8000}
    assert "Lệ phí đăng ký" in first["Danh sách lệ phí"]  # not \\u-escaped


@pytest.mark.parametrize("entity, rows", [(DOSSIERS, DOSSIER_ROWS), (FEEDBACK, FEEDBACK_ROWS), (UNITS, UNIT_ROWS)],
                         ids=["dossiers", "feedback", "units"])
def test_csv_reads_back_the_rows_it_wrote(entity, rows):
    assert list(read_csv(entity, write_csv(entity, rows))) == rows


def test_csv_reader_takes_a_binary_file_or_bytes_with_or_without_the_bom():
    data = _csv_bytes(FEEDBACK, FEEDBACK_ROWS)
    assert list(read_csv(FEEDBACK, io.BytesIO(data))) == FEEDBACK_ROWS
    assert list(read_csv(FEEDBACK, io.BytesIO(data[len(BOM):]))) == FEEDBACK_ROWS
    assert list(read_csv(FEEDBACK, data)) == FEEDBACK_ROWS


def test_csv_reader_survives_chunks_split_inside_a_vietnamese_letter():
    data = _csv_bytes(DOSSIERS, DOSSIER_ROWS)
    one_byte_chunks = (data[i:i + 1] for i in range(len(data)))
    assert list(read_csv(DOSSIERS, one_byte_chunks)) == DOSSIER_ROWS


def test_csv_reader_finds_columns_by_label_in_any_order_and_decomposed():
    header = [unicodedata.normalize("NFD", f.label_vi) for f in reversed(UNITS.field_list)]
    records = [list(reversed(["000.00.00.H21", "", "66", "UBND tỉnh Đắk Lắk", "PROVINCE", "",
                              "01/01/2008 00:00:00", ""]))]
    (row,) = read_csv(UNITS, [_handmade_csv(header, records)])
    assert list(row) == list(UNITS.fields)
    assert row["TenDonVi"] == "UBND tỉnh Đắk Lắk" and row["HieuLucTu"] == "20080101000000"
    assert row["MaDonViDVCQG"] is None


def test_every_entity_has_distinct_labels_so_its_csv_can_be_read_back():
    for entity in ENTITIES.values():
        labels = [unicodedata.normalize("NFC", f.label_vi) for f in entity.field_list]
        assert len(labels) == len(set(labels)), entity.name


def test_csv_writer_refuses_rows_outside_the_contract():
    with pytest.raises(ValueError, match="NgayTiepNhan"):
        _csv_bytes(DOSSIERS, [{**DOSSIER_ROWS[0], "NgayTiepNhan": "2024-11-15 08:30"}])
    with pytest.raises(ValueError, match="MaBiMat"):
        _csv_bytes(UNITS, [{**UNIT_ROWS[0], "MaBiMat": "x"}])
    with pytest.raises(ValueError, match="TrangThaiHoSo"):
        _csv_bytes(DOSSIERS, [{**DOSSIER_ROWS[0], "TrangThaiHoSo": "4"}])
    with pytest.raises(ValueError, match=r"DanhSachHoSoBoSung\[0\].NgayBoSung"):
        _csv_bytes(DOSSIERS, [{**DOSSIER_ROWS[0], "DanhSachHoSoBoSung": [{"NgayBoSung": "20241331000000"}]}])


# ----------------------------------------------------------------------------- bad CSV

def _unit_header() -> list[str]:
    return [f.label_vi for f in UNITS.field_list]


def _unit_record(**cells_by_label) -> list[str]:
    cells = {"Mã định danh điện tử": "000.00.00.H21", "Tên đơn vị": "UBND tỉnh Đắk Lắk",
             "Loại đơn vị": "PROVINCE", "Hiệu lực từ": "01/01/2008 00:00:00", **cells_by_label}
    return [cells.get(label, "") for label in _unit_header()]


def _read_error(entity, data: bytes) -> CsvFormatError:
    with pytest.raises(CsvFormatError) as caught:
        list(read_csv(entity, [data]))
    return caught.value


def test_unknown_header_label_is_named():
    header = [*_unit_header(), "Ghi chú", "Cột lạ"]
    error = _read_error(UNITS, _handmade_csv(header, [_unit_record() + ["", ""]]))
    assert error.line == 1
    assert '"Ghi chú", "Cột lạ"' in str(error) and "line 1" in str(error)


def test_missing_header_label_is_named():
    header = [label for label in _unit_header() if label != "Tên đơn vị"]
    error = _read_error(UNITS, _handmade_csv(header, []))
    assert "line 1" in str(error) and "missing" in str(error) and '"Tên đơn vị"' in str(error)


def test_empty_file_is_refused():
    assert _read_error(UNITS, BOM).line == 1


def test_impossible_date_names_line_and_column():
    records = [_unit_record(), _unit_record(**{"Hiệu lực từ": "31/13/2024 00:00:00"})]
    error = _read_error(UNITS, _handmade_csv(_unit_header(), records))
    assert (error.line, error.column) == (3, '"Hiệu lực từ" (HieuLucTu)')
    assert str(error).startswith('line 3, column "Hiệu lực từ" (HieuLucTu): ')
    assert "31/13/2024 00:00:00" in str(error)


def test_date_in_the_wrong_layout_is_refused():
    records = [_unit_record(**{"Hiệu lực từ": "20080101000000"})]
    error = _read_error(UNITS, _handmade_csv(_unit_header(), records))
    assert (error.line, error.column) == (2, '"Hiệu lực từ" (HieuLucTu)')


def test_line_numbers_count_lines_inside_quoted_cells():
    records = [_unit_record(**{"Tên đơn vị": "dòng một\r\ndòng hai"}),
               _unit_record(**{"Hiệu lực đến": "hôm qua"})]
    error = _read_error(UNITS, _handmade_csv(_unit_header(), records))
    assert (error.line, error.column) == (4, '"Hiệu lực đến" (HieuLucDen)')


def test_non_integer_in_an_integer_column_names_line_and_column():
    records = _records(_csv_bytes(FEEDBACK, FEEDBACK_ROWS * 3))
    records[3][records[0].index("Trạng thái")] = "hai"
    error = _read_error(FEEDBACK, _handmade_csv(records[0], records[1:]))
    assert (error.line, error.column) == (4, '"Trạng thái" (TrangThaiPAKN)')
    assert "'hai' is not an integer" in str(error)


@pytest.mark.parametrize("cell", ["1.5", " 2", "+2", "1_000", "٣"])
def test_integers_must_be_plain_ascii_digits(cell):
    records = _records(_csv_bytes(FEEDBACK, FEEDBACK_ROWS))
    records[1][records[0].index("Lượt thích")] = cell
    assert _read_error(FEEDBACK, _handmade_csv(records[0], records[1:])).column == '"Lượt thích" (SoLuotThich)'


@pytest.mark.parametrize("cell, detail", [
    ('[{"NgayBoSung":"31/13/2024 00:00:00"}]', "[0].NgayBoSung"),
    ('[{"NgayBoSung":"16/11/2024 09:00:00","GhiChu":"x"}]', "GhiChu"),
    ('{"NgayBoSung":"16/11/2024 09:00:00"}', "JSON list"),
    ("[{", "not a JSON list"),
])
def test_bad_nested_list_names_line_column_and_item(cell, detail):
    records = _records(_csv_bytes(DOSSIERS, DOSSIER_ROWS))
    records[2][records[0].index("Hồ sơ bổ sung")] = cell
    error = _read_error(DOSSIERS, _handmade_csv(records[0], records[1:]))
    assert (error.line, error.column) == (3, '"Hồ sơ bổ sung" (DanhSachHoSoBoSung)')  # the record's first line
    assert detail in str(error)


def test_row_with_the_wrong_number_of_cells_is_refused():
    error = _read_error(UNITS, _handmade_csv(_unit_header(), [_unit_record()[:-1]]))
    assert error.line == 2 and "expected 8 cells" in str(error)


# ----------------------------------------------------------------------------- round trip, generated

VIETNAMESE = "ăâđêôơưĂÂĐÊÔƠƯáàảãạấầẩẫậắằẳẵặéèẻẽẹếềểễệíìỉĩịóòỏõọốồổỗộớờởỡợúùủũụứừửữựýỳỷỹỵ"
TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(VIETNAMESE + VIETNAMESE.upper()),
        st.sampled_from([",", '"', "'", ";", "\n", "\r", "\t", " ", "[", "{", "\\"]),
        st.characters(blacklist_categories=("Cs", "Cc")),
    ),
    min_size=1,  # an empty text reads back as None: the CSV cannot tell them apart (module docstring)
    max_size=30,
)
PORTAL_DATETIMES = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)).map(
    lambda moment: f"{moment.year:04d}{moment:%m%d%H%M%S}")
SCALARS = {
    "string": TEXT,
    "integer": st.integers(min_value=-(10 ** 20), max_value=10 ** 20),
    "flag": st.sampled_from([0, 1]),
    "datetime": PORTAL_DATETIMES,
    "number": st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)),
}


def _value(field):
    if field.type == "array":
        record = st.fixed_dictionaries(
            {item.name: _value(item) for item in field.items if item.required},
            optional={item.name: _value(item) for item in field.items if not item.required})
        values = st.lists(record, max_size=3)
    else:
        values = SCALARS[field.type]
    return values if field.required else st.one_of(st.none(), values)


def _rows(entity):
    return st.fixed_dictionaries({f.name: _value(f) for f in entity.field_list})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(_rows(DOSSIERS), max_size=5), chunk_size=st.integers(min_value=1, max_value=4096),
       with_bom=st.booleans())
def test_generated_dossiers_survive_a_csv_round_trip(rows, chunk_size, with_bom):
    data = b"".join(write_csv(DOSSIERS, rows, rows_per_chunk=2))
    if not with_bom:
        data = data[len(BOM):]
    chunks = [data[i:i + chunk_size] for i in range(0, len(data), chunk_size)]
    assert list(read_csv(DOSSIERS, chunks)) == rows


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(_rows(FEEDBACK), max_size=5))
def test_generated_feedback_survives_a_csv_round_trip(rows):
    assert list(read_csv(FEEDBACK, write_csv(FEEDBACK, rows))) == rows


# ----------------------------------------------------------------------------- gzip NDJSON

def test_ndjson_gz_decompresses_to_exactly_the_canonical_lines():
    rows = DOSSIER_ROWS + FEEDBACK_ROWS
    data = b"".join(ndjson_gz_chunks(rows))
    assert gzip.decompress(data) == b"".join(canonical_line(row) for row in rows)


def test_ndjson_gz_is_byte_identical_across_calls_with_no_name_and_no_time():
    first = b"".join(ndjson_gz_chunks(DOSSIER_ROWS))
    assert first == b"".join(ndjson_gz_chunks(iter(DOSSIER_ROWS)))
    assert first[:2] == b"\x1f\x8b"
    assert first[3] & 0x08 == 0, "no file name in the gzip header"
    assert first[4:8] == b"\x00\x00\x00\x00", "mtime 0 in the gzip header"


def test_ndjson_gz_of_no_rows_is_an_empty_gzip_file():
    assert gzip.decompress(b"".join(ndjson_gz_chunks([]))) == b""


# ----------------------------------------------------------------------------- manifests

@pytest.mark.parametrize("fmt", sorted(EXPORT_FORMATS))
def test_manifest_describes_the_file_bytes_and_matches_the_api_checksum(fmt):
    rows = DOSSIER_ROWS * 3
    sink = io.BytesIO()
    manifest = file_manifest("dossiers", DAY, fmt, iter(rows), sink=sink)
    data = sink.getvalue()
    expected_file = (b"".join(csv_chunks("dossiers", rows)) if fmt == "csv"
                     else b"".join(ndjson_gz_chunks(rows)))
    assert data == expected_file
    rows_sha256, row_count = sha256_of_rows(rows)
    assert manifest == {"entity": "dossiers", "business_date": "2024-11-15", "format": fmt,
                        "row_count": row_count, "sha256": hashlib.sha256(data).hexdigest(),
                        "bytes": len(data), "rows_sha256": rows_sha256}
    assert row_count == 6


def test_manifest_without_a_sink_equals_the_one_with_a_sink():
    with_sink = file_manifest("units", "2024-11-15", "csv", UNIT_ROWS, sink=io.BytesIO())
    assert file_manifest("units", "2024-11-15", "csv", UNIT_ROWS) == with_sink


def test_rows_checksum_is_the_same_for_both_formats():
    csv_manifest = file_manifest("feedback", DAY, "csv", FEEDBACK_ROWS)
    gz_manifest = file_manifest("feedback", DAY, "ndjson.gz", FEEDBACK_ROWS)
    assert csv_manifest["rows_sha256"] == gz_manifest["rows_sha256"] == sha256_of_rows(FEEDBACK_ROWS)[0]
    assert csv_manifest["sha256"] != gz_manifest["sha256"]


def test_stream_with_manifest_writes_every_chunk_in_order():
    sink = io.BytesIO()
    stats = stream_with_manifest([b"ab", b"", b"c\xc4\x91"], sink)
    assert sink.getvalue() == b"abc\xc4\x91"
    assert stats == {"sha256": hashlib.sha256(b"abc\xc4\x91").hexdigest(), "bytes": 5}


def test_unknown_format_entity_or_date_is_refused():
    with pytest.raises(ValueError, match="xlsx"):
        file_manifest("units", DAY, "xlsx", UNIT_ROWS)
    with pytest.raises(ValueError, match="ho_so"):
        file_manifest("ho_so", DAY, "csv", UNIT_ROWS)
    with pytest.raises(ValueError):
        file_manifest("units", "15/11/2024", "csv", UNIT_ROWS)


def test_export_filename():
    assert export_filename("dossiers", DAY, "ndjson.gz") == "dossiers_20241115.ndjson.gz"
    assert export_filename("units", "2024-11-15", "csv") == "units_20241115.csv"


# ----------------------------------------------------------------------------- streaming

MANY = 100_000


class _CountingRows:
    """A generator of MANY small unit rows that records how many were taken so far."""

    def __init__(self):
        self.taken = 0

    def __iter__(self):
        for number in range(MANY):
            self.taken += 1
            yield {"MaDonVi": f"000.{number:02d}.15.H21", "MaDonViDVCQG": None, "MaThongKe": f"{number:05d}",
                   "TenDonVi": f"UBND xã Ea Tiêu số {number}", "LoaiDonVi": "COMMUNE",
                   "MaDonViCha": "000.00.15.H21", "HieuLucTu": "20250701000000", "HieuLucDen": None}


@pytest.mark.parametrize("make_chunks", [lambda rows: csv_chunks("units", rows), ndjson_gz_chunks],
                         ids=["csv", "ndjson.gz"])
def test_files_are_produced_while_the_rows_are_still_coming(make_chunks):
    rows = _CountingRows()
    chunks = make_chunks(iter(rows))
    sizes = []
    for chunk in chunks:
        sizes.append(len(chunk))
        if len(sizes) == 3:
            assert rows.taken < MANY / 10, "the first chunks came only after most rows were read"
    assert rows.taken == MANY
    assert len(sizes) > 20


@pytest.mark.parametrize("fmt", sorted(EXPORT_FORMATS))
def test_a_day_of_100k_rows_never_sits_in_memory(fmt):
    rows = _CountingRows()
    tracemalloc.start()
    try:
        manifest = file_manifest("units", DAY, fmt, rows)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert manifest["row_count"] == MANY
    if fmt == "csv":
        assert manifest["bytes"] > 8 * 2 ** 20  # holding the file (or its rows) would break the bound below
    assert peak < 5 * 2 ** 20, f"peak {peak / 2 ** 20:.1f} MiB"  # well under the 30 MB budget


def test_reading_a_big_csv_is_streamed_too():
    data_chunks = csv_chunks("units", _CountingRows())
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_csv(UNITS, data_chunks))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == MANY
    assert peak < 5 * 2 ** 20, f"peak {peak / 2 ** 20:.1f} MiB"
