"""Metabase provisioning against a real HTTP server that plays Metabase's REST API.

Metabase itself cannot run here (no Docker engine, no registry package), so this server keeps what the
documented endpoints create (users, databases, collections, cards, dashboards, fields) in memory and
answers as Metabase does; the test checks what chiso.bi.metabase asks for, and that a second run changes
nothing and duplicates nothing. The notify call after a publication is checked the same way.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chiso.bi import metabase
from chiso.bi.dashboards import load_all

API_KEY = "test-api-key"


class FakeMetabase:
    def __init__(self):
        self.requests: list[tuple[str, str, dict | None]] = []
        self.setup_done, self.objects, self.next_id = False, {"database": {}, "collection": {}, "card": {},
                                                             "dashboard": {}}, 1
        self.fields = {1: {"id": 1, "name": "unit_code", "description": None, "semantic_type": None},
                       2: {"id": 2, "name": "unit_name", "description": None, "semantic_type": None}}
        self.tables = {1: {"id": 1, "name": "dim_units", "description": None}}

    def handle(self, method: str, path: str, body: dict | None, headers) -> tuple[int, object]:
        self.requests.append((method, path, body))
        parts = path.split("?")[0].strip("/").split("/")[1:]  # after "api"
        if parts == ["session", "properties"]:
            return 200, {"setup-token": "tok", "has-user-setup": self.setup_done}
        if parts == ["setup"]:
            assert body["token"] == "tok" and not self.setup_done
            self.setup_done = True
            return 200, {"id": "session-1"}
        if parts == ["session"]:
            return 200, {"id": "session-2"}
        if parts[:2] == ["notify", "db"]:
            return (200, {"success": True}) if headers.get("X-METABASE-APIKEY") == API_KEY else (403, "bad key")
        if headers.get("X-Metabase-Session") not in ("session-1", "session-2"):
            return 401, "Unauthenticated"
        kind = parts[0]
        if len(parts) == 3 and parts[2] == "items":  # /api/collection/:id/items?models=
            model = path.split("models=")[1]
            return 200, {"data": [{"id": o["id"], "name": o["name"]} for o in self.objects[model].values()
                                  if o.get("collection_id") == int(parts[1])]}
        if parts[-1] == "metadata":
            return 200, {"tables": [{**t, "fields": list(self.fields.values())} for t in self.tables.values()]}
        if parts[-1] == "sync_schema":
            return 200, {"status": "ok"}
        if kind == "table" and method == "PUT":
            self.tables[int(parts[1])].update(body)
            return 200, self.tables[int(parts[1])]
        if kind == "field" and method == "PUT":
            self.fields[int(parts[1])].update(body)
            return 200, self.fields[int(parts[1])]
        store = self.objects[kind]
        if method == "GET":
            return 200, {"data": list(store.values())} if kind == "database" else list(store.values())
        if method == "POST":
            obj = {**body, "id": self.next_id}
            self.next_id += 1
            store[obj["id"]] = obj
            return 200, obj
        if method == "PUT":
            store[int(parts[1])].update(body)
            return 200, store[int(parts[1])]
        return 404, "not found"


@pytest.fixture
def fake():
    state = FakeMetabase()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, answer = state.handle(self.command, self.path, body, self.headers)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


WAREHOUSE = {"host": "postgres", "port": 5432, "dbname": "chiso", "user": "bi_login", "password": "secret-pw"}
COMMENTS = {"dim_units": {None: "Đơn vị", "unit_code": "Mã đơn vị", "unit_name": "Tên đơn vị"}}


def test_provisioning_sets_metabase_up_from_the_files_and_a_second_run_changes_nothing(fake):
    admin = metabase.Admin("admin@example.org", "admin-pw")
    dashboards = load_all()
    ids = metabase.provision(metabase.Metabase(fake.url), admin, WAREHOUSE, COMMENTS)
    assert set(ids) == {d.slug for d in dashboards}
    (database,) = fake.objects["database"].values()
    assert database["details"]["schema-filters-patterns"] == "reporting" and database["details"]["user"] == "bi_login"
    cards = fake.objects["card"].values()
    assert len(cards) == sum(len(d.cards) for d in dashboards)
    for card in cards:
        native = card["dataset_query"]["native"]
        assert card["dataset_query"]["type"] == "native" and "reporting." in native["query"]
        assert set(native["template-tags"]) == set(re.findall(r"\{\{(\w+)\}\}", native["query"]))
    overview = next(d for d in fake.objects["dashboard"].values() if d["name"].startswith("Tổng quan"))
    assert [p["slug"] for p in overview["parameters"]] == ["province"]
    assert all(m["target"] == ["variable", ["template-tag", "province"]]
               for dashcard in overview["dashcards"] for m in dashcard["parameter_mappings"])
    ranking = next(d for d in fake.objects["dashboard"].values() if d["name"].startswith("Xếp hạng"))
    click = json.dumps(ranking["dashcards"][0]["visualization_settings"], ensure_ascii=False)
    assert f'"targetId": {ids["ho_so_sau_gia_tri"]}' in click
    assert fake.tables[1]["description"] == "Đơn vị" and fake.fields[1]["semantic_type"] == "type/PK"
    assert fake.fields[2]["description"] == "Tên đơn vị"
    posts = [r for r in fake.requests if r[0] == "POST" and r[1] == "/api/setup"]
    assert len(posts) == 1

    snapshot = json.dumps(fake.objects, sort_keys=True, ensure_ascii=False)
    fake.requests.clear()
    assert metabase.provision(metabase.Metabase(fake.url), admin, WAREHOUSE, COMMENTS) == ids
    assert json.dumps(fake.objects, sort_keys=True, ensure_ascii=False) == snapshot
    created = [r[1] for r in fake.requests if r[0] == "POST" and r[1] in ("/api/card", "/api/dashboard",
                                                                          "/api/collection", "/api/database",
                                                                          "/api/setup")]
    assert created == []
    assert not [r for r in fake.requests if r[1].startswith(("/api/table", "/api/field"))]  # already up to date


def test_the_resync_notice_is_sent_when_configured_and_a_no_op_otherwise(fake, monkeypatch):
    for name in ("CHISO_METABASE_URL", "CHISO_METABASE_API_KEY", "CHISO_METABASE_DATABASE_ID"):
        monkeypatch.delenv(name, raising=False)
    assert metabase.notify_sync() is False and fake.requests == []
    monkeypatch.setenv("CHISO_METABASE_URL", fake.url)
    monkeypatch.setenv("CHISO_METABASE_API_KEY", API_KEY)
    monkeypatch.setenv("CHISO_METABASE_DATABASE_ID", "7")
    assert metabase.notify_sync() is True
    assert fake.requests == [("POST", "/api/notify/db/7", {"scan": "schema"})]
    monkeypatch.setenv("CHISO_METABASE_API_KEY", "wrong")
    assert metabase.notify_sync() is False  # a BI tool's refusal never fails the publication
