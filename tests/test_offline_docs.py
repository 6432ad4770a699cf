"""Data Docs and dbt docs render with no internet (issue 18, "docs that work offline").

A gate run on a real warehouse builds the Data Docs (chiso.quality.gates, GX's SiteBuilder), which point at
their own copies of bootstrap, jQuery, Font Awesome, vega… from the npm registry (docs_assets/); dbt
builds its static docs page. Headless Chromium opens each with every request to another host sent to
a proxy that records it and answers 502: the pages must render (text, styles, scripts, fonts) and
that proxy must see nothing. The same check on a copy of the site without its copies fails, so the
probe can tell.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import socketserver
import subprocess
import threading
from datetime import date
from pathlib import Path

import pytest

from chiso.docs_site import offline as offline_docs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium (Debian package 'chromium') is "
                                                             "not installed; .ci/run installs it on CI")
DAY = date(2024, 11, 15)
REASON = "a value above one would mean the batch counted a row twice"
SUITE = {
    "name": "raw", "layer": "raw", "description": "A tiny suite whose Data Docs the tests open offline.",
    "batches": [{
        "name": "numbers", "description": "Two numbers.",
        "query": "select * from (values (1), (2)) as numbers(x)",
        "expectations": [
            {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "min_value": 0, "max_value": 10},
             "meta": {"severity": "block", "name": "x_0_to_10", "why": "x is a small count"}},
            {"type": "unexpected_rows_expectation",
             "kwargs": {"unexpected_rows_query": "select * from {batch} as numbers where x > 1 and 'SQL_NOT_SHOWN' <> ''"},
             "meta": {"severity": "warn", "name": "x_at_most_one", "why": REASON}},
        ],
    }],
}


@pytest.fixture(scope="module")
def assets() -> Path:
    if offline_docs.missing_assets():
        offline_docs.install_assets()  # (make venv does it; a clone set up without npm gets it here)
    return offline_docs.assets_dir()


@pytest.fixture(scope="module")
def data_docs(make_database, tmp_path_factory, assets) -> Path:
    from chiso.quality.gates import run_layer
    from chiso.core.warehouse import ensure_schema

    url = make_database("chiso_test_docs")
    home = tmp_path_factory.mktemp("offline-docs")
    (home / "expectations").mkdir()
    (home / "expectations" / "raw.json").write_text(json.dumps(SUITE), encoding="utf-8")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CHISO_WAREHOUSE_URL", url)
        env.setenv("CHISO_HOME", str(home))
        env.setenv("CHISO_EXPECTATIONS_DIR", str(home / "expectations"))
        env.setenv("CHISO_DATA_DOCS_DIR", str(home / "data_docs"))
        env.delenv("CHISO_DATA_DOCS_URL", raising=False)
        ensure_schema(url)
        result = run_layer("raw", DAY, url)
    assert [failure.name for failure in result.failures] == ["x_at_most_one"]
    return home / "data_docs"


def _validation_page(site: Path) -> Path:
    [page] = site.glob("validations/raw/numbers/**/*.html")
    return page


# ----------------------------------------------------------------------------- what the pages ask for


def test_every_cdn_file_of_gxs_templates_has_a_pinned_copy():
    """A GX upgrade that adds a CDN file shows here, not as a half-styled page on a closed network."""
    import great_expectations

    templates = Path(great_expectations.__file__).parent / "render" / "view" / "templates"
    asked = set()
    for template in templates.glob("*.j2"):
        for match in re.finditer(r"""<(?:script|link)\b[^>]*(?:src|href)=["'](https://[^"']+)["']""",
                                 template.read_text(encoding="utf-8")):
            asked.add(match.group(1))
    assert asked, "GX's templates moved: look for their CDN links again"
    assert asked <= {asset.url for asset in offline_docs.CDN_ASSETS}, asked - {a.url for a in offline_docs.CDN_ASSETS}


def test_the_pinned_packages_are_the_ones_installed(assets):
    pinned = json.loads((offline_docs.ASSETS_PACKAGE_DIR / "package.json").read_text())["dependencies"]
    for package, version in pinned.items():
        installed = json.loads((assets / package / "package.json").read_text())["version"]
        assert installed == version, (package, installed, version)
    assert not offline_docs.missing_assets(assets)


def test_no_data_docs_page_loads_anything_from_another_host(data_docs):
    pages = sorted(p for p in data_docs.rglob("*.html") if offline_docs.VENDOR not in p.as_posix())
    assert len(pages) >= 2  # the index and the run's validation page
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert offline_docs.remote_fetches(text) == [], page
        for reference in re.findall(r"""<(?:script|link|img)\b[^>]*(?:src|href)=["']([^"'#?]+)""", text):
            assert (page.parent / reference).resolve().is_file(), (page, reference)
    assert (data_docs / offline_docs.VENDOR / "@fortawesome/fontawesome-free/webfonts/fa-solid-900.woff2").is_file()


def test_making_the_pages_offline_again_changes_nothing(data_docs, assets):
    before = {p: p.read_bytes() for p in data_docs.rglob("*.html")}
    assert offline_docs.make_data_docs_offline(data_docs) == []
    assert {p: p.read_bytes() for p in data_docs.rglob("*.html")} == before


def test_missing_assets_are_named_in_one_sentence_and_nothing_is_changed(data_docs, tmp_path):
    copy = tmp_path / "site"
    shutil.copytree(data_docs, copy)
    shutil.rmtree(copy / offline_docs.VENDOR)
    with pytest.raises(offline_docs.AssetsMissing) as missing:
        offline_docs.make_data_docs_offline(copy, modules=tmp_path / "node_modules")
    message = str(missing.value)
    assert "run make docs-assets" in message and "\n" not in message and str(tmp_path / "node_modules") in message
    assert not (copy / offline_docs.VENDOR).exists()


# ----------------------------------------------------------------------------- seen in Chromium, offline


class _RecordingProxy(socketserver.ThreadingTCPServer):
    """An HTTP proxy that records the host of every request and answers 502: the network is off."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        self.hosts: list[str] = []
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                line = self.rfile.readline(65536).decode("latin-1").split()
                if len(line) >= 2:
                    target = line[1]
                    proxy.hosts.append(target.split("://", 1)[-1].split("/", 1)[0])
                self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


# Chromium's own services (extension and component updates, sign-in), which no flag silences entirely:
# these alone may reach the proxy; a page's fonts or scripts (fonts.gstatic.com, CDNs) may not.
CHROMIUM_SERVICES = {"clients2.google.com", "update.googleapis.com", "accounts.google.com",
                     "edgedl.me.gvt1.com", "redirector.gvt1.com", "optimizationguide-pa.googleapis.com"}


def _page_requests(proxy: _RecordingProxy) -> list[str]:
    return sorted({host for host in proxy.hosts if host.split(":")[0] not in CHROMIUM_SERVICES})


PROBE = """<script>
window.addEventListener('load', function () { document.fonts.ready.then(function () {
  var probe = {jquery: !!window.jQuery, bootstrapTable: !!(window.jQuery && jQuery.fn.bootstrapTable),
    bootstrapJs: !!(window.jQuery && jQuery.fn.tooltip), vegaEmbed: typeof window.vegaEmbed,
    bodyFont: getComputedStyle(document.body).fontFamily,
    fontAwesome: Array.from(document.fonts).some(function (f) {
      return f.family.indexOf('Font Awesome') >= 0 && f.status === 'loaded'; }),
    text: document.body.innerText};
  document.documentElement.setAttribute('data-probe', JSON.stringify(probe));
}); });
</script>"""


def _open_offline(page: Path, proxy: _RecordingProxy, tmp_path: Path) -> dict:
    """What Chromium made of ``page`` with every remote request going to ``proxy`` (a probe copy of the
    page beside it, so that its relative links hold)."""
    probed = page.with_name(f"probe-{page.name}")
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    try:
        result = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
             "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
             f"--user-data-dir={tmp_path / 'chromium-profile'}", f"--proxy-server=http://127.0.0.1:{proxy.server_address[1]}",
             "--proxy-bypass-list=<-loopback>", "--virtual-time-budget=10000", "--window-size=1280,900",
             "--dump-dom", probed.as_uri()],
            capture_output=True, text=True, timeout=120)
    finally:
        probed.unlink()
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(r'data-probe="([^"]*)"', result.stdout)
    assert found, f"the page did not finish loading: {result.stdout[:500]}"
    return json.loads(html.unescape(found.group(1)))


@needs_chromium
def test_data_docs_render_in_chromium_with_the_network_off(data_docs, tmp_path):
    proxy = _RecordingProxy()
    try:
        index = _open_offline(data_docs / "index.html", proxy, tmp_path)
        validation = _open_offline(_validation_page(data_docs), proxy, tmp_path)
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert _page_requests(proxy) == [], proxy.hosts
    for probe in (index, validation):
        assert probe["jquery"] and probe["bootstrapTable"] and probe["bootstrapJs"], probe
        assert probe["vegaEmbed"] == "function", probe
        assert "apple-system" in probe["bodyFont"], probe["bodyFont"]  # bootstrap's stylesheet applied
        assert probe["fontAwesome"], probe
    assert "raw.numbers" in index["text"]
    # The custom SQL expectation shows its reason, not its query; every expectation shows why it exists.
    text = validation["text"]
    assert REASON[1:] in text and "rule x_at_most_one, warn: a failure is published with a notice" in text, text
    assert "SQL_NOT_SHOWN" not in text


@needs_chromium
def test_the_probe_sees_a_site_without_its_copies(data_docs, tmp_path):
    """The same page without static/vendor (as the pages were before, offline): the probe says so."""
    copy = tmp_path / "site"
    shutil.copytree(data_docs, copy)
    shutil.rmtree(copy / offline_docs.VENDOR)
    proxy = _RecordingProxy()
    try:
        probe = _open_offline(copy / "index.html", proxy, tmp_path)
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert not probe["jquery"] and not probe["fontAwesome"] and "apple-system" not in probe["bodyFont"], probe


@needs_chromium
def test_the_dbt_docs_render_in_chromium_with_the_network_off(make_database, tmp_path, monkeypatch):
    url = make_database("chiso_test_dbt_docs")
    monkeypatch.setenv("CHISO_WAREHOUSE_URL", url)
    page = offline_docs.build_dbt_docs(tmp_path / "dbt_docs", url)
    # (The page's script holds a tracker's address, loaded only if the manifest says statistics are on.)
    assert '"send_anonymous_usage_stats": false' in page.read_text(encoding="utf-8")
    proxy = _RecordingProxy()
    try:
        probe = _open_offline(page, proxy, tmp_path)
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert _page_requests(proxy) == [], proxy.hosts
    text = probe["text"]  # (the project's tree starts folded: its models are in the page, not yet shown)
    assert "Welcome to the auto-generated documentation" in text and "chiso" in text and "portal" in text, text
    assert "model.chiso.fct_indicator_values" in page.read_text(encoding="utf-8")
