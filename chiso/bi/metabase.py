"""Metabase provisioned from code, through its documented REST API (docs: metabase.com/docs/latest/api).

    python -m chiso.bi.metabase            # the compose service metabase-setup runs this once

1. First start: ``GET /api/session/properties`` gives the setup token; ``POST /api/setup`` creates the admin
   (CHISO_METABASE_ADMIN_EMAIL / CHISO_METABASE_ADMIN_PASSWORD, from secrets) with Vietnamese as the site
   locale. Later runs log in with the same admin (``POST /api/session``).
2. The warehouse: ``POST /api/database`` (or ``PUT`` when one of that name exists) with the BI login
   (CHISO_METABASE_WAREHOUSE_URL and its password) and the schema filter ``reporting``; then a schema sync.
3. A collection "chiso" and, from bi/dashboards, one native-SQL question per card (its ``{{province}}``…
   template tags) and one dashboard per file, with the dashboard's parameters wired to the questions' tags
   and the drill-throughs as click behaviours. Everything is found by name and updated in place: running
   again changes nothing and never duplicates.
4. Descriptions (table and column comments of ``reporting``) are pushed to Metabase's data model
   (``PUT /api/table/:id``, ``PUT /api/field/:id``) with semantic types for codes, names and scores.

After each publication :func:`notify_sync` asks Metabase to re-sync (``POST /api/notify/db/:id`` with the
``X-METABASE-APIKEY`` header, Metabase's MB_API_KEY); it does nothing unless CHISO_METABASE_URL,
CHISO_METABASE_API_KEY and CHISO_METABASE_DATABASE_ID are set.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

import requests

from chiso.core import settings
from chiso.bi.dashboards import Card, Dashboard, load_all

log = logging.getLogger(__name__)

COLLECTION = "chiso"
COLLECTION_DESCRIPTION = "Bảng điều khiển chỉ số phục vụ người dân, doanh nghiệp (Quyết định 766/QĐ-TTg)."
DATABASE_NAME = "chiso reporting"
DISPLAY = {"scalar": "scalar", "table": "table", "bar": "bar", "line": "line"}
_SIZE = {"scalar": (6, 4), "table": (24, 8), "bar": (12, 6), "line": (12, 6)}  # Metabase's 24-column grid
TIMEOUT = 60
# Semantic types Metabase understands, by column name (the rest keep what Metabase's sync guessed).
SEMANTIC_TYPES = {"unit_code": "type/PK", "unit_name": "type/Name", "total_score": "type/Score",
                  "class_name_vi": "type/Category", "status_vi": "type/Category", "business_date": "type/CreationDate"}


class MetabaseFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Admin:
    email: str
    password: str


class Metabase:
    def __init__(self, url: str, session: requests.Session | None = None):
        self.url = url.rstrip("/")
        self.http = session or requests.Session()

    def call(self, method: str, path: str, **kwargs):
        answer = self.http.request(method, f"{self.url}{path}", timeout=TIMEOUT, **kwargs)
        if answer.status_code >= 400:
            raise MetabaseFailed(f"Metabase answered {answer.status_code} to {method} {path}: {answer.text[:300]}")
        return answer.json() if answer.content else None

    # ------------------------------------------------------------------ admin and warehouse
    def log_in(self, admin: Admin) -> None:
        properties = self.call("GET", "/api/session/properties")
        if properties.get("setup-token") and not properties.get("has-user-setup"):
            answer = self.call("POST", "/api/setup", json={
                "token": properties["setup-token"],
                "user": {"first_name": "Quản trị", "last_name": "chiso", "email": admin.email,
                         "password": admin.password, "site_name": "chiso"},
                "prefs": {"site_name": "chiso", "site_locale": "vi", "allow_tracking": False}})
        else:
            answer = self.call("POST", "/api/session", json={"username": admin.email, "password": admin.password})
        self.http.headers["X-Metabase-Session"] = answer["id"]

    def _list(self, path: str, **params) -> list[dict]:
        answer = self.call("GET", path, params=params)
        return answer["data"] if isinstance(answer, dict) and "data" in answer else answer

    def ensure_database(self, host: str, port: int, dbname: str, user: str, password: str) -> int:
        body = {"engine": "postgres", "name": DATABASE_NAME, "is_full_sync": True,
                "details": {"host": host, "port": port, "dbname": dbname, "user": user, "password": password,
                            "ssl": False, "schema-filters-type": "inclusion", "schema-filters-patterns": "reporting"}}
        existing = [d for d in self._list("/api/database") if d["name"] == DATABASE_NAME]
        if existing:
            database_id = existing[0]["id"]
            self.call("PUT", f"/api/database/{database_id}", json=body)
        else:
            database_id = self.call("POST", "/api/database", json=body)["id"]
        self.call("POST", f"/api/database/{database_id}/sync_schema")
        return database_id

    def push_descriptions(self, database_id: int, comments: dict[str, dict[str | None, str]]) -> int:
        """Table and column descriptions (and semantic types) of ``reporting`` into Metabase's data model."""
        metadata = self.call("GET", f"/api/database/{database_id}/metadata")
        changed = 0
        for table in metadata.get("tables", []):
            texts = comments.get(table["name"], {})
            if texts.get(None) and table.get("description") != texts[None]:
                self.call("PUT", f"/api/table/{table['id']}", json={"description": texts[None]})
                changed += 1
            for field in table.get("fields", []):
                update = {}
                if texts.get(field["name"]) and field.get("description") != texts[field["name"]]:
                    update["description"] = texts[field["name"]]
                semantic = SEMANTIC_TYPES.get(field["name"])
                if semantic and field.get("semantic_type") != semantic and not (
                        semantic == "type/PK" and table["name"] != "dim_units"):
                    update["semantic_type"] = semantic
                if update:
                    self.call("PUT", f"/api/field/{field['id']}", json=update)
                    changed += 1
        return changed

    # ------------------------------------------------------------------ collection, questions, dashboards
    def ensure_collection(self) -> int:
        for collection in self._list("/api/collection"):
            if collection.get("name") == COLLECTION and not collection.get("archived") and collection.get("id") != "root":
                return collection["id"]
        return self.call("POST", "/api/collection", json={"name": COLLECTION, "description": COLLECTION_DESCRIPTION})["id"]

    def _items(self, collection_id: int, model: str) -> dict[str, int]:
        items = self._list(f"/api/collection/{collection_id}/items", models=model)
        return {item["name"]: item["id"] for item in items}

    @staticmethod
    def card_body(dashboard: Dashboard, card: Card, database_id: int, collection_id: int) -> dict:
        parameters = {p.name: p for p in dashboard.parameters}
        tags = {name: {"id": f"{dashboard.slug}-{name}", "name": name, "display-name": parameters[name].title,
                       "type": "text", "required": parameters[name].default is not None,
                       **({"default": parameters[name].default} if parameters[name].default else {})}
                for name in card.tags}
        return {"name": card.title, "description": card.description, "display": DISPLAY[card.display],
                "collection_id": collection_id, "visualization_settings": {},
                "dataset_query": {"type": "native", "database": database_id,
                                  "native": {"query": card.sql, "template-tags": tags}}}

    def ensure_cards(self, dashboard: Dashboard, database_id: int, collection_id: int) -> dict[str, int]:
        existing = self._items(collection_id, "card")
        ids = {}
        for card in dashboard.cards:
            body = self.card_body(dashboard, card, database_id, collection_id)
            if card.title in existing:
                ids[card.key] = existing[card.title]
                self.call("PUT", f"/api/card/{ids[card.key]}", json=body)
            else:
                ids[card.key] = self.call("POST", "/api/card", json=body)["id"]
        return ids

    def ensure_dashboard(self, dashboard: Dashboard, card_ids: dict[str, int], collection_id: int,
                         dashboard_ids: dict[str, int]) -> int:
        existing = self._items(collection_id, "dashboard")
        parameters = [{"id": f"{dashboard.slug}-{p.name}", "name": p.title, "slug": p.name, "type": "category",
                       **({"default": p.default} if p.default else {})} for p in dashboard.parameters]
        if dashboard.title in existing:
            dashboard_id = existing[dashboard.title]
        else:
            dashboard_id = self.call("POST", "/api/dashboard", json={
                "name": dashboard.title, "description": dashboard.description, "collection_id": collection_id})["id"]
        dashcards, row, col = [], 0, 0
        for index, card in enumerate(dashboard.cards):
            width, height = _SIZE[card.display]
            if col + width > 24:
                row, col = row + height, 0
            settings_ = {}
            if card.drill_through and card.drill_through["dashboard"] in dashboard_ids:
                target = card.drill_through
                settings_["column_settings"] = {f'["name","{target["column"]}"]': {"click_behavior": {
                    "type": "link", "linkType": "dashboard", "targetId": dashboard_ids[target["dashboard"]],
                    "parameterMapping": {f"{target['dashboard']}-{target['parameter']}": {
                        "id": f"{target['dashboard']}-{target['parameter']}",
                        "source": {"type": "column", "id": target["column"], "name": target["column"]},
                        "target": {"type": "parameter", "id": f"{target['dashboard']}-{target['parameter']}"}}}}}}
            dashcards.append({
                "id": -(index + 1), "card_id": card_ids[card.key], "row": row, "col": col, "size_x": width,
                "size_y": height, "visualization_settings": settings_,
                "parameter_mappings": [{"parameter_id": f"{dashboard.slug}-{name}", "card_id": card_ids[card.key],
                                        "target": ["variable", ["template-tag", name]]} for name in card.tags]})
            col += width
        self.call("PUT", f"/api/dashboard/{dashboard_id}", json={
            "name": dashboard.title, "description": dashboard.description, "collection_id": collection_id,
            "parameters": parameters, "dashcards": dashcards})
        return dashboard_id


def reporting_comments(url: str | None = None) -> dict[str, dict[str | None, str]]:
    """Comments of reporting's relations and columns (dbt's descriptions, copied by the publication)."""
    from chiso.core.warehouse import connect

    comments: dict[str, dict[str | None, str]] = {}
    with connect(url) as conn:
        for relation, column, text in conn.execute(
                """select c.relname, a.attname, coalesce(col_description(c.oid, a.attnum), '')
                   from pg_class c join pg_namespace n on n.oid = c.relnamespace
                   join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                   where n.nspname = 'reporting'
                   union all
                   select c.relname, null, coalesce(obj_description(c.oid, 'pg_class'), '')
                   from pg_class c join pg_namespace n on n.oid = c.relnamespace
                   where n.nspname = 'reporting' and c.relkind in ('r', 'v', 'p')""").fetchall():
            if text:
                comments.setdefault(relation, {})[column] = text
    return comments


def provision(metabase: Metabase, admin: Admin, warehouse: dict, comments: dict | None = None,
              dashboards: list[Dashboard] | None = None) -> dict[str, int]:
    """Everything of steps 1–4; returns the dashboards' ids by slug."""
    metabase.log_in(admin)
    database_id = metabase.ensure_database(**warehouse)
    if comments:
        metabase.push_descriptions(database_id, comments)
    collection_id = metabase.ensure_collection()
    dashboards = dashboards if dashboards is not None else load_all()
    ids: dict[str, int] = {}
    # Drill-through targets first, so that the dashboards linking to them know their ids.
    for dashboard in sorted(dashboards, key=lambda d: any(c.drill_through for c in d.cards)):
        card_ids = metabase.ensure_cards(dashboard, database_id, collection_id)
        ids[dashboard.slug] = metabase.ensure_dashboard(dashboard, card_ids, collection_id, ids)
    print(f"Metabase at {metabase.url}: warehouse database id {database_id} (CHISO_METABASE_DATABASE_ID), "
          f"collection {collection_id}, dashboards {ids}")
    return ids


def notify_sync(timeout: float = 30) -> bool:
    """Ask Metabase to re-sync the warehouse after a publication; False (and nothing sent) when not configured."""
    url, key, database_id = (settings.get("CHISO_METABASE_URL"), settings.get("CHISO_METABASE_API_KEY"),
                             settings.get("CHISO_METABASE_DATABASE_ID"))
    if not (url and key and database_id):
        return False
    answer = requests.post(f"{url.rstrip('/')}/api/notify/db/{int(database_id)}", json={"scan": "schema"},
                           headers={"X-METABASE-APIKEY": key}, timeout=timeout)
    if answer.status_code >= 400:
        # A BI tool that is down must not fail the night's publication: say so and go on.
        log.warning("Metabase at %s did not accept the re-sync of database %s: %s", url, database_id,
                    answer.status_code)
        return False
    return True


def main() -> int:
    from urllib.parse import urlsplit

    logging.basicConfig(level=logging.INFO)
    try:
        return _provision_from_settings()
    except settings.SettingError as exc:  # a missing or wrong setting: its one sentence, no traceback
        print(exc, file=sys.stderr)
        return 2


def _provision_from_settings() -> int:
    from urllib.parse import urlsplit

    login = urlsplit(settings.require("CHISO_METABASE_WAREHOUSE_URL"))
    warehouse = {"host": login.hostname, "port": login.port or 5432, "dbname": login.path.lstrip("/"),
                 "user": login.username, "password": settings.require("CHISO_METABASE_WAREHOUSE_PASSWORD")}
    provision(Metabase(settings.require("CHISO_METABASE_URL")),
              Admin(settings.require("CHISO_METABASE_ADMIN_EMAIL"), settings.require("CHISO_METABASE_ADMIN_PASSWORD")),
              warehouse, reporting_comments())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
