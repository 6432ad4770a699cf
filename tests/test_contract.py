"""The contract's derived artefacts are up to date, and its schemas accept real and generated data."""

from __future__ import annotations

import json
from pathlib import Path

import fastjsonschema
import pytest

from chiso.contract import ENTITIES, get_entity
from chiso.contract.docs import DOC_PATH, SCHEMA_DIR, render_page, schema_files
from chiso.ingest.validate import row_problems

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "gialai-2026-10-10.json"


def test_documentation_page_and_schema_files_are_generated_from_the_contract():
    assert DOC_PATH.read_text(encoding="utf-8") == render_page(), "run: python -m chiso.contract.docs"
    for path, text in schema_files().items():
        assert path.read_text(encoding="utf-8") == text, f"{path.name} is stale: run python -m chiso.contract.docs"


def test_every_entity_is_documented_with_its_vietnamese_headers():
    page = DOC_PATH.read_text(encoding="utf-8")
    for entity in ENTITIES.values():
        assert f"## `{entity.name}`" in page
        assert all(f"| {f.label_vi} |" in page for f in entity.field_list)


def test_personal_fields_are_declared_for_every_entity_that_names_a_person():
    assert set(get_entity("dossiers").personal_fields) == {"ChuHoSo", "SoGiayToChuHoSo", "SoDienThoai", "Email",
                                                           "DiaChiChuHoSo"}
    assert set(get_entity("feedback").personal_fields) == {"NguoiGui", "SoDienThoaiNguoiGui"}


@pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/reference is not beside the checkout")
def test_the_evaluation_schema_accepts_the_published_gia_lai_figures_and_refuses_a_broken_copy():
    validate = fastjsonschema.compile(json.loads((SCHEMA_DIR / "evaluation.schema.json").read_text()))
    published = json.loads(REFERENCE.read_text(encoding="utf-8"))
    validate(published)
    assert len(published["unitsDetail"]) == 149
    broken = json.loads(REFERENCE.read_text(encoding="utf-8"))
    broken["unitsDetail"][3]["componentIndicators"]["MDSH_SoHoaHoSo"]["metrics"][0].pop("numerator")
    with pytest.raises(fastjsonschema.JsonSchemaValueException, match="numerator"):
        validate(broken)


def test_row_problems_name_the_field_and_the_problem_never_the_value():
    entity = get_entity("dossiers")
    row = {name: None for name in entity.fields}
    row.update(MaHoSo="X", MaTTHC="1.001193", MaDonViTiepNhan="U", NgayTiepNhan="20241115083000",
               NgayCapNhat="20241115083000", TrangThaiHoSo=4, TaiLieuNop=[], DanhSachLePhi=[],
               DanhSachGiayToKetQua=[], DanhSachHoSoBoSung=[])
    assert row_problems(entity, row) == []
    assert row_problems(entity, {**row, "TrangThaiHoSo": 11}) == ["TrangThaiHoSo: an integer is not in the code list"]
    assert row_problems(entity, {**row, "NgayHenTra": "20241331000000"}) == [
        "NgayHenTra: a text of 14 characters is not a yyyyMMddHHmmss date"]
    assert row_problems(entity, {**row, "DanhSachHoSoBoSung": [{"NgayBoSung": "15/11/2024"}]}) == [
        "DanhSachHoSoBoSung[].NgayBoSung: a text of 10 characters is not a yyyyMMddHHmmss date"]
    assert "DuocSoHoa" in row_problems(entity, {**row, "TaiLieuNop": [{"MaGiayTo": "a"}]})[0]
    # Personal values in the wrong type: the reason says which field and what is wrong, not the value.
    for field, value in (("SoDienThoai", 790794718), ("Email", ["an@example.vn"]), ("ChuHoSo", {"ten": "An"})):
        [problem] = row_problems(entity, {**row, field: value})
        assert problem.startswith(f"{field}: ") and "not of type string" in problem, problem
        assert "790794718" not in problem and "an@example.vn" not in problem and "An" not in problem
    assert row_problems(entity, ["not", "a", "row"]) == ["a row must be a JSON object, got list"]
