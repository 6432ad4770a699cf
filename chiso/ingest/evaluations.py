"""Loading the portal's published 766 evaluation, in every form it is captured in.

A capture covers one province (or, for the national overview, the provinces), one period and one
extraction. The forms met in real captures (tests/fixtures/README.md):

- full: `unitsDetail`, each unit with group scores, ranks and `componentIndicators` whose blocks list
  their sub-indicators (`metrics`) with numerator, denominator, ratio and score
  (../shared/reference/gialai-2026-10-10.json);
- score-only blocks: as full, but some blocks carry only `score` and `maxScore` (no `metrics`, no `ratio`);
- summary-only: group scores, totals and ranks, no `componentIndicators` (`agencies` / `communes` lists);
- agency-only (commune-only): `agenciesDetail` (`communesDetail`) instead of `unitsDetail`, often no
  `overview`; its ranks are still the ones published among all the province's units;
- province overview: the national API's request and response, the provinces' group scores and totals.

Each capture is validated against the contract's evaluation schema, its form recorded in
raw.portal__evaluation_captures with the populations it declares, and its units loaded once into
raw.portal__evaluations (the load ledger keys it by province, period, unit scope and extraction date).
A corrected capture for the same key replaces the earlier one atomically.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

import fastjsonschema
import psycopg

from chiso.core.warehouse import RAW_SCHEMA

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "contract" / "schemas" / "evaluation.schema.json"

# The key holding a capture's units, and which of the province's units it covers.
UNIT_LISTS = {"unitsDetail": "all units", "agenciesDetail": "agencies", "communesDetail": "communes",
              "agencies": "agencies", "communes": "communes"}
# Blocks that list their sub-indicators in the full form; without `metrics` a block is score-only.
BLOCKS_WITH_METRICS = ("CKMB_CongKhaiMinhBach", "MDSH_SoHoaHoSo", "MDHL_MucDoHaiLong")
NATIONAL = "national"


class EvaluationError(ValueError):
    pass


@lru_cache(maxsize=1)
def _validator():
    return fastjsonschema.compile(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Capture:
    """One published evaluation as captured, whatever its form."""

    province_code: str
    period_type: str
    period_year: int
    period_number: int | None
    evaluated_on: date
    extracted_at: str | None
    unit_scope: str  # 'all units', 'agencies', 'communes' or 'provinces'
    detail: str  # 'full', 'score-only blocks' or 'summary-only'
    units: list
    overview: dict | None
    declared_units: int | None
    declared_agencies: int | None
    declared_communes: int | None

    @property
    def form(self) -> str:
        if self.unit_scope == "provinces":
            return "province overview"
        if self.unit_scope == "all units":
            return self.detail
        scope = "agency-only" if self.unit_scope == "agencies" else "commune-only"
        return scope if self.detail == "full" else f"{scope}, {self.detail}"

    @property
    def ledger_entity(self) -> str:
        period = f"{self.period_type}-{self.period_year}" + (f"-{self.period_number}" if self.period_number else "")
        scope = "" if self.unit_scope in ("all units", "provinces") else f"/{self.unit_scope}"
        return f"evaluations/{self.province_code}/{period}{scope}"


def ledger_entity(metadata: dict) -> str:
    """The ledger entity of a province capture of all its units (kept for callers of the full form)."""
    period = f"{metadata['timeType']}-{metadata['year']}" + (f"-{metadata['period']}" if metadata.get("period") else "")
    return f"evaluations/{metadata['provinceCode']}/{period}"


def _detail(units: list) -> str:
    blocks = [unit.get("componentIndicators") for unit in units]
    if not any(blocks):
        return "summary-only"
    for unit_blocks in filter(None, blocks):
        if any(name in unit_blocks and "metrics" not in unit_blocks[name] for name in BLOCKS_WITH_METRICS):
            return "score-only blocks"
    return "full"


def _date_in_name(path: Path) -> date | None:
    found = re.search(r"(\d{4})-(\d{2})-(\d{2})", path.name)
    return date(*map(int, found.groups())) if found else None


def read_capture(document: dict, path: Path, evaluated_on: date | None = None) -> Capture:
    """The capture's form, period, units and declared populations (the document is already valid)."""
    if "response" in document:
        request, data = document["request"], document["response"]["data"]
        when = evaluated_on or _date_in_name(path)
        if when is None:
            raise EvaluationError(f"{path}: a national overview carries no extraction date: give it "
                                  f"(--evaluated-on) or name the file with its ISO date")
        return Capture(NATIONAL, request["timeType"], request["year"], request.get("period"), when, None,
                       "provinces", "summary-only", data["evaluation"], data["overview"],
                       None, None, None)
    metadata = document["metadata"]
    key = next(key for key in UNIT_LISTS if key in document)
    units = document[key]
    overview = document.get("overview")
    declared = {**(overview or {}), **document}  # the totals sit at the top or in the overview
    scope = UNIT_LISTS[key]
    declared_agencies = declared.get("agencyCount")
    declared_communes = declared.get("communeCount")
    # An agency-only (commune-only) capture without those totals declares how many units its tool got.
    if scope == "agencies" and declared_agencies is None:
        declared_agencies = document.get("count")
    if scope == "communes" and declared_communes is None:
        declared_communes = document.get("count")
    when = evaluated_on or (datetime.strptime(metadata["runDateStr"], "%d%m%Y").date() if metadata.get("runDateStr")
                            else date.fromisoformat(metadata["extractedAt"][:10]))
    return Capture(metadata["provinceCode"], metadata["timeType"], metadata["year"], metadata.get("period"), when,
                   metadata["extractedAt"], scope, _detail(units), units, overview,
                   declared.get("totalUnitsCount"), declared_agencies, declared_communes)


def parse_evaluation(path: Path, evaluated_on: date | None = None) -> tuple[Capture, bytes]:
    payload = path.read_bytes()
    try:
        document = json.loads(payload)
        _validator()(document)
    except (ValueError, fastjsonschema.JsonSchemaValueException) as exc:
        raise EvaluationError(f"{path}: not a published evaluation document: {exc}") from exc
    return read_capture(document, path, evaluated_on), payload


def load_evaluation(conn: psycopg.Connection, path: Path, evaluated_on: date | None = None) -> dict:
    capture, payload = parse_evaluation(path, evaluated_on)
    entity, checksum = capture.ledger_entity, hashlib.sha256(payload).hexdigest()
    units, day = capture.units, capture.evaluated_on
    answer = {"entity": entity, "units": len(units), "form": capture.form}
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"load:{entity}:{day}",))
        current = conn.execute(
            f"select load_id, checksum from {RAW_SCHEMA}.load_ledger "
            f"where entity = %s and business_date = %s and status = 'loaded'", (entity, day)).fetchone()
        if current and current[1] == checksum:
            return {**answer, "load_id": current[0], "skipped": True}
        if current:
            conn.execute(f"delete from {RAW_SCHEMA}.portal__evaluations where load_id = %s", (current[0],))
            conn.execute(f"delete from {RAW_SCHEMA}.portal__evaluation_captures where load_id = %s", (current[0],))
            conn.execute(f"update {RAW_SCHEMA}.load_ledger set status = 'superseded' where load_id = %s", (current[0],))
        (load_id,) = conn.execute(
            f"insert into {RAW_SCHEMA}.load_ledger (entity, business_date, checksum, source_path, rows_in_manifest, "
            f"rows_loaded, rows_quarantined, status, finished_at) values (%s, %s, %s, %s, %s, %s, 0, 'loaded', now()) "
            f"returning load_id", (entity, day, checksum, str(path), len(units), len(units))).fetchone()
        period = (capture.province_code, capture.period_type, capture.period_year, capture.period_number)
        conn.execute(
            f"insert into {RAW_SCHEMA}.portal__evaluation_captures (load_id, business_date, province_code, period_type, "
            f"period_year, period_number, form, unit_scope, detail, units_in_capture, declared_units, declared_agencies, "
            f"declared_communes, overview, source_file) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (load_id, day, *period, capture.form, capture.unit_scope, capture.detail, len(units),
             capture.declared_units, capture.declared_agencies, capture.declared_communes,
             json.dumps(capture.overview, ensure_ascii=False) if capture.overview is not None else None, path.name))
        with conn.cursor().copy(
            f"copy {RAW_SCHEMA}.portal__evaluations (load_id, business_date, province_code, period_type, period_year, "
            f"period_number, extracted_at, source_file, line_number, record) from stdin"
        ) as copy:
            for line_number, unit in enumerate(units, start=1):
                copy.write_row((load_id, day, *period, capture.extracted_at, path.name, line_number,
                                json.dumps(unit, ensure_ascii=False)))
    return {**answer, "load_id": load_id, "skipped": False}
