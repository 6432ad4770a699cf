"""A published value's dossiers as they were known at its publication (``python -m chiso.publish.explain --as-published``).

The raw layer keeps every version of every dossier with when it was loaded (``loaded_at``), so what was
known at a publication is the raw rows loaded before it (``ops.reporting_publications.published_at``).
For the value's unit (its members, ``int_unit_lineage``), indicator, period and as-of day:

* the candidates are today's population (the explain_indicator macro) and every dossier one of whose
  versions loaded by then placed it in the unit and period;
* each candidate's version known then is the latest of those rows, in the staging model's order
  (``stg_portal__dossiers``: NgayCapNhat, then extract day, load, line); the population then is the
  candidates whose version then was received (status not 1 or 3) by a member in the period;
* a dossier whose version then is still its current version contributes exactly what it contributes
  today (the contributions follow from the version, as of the same day); a dossier whose version changed
  since is listed as it was then (unit, reception, status, channel), its contribution then not derived
  again (None), and flagged ``changed_since_publication``.

Dossiers first loaded after the publication (late) are not listed: they were unknown.
"""

from __future__ import annotations

from datetime import date, datetime

import psycopg

from chiso.core.warehouse import OPS_SCHEMA

EXTRA_COLUMNS = ("known_since", "version_loaded_at", "changed_since_publication")
# The staging model's order of a dossier's versions (stg_portal__dossiers, version_rank); its reading of
# the portal's yyyyMMddHHmmss (macro portal_timestamp).
_TIMESTAMP = "to_timestamp(nullif({}, ''), 'YYYYMMDDHH24MISS')::timestamp"
_VERSION_ORDER = (_TIMESTAMP.format("v.record ->> 'NgayCapNhat'") + " desc nulls last, "
                  "v.business_date desc, v.load_id desc, v.line_number desc")


class UnknownPublication(ValueError):
    pass


def resolve_publication(reference: str, url: str) -> tuple[int, date, datetime]:
    """A publication by its id, or by a business date (that day's first publication, the one its e-mail
    showed): (publication id, business date, published at)."""
    with psycopg.connect(url) as conn:
        if reference.isdigit():
            row = conn.execute(f"select publication_id, business_date, published_at from {OPS_SCHEMA}.reporting_publications "
                               "where publication_id = %s", (int(reference),)).fetchone()
        else:
            try:
                day = date.fromisoformat(reference)
            except ValueError:
                raise UnknownPublication(f"--as-published {reference!r} is neither a publication id nor a date "
                                         "(YYYY-MM-DD)") from None
            row = conn.execute(f"select publication_id, business_date, published_at from {OPS_SCHEMA}.reporting_publications "
                               "where business_date = %s order by publication_id limit 1", (day,)).fetchone()
    if row is None:
        raise UnknownPublication(f"no publication {reference} in {OPS_SCHEMA}.reporting_publications")
    return row


def _versions(conn, codes: list[str], known_at: datetime | None) -> dict[str, tuple]:
    """Per dossier: the latest version loaded by ``known_at`` (or now), and when it was first loaded."""
    rows = conn.execute(f"""
        select distinct on (code) code, v.load_id, v.line_number, v.loaded_at,
               v.record ->> 'MaDonViTiepNhan',
               {_TIMESTAMP.format("v.record ->> 'NgayTiepNhan'")},
               (v.record ->> 'TrangThaiHoSo')::smallint,
               coalesce((v.record ->> 'KenhThucHien')::smallint, 1),
               v.record ->> 'MaTTHC',
               min(v.loaded_at) over (partition by code)
        from unnest(%s::text[]) as codes(code)
        join raw.portal__dossiers as v on v.record ->> 'MaHoSo' = codes.code
        where %s::timestamptz is null or v.loaded_at <= %s::timestamptz
        order by code, {_VERSION_ORDER}""", (codes, known_at, known_at)).fetchall()
    return {row[0]: row[1:] for row in rows}


def explain_as_published(unit_code: str, indicator_code: str, as_of: date, period_type: str,
                         current: tuple[list[str], list[tuple]], published_at: datetime,
                         url: str) -> tuple[list[str], list[tuple]]:
    """The value's dossiers as known at ``published_at``; ``current`` is today's explanation."""
    columns, current_rows = current
    by_code = {row[columns.index("dossier_code")]: row for row in current_rows}
    with psycopg.connect(url) as conn:
        (period_start,) = conn.execute("select date_trunc(%s, %s::timestamp)::date", (period_type, as_of)).fetchone()
        members = [code for (code,) in conn.execute(
            """select member_unit_code from intermediate.int_unit_lineage
               where reporting_unit_code = %s and %s >= window_from and (window_to is null or %s <= window_to)""",
            (unit_code, as_of, as_of)).fetchall()]
        placed = [code for (code,) in conn.execute(f"""
            select distinct v.record ->> 'MaHoSo' from raw.portal__dossiers as v
            where v.business_date >= %s and v.loaded_at <= %s and v.record ->> 'MaDonViTiepNhan' = any(%s)
              and {_TIMESTAMP.format("v.record ->> 'NgayTiepNhan'")}::date between %s and %s""",
            (period_start, published_at, members, period_start, as_of)).fetchall()]
        candidates = sorted(set(by_code) | set(placed))
        then = _versions(conn, candidates, published_at)
        now = _versions(conn, candidates, None)
    rows = []
    for code in candidates:
        if code not in then:
            continue   # first loaded after the publication: unknown then
        load_id, line, loaded_at, unit, received_at, status, channel, procedure, first_loaded = then[code]
        changed = now[code][:2] != (load_id, line)
        if not changed:
            if code in by_code:   # unchanged: today's contribution is the contribution then
                rows.append((*by_code[code], first_loaded, loaded_at, False))
            continue
        in_population = (unit in members and received_at is not None and status not in (1, 3)
                         and period_start <= received_at.date() <= as_of)
        if in_population:
            values = dict.fromkeys(columns)
            values.update(dossier_code=code, unit_code=unit, procedure_code=procedure, channel_code=channel,
                          status_code=status, received_at=received_at)
            rows.append((*(values[c] for c in columns), first_loaded, loaded_at, True))
    return [*columns, *EXTRA_COLUMNS], rows
