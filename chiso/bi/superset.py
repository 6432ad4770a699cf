"""The dashboards of bi/dashboards as an Apache Superset import bundle (a ZIP of YAML files).

Superset's dashboard import (``POST /api/v1/dashboard/import/``) takes a bundle of a database, datasets,
charts and dashboards. Each card becomes a virtual dataset (its SQL, with the parameters filled in: Superset
shows one province per bundle, and the database login's row-level security narrows it further) and one
chart; each dashboard file one dashboard. Every object's UUID derives from the dashboard's slug and the
card's key, so importing again overwrites the same objects and never duplicates them.

    python -m chiso.bi.superset --warehouse URL --province 000.00.00.H15 --login-url postgresql://bi_login@host/db \
        --out chiso-superset.zip

The columns of each dataset are read from the warehouse (a card's query run with ``limit 0``).
"""

from __future__ import annotations

import argparse
import io
import uuid
import zipfile
from datetime import date, datetime, timezone
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import psycopg
import yaml

from chiso.bi.dashboards import Card, Dashboard, bind, inline, load_all

NAMESPACE = uuid.UUID("5b0d7c0e-7660-4c71-9a1e-766766766766")
DATABASE_NAME = "chiso reporting"
DATABASE_FILE = "databases/chiso_reporting.yaml"
VERSION = "1.0.0"
# Postgres type OIDs → Superset's generic column types (those the cards' columns have).
_TYPES = {16: "BOOLEAN", 20: "BIGINT", 21: "INTEGER", 23: "INTEGER", 25: "STRING", 1043: "STRING",
          700: "FLOAT", 701: "FLOAT", 1700: "NUMERIC", 1082: "DATE", 1114: "TIMESTAMP", 1184: "TIMESTAMP"}
# How many grid columns (of 12) a card takes, and its height in grid units.
_SIZE = {"scalar": (3, 30), "table": (12, 50), "bar": (6, 50), "line": (6, 50)}
NUMBER_FORMAT = ",.2f"  # with the Vietnamese D3 locale of superset_config: 70,48
INTEGER_FORMAT = ",d"  # 1.173
_NUMBERS = ("NUMERIC", "FLOAT", "BIGINT", "INTEGER")


def object_uuid(*names: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(names)))


def _masked(login_url: str) -> str:
    """The SQLAlchemy URI Superset stores, with the password left out (given at import)."""
    parts = urlsplit(login_url)
    user = parts.username or ""
    host = parts.hostname or "localhost"
    netloc = f"{user}:XXXXXXXXXX@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(("postgresql+psycopg2", netloc, parts.path, "", ""))


def _metric(column: str) -> dict:
    # Each chart's dataset already holds the card's figures: the metric only picks the value up.
    return {"expressionType": "SQL", "sqlExpression": f'MAX("{column}")', "label": column,
            "optionName": f"metric_{uuid.uuid5(NAMESPACE, column).hex[:12]}"}


def _chart_params(card: Card, columns: list[tuple[str, str]], dataset_id: str) -> tuple[str, dict]:
    names = [name for name, _ in columns]
    common = {"datasource": f"{dataset_id}__table", "adhoc_filters": [], "extra_form_data": {}}
    if card.display == "scalar":
        return "big_number_total", {**common, "viz_type": "big_number_total", "metric": _metric(names[0]),
                                    "header_font_size": 0.4, "subheader_font_size": 0.15,
                                    "y_axis_format": NUMBER_FORMAT}
    if card.display == "table":
        return "table", {**common, "viz_type": "table", "query_mode": "raw", "all_columns": names,
                         "order_by_cols": [], "row_limit": 10000, "server_pagination": False,
                         "server_page_length": 0, "include_search": False, "show_cell_bars": False, "table_timestamp_format": "%d/%m/%Y",
                         "column_config": {name: {"d3NumberFormat": NUMBER_FORMAT if kind in ("NUMERIC", "FLOAT")
                                                  else INTEGER_FORMAT}
                                           for name, kind in columns if kind in _NUMBERS}}
    viz = "echarts_timeseries_bar" if card.display == "bar" else "echarts_timeseries_line"
    return viz, {**common, "viz_type": viz, "x_axis": names[0], "metrics": [_metric(names[1])], "groupby": [],
                 "time_grain_sqla": "P1D", "x_axis_sort_asc": True, "row_limit": 10000, "show_legend": False,
                 "show_value": True, "y_axis_format": NUMBER_FORMAT, "x_axis_time_format": "%d/%m/%Y",
                 "rich_tooltip": True, "truncate_metric": True}


def _position(dashboard: Dashboard) -> dict:
    position = {"DASHBOARD_VERSION_KEY": "v2",
                "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
                "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
                "HEADER_ID": {"id": "HEADER_ID", "type": "HEADER", "meta": {"text": dashboard.title}}}
    row, used = None, 12
    for index, card in enumerate(dashboard.cards):
        width, height = _SIZE[card.display]
        if used + width > 12:
            row = f"ROW-{index}"
            position[row] = {"type": "ROW", "id": row, "children": [], "parents": ["ROOT_ID", "GRID_ID"],
                             "meta": {"background": "BACKGROUND_TRANSPARENT"}}
            position["GRID_ID"]["children"].append(row)
            used = 0
        chart = f"CHART-{card.key}"
        position[chart] = {"type": "CHART", "id": chart, "children": [], "parents": ["ROOT_ID", "GRID_ID", row],
                           # chartId is a placeholder: the import maps the uuid to the chart's real id.
                           "meta": {"chartId": index + 1, "uuid": object_uuid(dashboard.slug, card.key, "chart"),
                                    "width": width,
                                    "height": height, "sliceName": card.title}}
        position[row]["children"].append(chart)
        used += width
    return position


def displayed(value) -> str:
    """A value as the bundle's charts show it with the Vietnamese locale (70,48; 1.173; 15/11/2024)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,d}".replace(",", ".")
    if isinstance(value, (float, Decimal)):
        return f"{value:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    return str(value)


def card_columns(conn, card: Card, values: dict[str, str]) -> list[tuple[str, str]]:
    cursor = conn.execute(f"select * from ({bind(card.sql).rstrip().rstrip(';')}) as card limit 0", values)
    return [(column.name, _TYPES.get(column.type_code, "STRING")) for column in cursor.description]


def bundle(dashboards: list[Dashboard], given: dict[str, str], login_url: str, conn) -> bytes:
    """The import ZIP for ``dashboards`` with parameters ``given``; ``conn`` reads the cards' columns."""
    database_uuid = object_uuid("database", DATABASE_NAME)
    files = {
        "metadata.yaml": {"version": VERSION, "type": "Dashboard",
                          "timestamp": datetime.now(timezone.utc).isoformat()},
        DATABASE_FILE: {"database_name": DATABASE_NAME, "sqlalchemy_uri": _masked(login_url),
                        "cache_timeout": None, "expose_in_sqllab": True, "allow_run_async": False,
                        "allow_ctas": False, "allow_cvas": False, "allow_dml": False, "allow_csv_upload": False,
                        "extra": {"allows_virtual_table_explore": True}, "uuid": database_uuid,
                        "version": VERSION},
    }
    for dashboard in dashboards:
        values = dashboard.values(given)
        for card in dashboard.cards:
            columns = card_columns(conn, card, values)
            dataset_uuid = object_uuid(dashboard.slug, card.key, "dataset")
            table_name = f"{dashboard.slug}__{card.key}"
            files[f"datasets/{DATABASE_NAME.replace(' ', '_')}/{table_name}.yaml"] = {
                "table_name": table_name, "schema": "reporting", "sql": inline(card.sql, values),
                "description": card.description, "main_dttm_col": None, "cache_timeout": None,
                "filter_select_enabled": True, "normalize_columns": False, "params": None,
                "template_params": None, "extra": None, "uuid": dataset_uuid, "database_uuid": database_uuid,
                "version": VERSION, "metrics": [],
                "columns": [{"column_name": name, "type": kind, "is_dttm": kind in ("DATE", "TIMESTAMP"),
                             "is_active": True, "groupby": True, "filterable": True, "expression": None,
                             "verbose_name": None, "description": None, "python_date_format": None,
                             "extra": None} for name, kind in columns]}
            viz, params = _chart_params(card, columns, dataset_uuid)
            files[f"charts/{table_name}.yaml"] = {
                "slice_name": card.title, "description": card.description, "viz_type": viz, "params": params,
                "query_context": None, "cache_timeout": None, "uuid": object_uuid(dashboard.slug, card.key, "chart"),
                "version": VERSION, "dataset_uuid": dataset_uuid}
        files[f"dashboards/{dashboard.slug}.yaml"] = {
            "dashboard_title": dashboard.title, "description": dashboard.description, "slug": dashboard.slug,
            "css": "", "uuid": object_uuid(dashboard.slug, "dashboard"), "position": _position(dashboard),
            "metadata": {"color_scheme": "supersetColors", "refresh_frequency": 0, "expanded_slices": {},
                         "timed_refresh_immune_slices": [], "cross_filters_enabled": False,
                         "native_filter_configuration": []},
            "published": True, "version": VERSION}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(f"chiso_dashboards/{name}",
                             yaml.safe_dump(content, allow_unicode=True, sort_keys=False))
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the Superset import bundle of bi/dashboards.")
    parser.add_argument("--warehouse", required=True, help="URL of a published warehouse (to read columns)")
    parser.add_argument("--province", required=True, help="unit code of the province the bundle shows")
    parser.add_argument("--login-url", required=True, help="the BI login Superset connects as (no password)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    with psycopg.connect(args.warehouse) as conn:
        data = bundle(load_all(), {"province": args.province}, args.login_url, conn)
    with open(args.out, "wb") as out:
        out.write(data)
    print(f"wrote {args.out}: import it with POST /api/v1/dashboard/import/ (passwords for {DATABASE_FILE})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
