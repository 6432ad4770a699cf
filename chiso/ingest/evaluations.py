"""Loading the portal's published 766 evaluation (the shape of ../shared/reference/*.json).

One document covers one province, one period and one extraction; it is validated against the
contract's evaluation schema and loaded once (the load ledger keys it by province, period and
extraction date). A corrected document for the same key replaces the earlier one atomically.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

import fastjsonschema
import psycopg

from chiso.warehouse import RAW_SCHEMA

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "contract" / "schemas" / "evaluation.schema.json"


class EvaluationError(ValueError):
    pass


@lru_cache(maxsize=1)
def _validator():
    return fastjsonschema.compile(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def ledger_entity(metadata: dict) -> str:
    period = f"{metadata['timeType']}-{metadata['year']}" + (f"-{metadata['period']}" if metadata.get("period") else "")
    return f"evaluations/{metadata['provinceCode']}/{period}"


def load_evaluation(conn: psycopg.Connection, path: Path) -> dict:
    payload = path.read_bytes()
    try:
        document = json.loads(payload)
        _validator()(document)
    except (ValueError, fastjsonschema.JsonSchemaValueException) as exc:
        raise EvaluationError(f"{path}: not a published evaluation document: {exc}") from exc
    metadata = document["metadata"]
    evaluated_on = datetime.strptime(metadata["runDateStr"], "%d%m%Y").date() if metadata.get("runDateStr") \
        else date.fromisoformat(metadata["extractedAt"][:10])
    entity, checksum = ledger_entity(metadata), hashlib.sha256(payload).hexdigest()
    units = document["unitsDetail"]
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"load:{entity}:{evaluated_on}",))
        current = conn.execute(
            f"select load_id, checksum from {RAW_SCHEMA}.load_ledger "
            f"where entity = %s and business_date = %s and status = 'loaded'", (entity, evaluated_on)).fetchone()
        if current and current[1] == checksum:
            return {"entity": entity, "load_id": current[0], "units": len(units), "skipped": True}
        if current:
            conn.execute(f"delete from {RAW_SCHEMA}.portal__evaluations where load_id = %s", (current[0],))
            conn.execute(f"update {RAW_SCHEMA}.load_ledger set status = 'superseded' where load_id = %s", (current[0],))
        (load_id,) = conn.execute(
            f"insert into {RAW_SCHEMA}.load_ledger (entity, business_date, checksum, source_path, rows_in_manifest, "
            f"rows_loaded, rows_quarantined, status, finished_at) values (%s, %s, %s, %s, %s, %s, 0, 'loaded', now()) "
            f"returning load_id", (entity, evaluated_on, checksum, str(path), len(units), len(units))).fetchone()
        with conn.cursor().copy(
            f"copy {RAW_SCHEMA}.portal__evaluations (load_id, business_date, province_code, period_type, period_year, "
            f"period_number, extracted_at, source_file, line_number, record) from stdin"
        ) as copy:
            for line_number, unit in enumerate(units, start=1):
                copy.write_row((load_id, evaluated_on, metadata["provinceCode"], metadata["timeType"], metadata["year"],
                                metadata.get("period"), metadata["extractedAt"], path.name, line_number,
                                json.dumps(unit, ensure_ascii=False)))
    return {"entity": entity, "load_id": load_id, "units": len(units), "skipped": False}
