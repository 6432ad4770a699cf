"""The documentation a data engineer reads next to the warehouse: dbt docs and the Data Docs.

``build()`` generates dbt's docs (``dbt docs generate``) and renders the Great Expectations Data Docs
from the validation results the gates stored, then lays both out under one folder
($CHISO_HOME/docs_site: ``dbt/`` and ``data_docs/``, with an index page). ``serve()`` serves that folder
with the standard library's HTTP server; nothing in it needs a network beyond the local machine's.
"""

from __future__ import annotations

import functools
import http.server
from pathlib import Path

from chiso.core import settings

INDEX_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>chiso documentation</title></head>
<body><h1>chiso documentation</h1><ul>
<li><a href="dbt/index.html">dbt docs</a>: the warehouse's models, columns, tests and lineage</li>
<li><a href="data_docs/index.html">Data Docs</a>: every quality gate run and its expectations</li>
</ul></body></html>
"""


def site_dir() -> Path:
    return settings.home() / "docs_site"


def build(url: str | None = None) -> Path:
    """dbt docs and Data Docs under site_dir(); returns the site's index page."""
    from chiso.quality.gates import data_docs_dir, rebuild_data_docs_index
    from chiso.docs_site.offline import build_dbt_docs

    site = site_dir()
    # One static page holding the manifest and catalog, fetching nothing (chiso.docs_site.offline).
    build_dbt_docs(site / "dbt", url)
    rebuild_data_docs_index()  # the gates' Data Docs, their assets copied in (offline_docs.make_data_docs_offline)
    data_docs = site / "data_docs"
    if data_docs.is_symlink() or data_docs.exists():
        data_docs.unlink()
    data_docs.symlink_to(data_docs_dir().resolve(), target_is_directory=True)
    (site / "index.html").write_text(INDEX_HTML, encoding="utf-8")
    return site / "index.html"


def serve(host: str = "127.0.0.1", port: int = 8081) -> None:
    """Serve site_dir() until interrupted."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site_dir()))
    with http.server.ThreadingHTTPServer((host, port), handler) as server:
        print(f"dbt docs: http://{host}:{port}/dbt/index.html  Data Docs: http://{host}:{port}/data_docs/index.html"
              "  (Ctrl-C stops)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
