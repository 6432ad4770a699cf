"""Every figure as it was published, and why a past day's figure was restated (docs/publication.md).

The engine is incremental (docs/engine-incremental.md): a dossier received in October that first arrives
in November, or a corrected version of a known dossier, changes the values "as of" earlier days. The
marts then hold the value as known now; what a leader read in an e-mail or on a dashboard that day is kept
here, by :func:`record`, inside the publication's transaction (a failed publication keeps nothing):

* ``ops.published_indicator_values``: unit, indicator, period, as-of day, publication, numerator,
  denominator, rate, score and rule version of every value the publication made public, written only
  when it is new or differs from the key's last published version (append-only). A key's second and
  later rows are its restatements, each with its reason counted from data: dossiers of the value's
  population whose first version was loaded after the previous publication (late dossiers), known
  dossiers with a version loaded since (corrected versions), and whether the rule version changed.
* ``ops.published_unit_scores``: the same for the unit scores the nightly e-mail shows.

Why only what changed: a national night must cost in proportion to the rows that changed, not to
history (issue #13). The candidates are the rows the night's build wrote (``built_at`` after the last
publication's watermark, the same rows publication copies to ``reporting``), each compared with its
key's last published version through the primary key.

BI reads them through two views in ``reporting`` (:func:`create_reporting_views`):
``mart_published_values`` (per key: as first published, as known now, how many restatements) and
``mart_value_restatements`` (one row per restatement, with its reason). They read the ops tables with
the publisher's rights, so they cannot be ``security_invoker`` like the other reporting views: each filters
its rows itself by the querying login's scope (:func:`_scope_filter`, the same reporting.bi_unit_scope the
row-level security of chiso.bi.access reads), so a province login sees only its province's units.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from psycopg import sql

# (the reporting views are named where row-level security must know them)
from chiso.bi.access import PUBLISHED_VALUES_VIEW, RESTATEMENTS_VIEW

log = logging.getLogger(__name__)


def _scope_filter(unit_column: str) -> str:
    """Rows the querying login may see: everything for the national login and for roles that are not BI
    logins (the publisher, the data team); otherwise its province's units from reporting.bi_unit_scope.
    current_user inside a view is the querying role, not the view's owner."""
    from chiso.bi.access import BI_ROLE, SCOPE_TABLE, national_login

    return (f"(not pg_has_role(current_user, '{BI_ROLE}', 'usage') "
            f"or pg_has_role(current_user, '{national_login().role}', 'usage') "
            f"or {unit_column} in (select scope.unit_code from {REPORTING}.{SCOPE_TABLE} as scope "
            f"where scope.province_login = current_user))")

OPS = "ops"
REPORTING = "reporting"
VALUES_TABLE = f"{OPS}.published_indicator_values"
SCORES_TABLE = f"{OPS}.published_unit_scores"
REPORTING_VIEWS = (PUBLISHED_VALUES_VIEW, RESTATEMENTS_VIEW)

# Why a published value was restated, as the data says (one code per cause; a restatement may have several).
# Vietnamese for readers of the e-mail and of BI; each label defined here only.
REASONS = {
    "late_dossiers": ("hồ sơ tiếp nhận muộn", "late dossiers"),
    "corrected_versions": ("hồ sơ được cập nhật, điều chỉnh", "corrected dossiers"),
    "rule_version": ("thay đổi phiên bản quy tắc tính", "a changed rule version"),
    # Nothing of the above: ratings, feedback, procedure catalogues or publications changed.
    "other_data": ("dữ liệu khác được cập nhật (đánh giá, phản ánh, danh mục thủ tục)",
                   "other data (ratings, feedback, procedure catalogues)"),
}

VALUE_FIGURES = ("numerator", "denominator", "rate", "score", "rule_version")
SCORE_FIGURES = ("ckmb_score", "tdgq_score", "online_score", "tttt_score", "mdsh_score", "mdhl_score",
                 "total_score", "class_code", "rank_in_peer_set", "peer_count", "rule_version")


@dataclass(frozen=True)
class Recorded:
    values: int        # indicator values written (new keys and restatements)
    restated: int      # of which restatements of a value published before
    scores: int        # unit scores written


def _candidates(alias: str, built_through) -> sql.Composable:
    """The rows the builds since the last publication wrote (all rows when no watermark applies)."""
    if built_through is None:
        return sql.SQL("true")
    return sql.SQL("({alias}.built_at is null or {alias}.built_at > {through})").format(
        alias=sql.Identifier(alias), through=sql.Literal(built_through))


def _differs(figures: tuple[str, ...]) -> sql.Composable:
    return sql.SQL("({}) is distinct from ({})").format(
        sql.SQL(", ").join(sql.Identifier("current", f) for f in figures),
        sql.SQL(", ").join(sql.Identifier("last", f) for f in figures))


def record(conn, publication_id: int, business_date) -> Recorded:
    """Keep the figures this publication publishes that are new or differ from their last published
    version, with each restatement's reason. Runs inside the publication's transaction."""
    engine = ("marts.fct_indicator_values", "marts.fct_unit_scores", "marts.fct_dossier_indicator_contributions",
              "intermediate.int_unit_lineage")
    if not all(conn.execute("select to_regclass(%s) is not null", (name,)).fetchone()[0] for name in engine):
        return Recorded(0, 0, 0)   # a warehouse without the engine's marts publishes no figures
    (built_through,) = conn.execute(
        f"select max(figures_built_through) from {OPS}.reporting_publications where publication_id < %s",
        (publication_id,)).fetchone()
    (newest,) = conn.execute(
        "select greatest((select max(built_at) from marts.fct_indicator_values), "
        "(select max(built_at) from marts.fct_unit_scores))").fetchone()
    values, restated = _record_values(conn, publication_id, business_date, built_through)
    scores = _record_scores(conn, publication_id, business_date, built_through)
    conn.execute(f"update {OPS}.reporting_publications set figures_built_through = %s where publication_id = %s",
                 (newest, publication_id))
    log.info("Publication %s keeps %s new or changed values (%s restatements) and %s unit scores",
             publication_id, f"{values:,}", f"{restated:,}", f"{scores:,}")
    return Recorded(values, restated, scores)


def _record_values(conn, publication_id: int, business_date, built_through) -> tuple[int, int]:
    conn.execute(sql.SQL("""
        create temporary table published_tonight on commit drop as
        select current.unit_code, current.indicator_code, current.period_type,
               current.business_date as as_of_date, current.period_start,
               current.numerator, current.denominator, current.rate, current.score, current.rule_version,
               last.publication_id as previous_publication_id,
               last.rule_version   as previous_rule_version,
               previous.published_at as previous_published_at
        from marts.fct_indicator_values as current
        left join lateral (
            select p.publication_id, p.numerator, p.denominator, p.rate, p.score, p.rule_version
            from {values} as p
            where p.unit_code = current.unit_code and p.indicator_code = current.indicator_code
              and p.period_type = current.period_type and p.as_of_date = current.business_date
            order by p.publication_id desc
            limit 1
        ) as last on true
        left join {ops}.reporting_publications as previous on previous.publication_id = last.publication_id
        where {candidates} and (last.publication_id is null or {differs})
        """).format(values=sql.SQL(VALUES_TABLE), ops=sql.Identifier(OPS),
                    candidates=_candidates("current", built_through), differs=_differs(VALUE_FIGURES)))
    causes = _restatement_causes(conn)
    written = conn.execute(sql.SQL("""
        insert into {values} (unit_code, indicator_code, period_type, as_of_date, publication_id,
                              published_business_date, period_start, numerator, denominator, rate, score,
                              rule_version, previous_publication_id, late_dossiers, corrected_dossiers,
                              rule_version_changed)
        select t.unit_code, t.indicator_code, t.period_type, t.as_of_date, %(publication)s, %(day)s,
               t.period_start, t.numerator, t.denominator, t.rate, t.score, t.rule_version,
               t.previous_publication_id,
               case when t.previous_publication_id is not null then coalesce(c.late_dossiers, 0) end,
               case when t.previous_publication_id is not null then coalesce(c.corrected_dossiers, 0) end,
               case when t.previous_publication_id is not null then t.rule_version <> t.previous_rule_version end
        from published_tonight as t
        left join restatement_causes as c using (unit_code, indicator_code, period_type, as_of_date)
        """).format(values=sql.SQL(VALUES_TABLE)), {"publication": publication_id, "day": business_date}).rowcount
    (restated,) = conn.execute("select count(*) from published_tonight where previous_publication_id is not null"
                               ).fetchone()
    conn.execute("drop table published_tonight; drop table restatement_causes")
    return written, restated


def _restatement_causes(conn) -> int:
    """Per restated value, the dossiers of its population that changed since the value was last
    published: ``late_dossiers`` (their first version was loaded after that publication) and
    ``corrected_dossiers`` (known then, with a version loaded since). A dossier belongs to a value's
    population if it contributes to the indicator (fct_dossier_indicator_contributions) and any of its
    versions, current or earlier, placed it in the value's unit (int_unit_lineage) and period: a dossier
    corrected out of the population restates the value it left.

    Cost: the dossier loads since the oldest restated value's publication (through raw.load_ledger and
    the raw tables' business_date index), and their dossiers' versions through the MaHoSo index."""
    conn.execute("""
        create temporary table restatement_causes on commit drop as
        with restated as (
            select * from published_tonight where previous_publication_id is not null
        ),
        changed_loads as (
            select ledger.load_id, ledger.business_date
            from raw.load_ledger as ledger
            where ledger.entity = 'dossiers' and ledger.status in ('loaded', 'superseded')
              and coalesce(ledger.finished_at, 'infinity') > (select min(previous_published_at) from restated)
        ),
        changed as (
            -- Dossiers with a version loaded since the oldest restated value was published: when last.
            select rows.record ->> 'MaHoSo' as dossier_code, max(rows.loaded_at) as last_loaded_at
            from raw.portal__dossiers as rows
            join changed_loads using (load_id, business_date)
            group by 1
        ),
        known as (
            select changed.dossier_code, changed.last_loaded_at, first.first_loaded_at
            from changed
            cross join lateral (
                select min(versions.loaded_at) as first_loaded_at from raw.portal__dossiers as versions
                where versions.record ->> 'MaHoSo' = changed.dossier_code
            ) as first
        ),
        indicators as (
            select distinct c.dossier_code, c.indicator_code, c.unit_code, c.cohort_date
            from marts.fct_dossier_indicator_contributions as c
            where c.dossier_code in (select dossier_code from known)
        ),
        earlier_positions as (
            -- The unit and reception day of every version (the staging models' reading of the portal's
            -- yyyyMMddHHmmss, macro portal_timestamp), for dossiers a correction moved.
            select distinct versions.record ->> 'MaHoSo' as dossier_code,
                   versions.record ->> 'MaDonViTiepNhan' as unit_code,
                   to_timestamp(nullif(versions.record ->> 'NgayTiepNhan', ''), 'YYYYMMDDHH24MISS')::date
                       as cohort_date
            from known
            join raw.portal__dossiers as versions on versions.record ->> 'MaHoSo' = known.dossier_code
        ),
        positions as (
            select dossier_code, indicator_code, unit_code, cohort_date from indicators
            union
            select earlier.dossier_code, contributes.indicator_code, earlier.unit_code, earlier.cohort_date
            from earlier_positions as earlier
            join (select distinct dossier_code, indicator_code from indicators) as contributes using (dossier_code)
            where earlier.cohort_date is not null
        )
        select k.unit_code, k.indicator_code, k.period_type, k.as_of_date,
               count(distinct p.dossier_code) filter (where known.first_loaded_at > k.previous_published_at)
                   as late_dossiers,
               count(distinct p.dossier_code) filter (where known.first_loaded_at <= k.previous_published_at)
                   as corrected_dossiers
        from restated as k
        join intermediate.int_unit_lineage as lineage
          on lineage.reporting_unit_code = k.unit_code
         and k.as_of_date >= lineage.window_from
         and (lineage.window_to is null or k.as_of_date <= lineage.window_to)
        join positions as p
          on p.unit_code = lineage.member_unit_code and p.indicator_code = k.indicator_code
         and p.cohort_date between k.period_start and k.as_of_date
        join known on known.dossier_code = p.dossier_code and known.last_loaded_at > k.previous_published_at
        group by 1, 2, 3, 4
        """)
    return conn.execute("select count(*) from restatement_causes").fetchone()[0]


def _record_scores(conn, publication_id: int, business_date, built_through) -> int:
    return conn.execute(sql.SQL("""
        insert into {scores} (unit_code, period_type, as_of_date, publication_id, published_business_date,
                              {figures}, previous_publication_id)
        select current.unit_code, current.period_type, current.business_date, %(publication)s, %(day)s,
               {current_figures}, last.publication_id
        from marts.fct_unit_scores as current
        left join lateral (
            select p.publication_id, {last_figures}
            from {scores} as p
            where p.unit_code = current.unit_code and p.period_type = current.period_type
              and p.as_of_date = current.business_date
            order by p.publication_id desc
            limit 1
        ) as last on true
        where {candidates} and (last.publication_id is null or {differs})
        """).format(
            scores=sql.SQL(SCORES_TABLE),
            figures=sql.SQL(", ").join(map(sql.Identifier, SCORE_FIGURES)),
            current_figures=sql.SQL(", ").join(sql.Identifier("current", f) for f in SCORE_FIGURES),
            last_figures=sql.SQL(", ").join(sql.Identifier("p", f) for f in SCORE_FIGURES),
            candidates=_candidates("current", built_through), differs=_differs(SCORE_FIGURES)),
        {"publication": publication_id, "day": business_date}).rowcount


def _reason_expression(language: int) -> str:
    """The restatement's causes as one text, from the counts (codes, or labels in a language)."""
    def label(code: str) -> str:
        text = code if language < 0 else REASONS[code][language]
        return "'" + text.replace("'", "''") + "'"
    return f"""coalesce(nullif(concat_ws(', ',
                   case when r.late_dossiers > 0 then {label('late_dossiers')} end,
                   case when r.corrected_dossiers > 0 then {label('corrected_versions')} end,
                   case when r.rule_version_changed then {label('rule_version')} end), ''),
               {label('other_data')})"""


def create_reporting_views(conn) -> None:
    """The BI marts of published figures: views over the ops tables (the BI role reads them through the
    views, with the publisher's rights, never the ops schema itself)."""
    conn.execute(sql.SQL(f"""
        create or replace view {{schema}}.{PUBLISHED_VALUES_VIEW} as
        select unit_code, indicator_code, period_type, as_of_date, min(period_start) as period_start,
               min(publication_id) as first_publication_id,
               min(published_business_date) as first_published_business_date,
               (array_agg(numerator order by publication_id))[1]        as first_numerator,
               (array_agg(denominator order by publication_id))[1]      as first_denominator,
               (array_agg(rate order by publication_id))[1]             as first_rate,
               (array_agg(rule_version order by publication_id))[1]     as first_rule_version,
               max(publication_id) as latest_publication_id,
               max(published_business_date) as latest_published_business_date,
               (array_agg(numerator order by publication_id desc))[1]   as numerator_now,
               (array_agg(denominator order by publication_id desc))[1] as denominator_now,
               (array_agg(rate order by publication_id desc))[1]        as rate_now,
               (array_agg(rule_version order by publication_id desc))[1] as rule_version_now,
               count(*) - 1 as restatements
        from {VALUES_TABLE}
        where {_scope_filter("unit_code")}
        group by unit_code, indicator_code, period_type, as_of_date
        """).format(schema=sql.Identifier(REPORTING)))
    conn.execute(sql.SQL(f"""
        create or replace view {{schema}}.{RESTATEMENTS_VIEW} as
        select r.unit_code, r.indicator_code, r.period_type, r.period_start, r.as_of_date,
               row_number() over (partition by r.unit_code, r.indicator_code, r.period_type, r.as_of_date
                                  order by r.publication_id) as restatement_number,
               r.publication_id, r.published_business_date, publication.published_at,
               r.previous_publication_id, previous.published_business_date as previous_published_business_date,
               previous.numerator as previous_numerator, previous.denominator as previous_denominator,
               previous.rate as previous_rate, previous.score as previous_score,
               previous.rule_version as previous_rule_version,
               r.numerator, r.denominator, r.rate, r.score, r.rule_version,
               r.rate - previous.rate as rate_change,
               r.denominator - previous.denominator as denominator_change,
               r.late_dossiers, r.corrected_dossiers, r.rule_version_changed,
               {_reason_expression(-1)} as reason_codes,
               {_reason_expression(0)} as reason_vi
        from {VALUES_TABLE} as r
        join {VALUES_TABLE} as previous
          on previous.unit_code = r.unit_code and previous.indicator_code = r.indicator_code
         and previous.period_type = r.period_type and previous.as_of_date = r.as_of_date
         and previous.publication_id = r.previous_publication_id
        join {OPS}.reporting_publications as publication on publication.publication_id = r.publication_id
        where r.previous_publication_id is not null and {_scope_filter("r.unit_code")}
        """).format(schema=sql.Identifier(REPORTING)))
    comments = {
        PUBLISHED_VALUES_VIEW: "Every published value of fct_indicator_values (unit, indicator, period, as-of day): as "
                               "first published, as known now (its latest publication), and how many times it was "
                               "restated since (docs/publication.md, 'As published').",
        RESTATEMENTS_VIEW: "Each restatement of a published value: the value before and after, the publication that "
                           "restated it, and why, counted from data: late dossiers (first loaded after the previous "
                           "publication), corrected dossiers (known then, a version loaded since), a changed rule "
                           "version, or other data (docs/publication.md).",
    }
    for view, comment in comments.items():
        conn.execute(sql.SQL("comment on view {} is {}").format(sql.Identifier(REPORTING, view), sql.Literal(comment)))
