"""Docs that work offline: GX Data Docs and dbt docs that render with no request leaving the machine.

Government networks are often closed, and GX's Data Docs load bootstrap, jQuery, Font Awesome, vega…
from CDNs: offline they are a page without layout, tables or charts. The same files, at pinned versions,
come from the npm registry at set-up (``docs_assets/package.json`` and its lock, installed by
``make venv`` into ``docs_assets/node_modules``, or by the Docker image); ``make_data_docs_offline``
copies the ones the pages use into the site (``static/vendor/``) and points every page at its copies.
``CDN_ASSETS`` lists them, each once, with the npm package and file it comes from.

dbt's docs are one self-contained ``index.html`` that fetches ``manifest.json`` and ``catalog.json``
(refused by browsers on file://) and, when usage statistics are on, a tracker: ``build_dbt_docs`` runs
``dbt docs generate --static`` (both documents inlined into ``static_index.html``) with the statistics
off, so the page opens from a folder as well as from the compose stack's docs service.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from chiso.core import settings

log = logging.getLogger(__name__)

ASSETS_PACKAGE_DIR = settings.REPO_ROOT / "docs_assets"  # package.json + package-lock.json
VENDOR = "static/vendor"  # where, inside the Data Docs site, the copies go


@dataclass(frozen=True)
class CdnAsset:
    url: str  # as GX's templates write it (great_expectations/render/view/templates/*.j2)
    package: str  # npm package (its version is pinned in docs_assets/package.json)
    path: str  # the file inside the package
    also: tuple[str, ...] = ()  # folders the file refers to (fonts), copied beside it


CDN_ASSETS: tuple[CdnAsset, ...] = (
    CdnAsset("https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css",
             "bootstrap", "dist/css/bootstrap.min.css"),
    CdnAsset("https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js",
             "bootstrap", "dist/js/bootstrap.min.js"),
    CdnAsset("https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css",
             "bootstrap-table", "dist/bootstrap-table.min.css"),
    CdnAsset("https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js",
             "bootstrap-table", "dist/bootstrap-table.min.js"),
    # (GX's pages ask for 1.19.0's stylesheet of the extension, with 1.19.1's script: one version here)
    CdnAsset("https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
             "bootstrap-table", "dist/extensions/filter-control/bootstrap-table-filter-control.min.css"),
    CdnAsset("https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css",
             "bootstrap-table", "dist/extensions/filter-control/bootstrap-table-filter-control.css"),
    CdnAsset("https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
             "bootstrap-table", "dist/extensions/filter-control/bootstrap-table-filter-control.min.js"),
    CdnAsset("https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css",
             "bootstrap-datepicker", "dist/css/bootstrap-datepicker.min.css"),
    CdnAsset("https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js",
             "bootstrap-datepicker", "dist/js/bootstrap-datepicker.min.js"),
    CdnAsset("https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css",
             "@forevolve/bootstrap-dark", "dist/css/bootstrap-prefers-dark.css"),
    CdnAsset("https://cdn.jsdelivr.net/npm/vega@5", "vega", "build/vega.min.js"),
    CdnAsset("https://cdn.jsdelivr.net/npm/vega-lite@5", "vega-lite", "build/vega-lite.min.js"),
    CdnAsset("https://cdn.jsdelivr.net/npm/vega-embed@6", "vega-embed", "build/vega-embed.min.js"),
    CdnAsset("https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css",
             "@fortawesome/fontawesome-free", "css/all.min.css", also=("webfonts",)),
    CdnAsset("https://code.jquery.com/jquery-3.7.1.min.js", "jquery", "dist/jquery.min.js"),
    # (1.12.9 on GX's pages; bootstrap 4.3.1 declares popper.js ^1.14.7, so the lock has 1.16.1)
    CdnAsset("https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js",
             "popper.js", "dist/umd/popper.min.js"),
)

# GX's navigation bar takes its logo from a web bucket, though the site has it in static/images.
GX_IMAGES_URL = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"
# A link a person may follow (GX's home page); anything else on a remote host the page would load.
_FETCHED = re.compile(r"""(?:src|href)\s*=\s*["'](https?:)?//([^"'/]+)[^"']*["']""", re.IGNORECASE)
_LINK = re.compile(r"""<a\s[^>]*href\s*=\s*["']https?://[^"']*["']""", re.IGNORECASE)
_SRI = re.compile(r"""\s+(?:integrity|crossorigin)\s*=\s*["'][^"']*["']""", re.IGNORECASE)


class AssetsMissing(RuntimeError):
    pass


def assets_dir() -> Path:
    """Where the npm packages are installed (CHISO_DOCS_ASSETS_DIR, a node_modules folder)."""
    return Path(settings.get("CHISO_DOCS_ASSETS_DIR") or ASSETS_PACKAGE_DIR / "node_modules")


def install_assets(target: Path | None = None) -> Path:
    """``npm ci`` of docs_assets/ (the lock's versions and integrity hashes) into ``target``'s parent."""
    npm = shutil.which("npm")
    if npm is None:
        raise AssetsMissing("npm is not installed, so the Data Docs' assets cannot be installed from the npm "
                            "registry: install Node.js and npm (Debian package npm), then run make docs-assets")
    root = (target or assets_dir()).parent
    if root.resolve() != ASSETS_PACKAGE_DIR.resolve():
        root.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(ASSETS_PACKAGE_DIR / name, root / name)
    subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], cwd=root,
                   check=True, stdout=subprocess.DEVNULL)
    return root / "node_modules"


def _source(asset: CdnAsset, modules: Path) -> Path:
    return modules / asset.package / asset.path


def missing_assets(modules: Path | None = None) -> list[str]:
    modules = modules or assets_dir()
    return [f"{a.package}/{a.path}" for a in CDN_ASSETS if not _source(a, modules).is_file()]


def _vendored(asset: CdnAsset) -> str:
    """The asset's path inside the site."""
    return f"{VENDOR}/{asset.package}/{asset.path}"


def make_data_docs_offline(site: Path, pages: list[Path] | None = None, modules: Path | None = None) -> list[Path]:
    """Copy the assets into ``site`` (once) and point its ``pages`` (None: every page) at the copies;
    return the pages changed.

    Idempotent: a page already rewritten is left as it is. Raises AssetsMissing (one sentence, naming
    what to run) when the npm packages are not installed, before changing anything."""
    modules = modules or assets_dir()
    missing = missing_assets(modules)
    if missing:
        raise AssetsMissing(f"the Data Docs' assets are not installed in {modules} ({len(missing)} missing, e.g. "
                            f"{missing[0]}): run make docs-assets (npm ci in docs_assets/), or set "
                            f"CHISO_DOCS_ASSETS_DIR to a node_modules folder that has them")
    for asset in CDN_ASSETS:
        target = site / _vendored(asset)
        if target.is_file() and target.stat().st_size == _source(asset, modules).stat().st_size:
            continue  # copied by an earlier build
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_source(asset, modules), target)
        for folder in asset.also:  # e.g. Font Awesome's css/../webfonts
            source = _source(asset, modules).parent.parent / folder
            shutil.copytree(source, target.parent.parent / folder, dirs_exist_ok=True)
    changed = []
    for page in sorted(site.rglob("*.html")) if pages is None else pages:
        if VENDOR in page.relative_to(site).as_posix() or not page.is_file():
            continue
        text = page.read_text(encoding="utf-8")
        offline = _rewrite(text, _up_to_site(page, site))
        if offline != text:
            page.write_text(offline, encoding="utf-8")
            changed.append(page)
    return changed


def _up_to_site(page: Path, site: Path) -> str:
    return "../" * (len(page.relative_to(site).parts) - 1)


def _rewrite(html: str, up: str) -> str:
    for asset in CDN_ASSETS:
        for quote in ('"', "'"):
            html = re.sub(
                rf"""(<(?:script|link)\b[^>]*?)(\b(?:src|href)\s*=\s*){quote}{re.escape(asset.url)}{quote}([^>]*>)""",
                lambda m: _SRI.sub("", m.group(1)) + m.group(2) + quote + up + _vendored(asset) + quote
                + _SRI.sub("", m.group(3)),
                html)
    # GX's own images (its logo came from a web bucket; its favicon is a folder too deep on validation pages).
    html = html.replace(GX_IMAGES_URL, "static/images/")
    return re.sub(r"""(["'])(?:\.\./)*static/images/""", lambda m: f"{m.group(1)}{up}static/images/", html)


def remote_fetches(html: str) -> list[str]:
    """The hosts a page would fetch something from (scripts, styles, images), links excluded."""
    without_links = _LINK.sub("<a ", html)
    return sorted({match.group(2) for match in _FETCHED.finditer(without_links)})


# ----------------------------------------------------------------------------- dbt docs

DBT_DOCS_PAGE = "static_index.html"


def build_dbt_docs(output: Path, url: str | None = None) -> Path:
    """``dbt docs generate --static`` into ``output``; returns the page (``index.html`` there), which
    holds the manifest and the catalog and fetches nothing. The catalog is read from the warehouse
    (``url``, else CHISO_WAREHOUSE_URL); what is not built yet is documented without its columns' types."""
    from chiso.transform.runner import run_dbt

    output.mkdir(parents=True, exist_ok=True)
    target = output / "target"
    # --no-compile: the docs show the models' code as written; compiling all of them takes longer than the
    # rest. (dbt 1.12 then reads the manifest from the target folder without writing it: parse writes it.)
    run_dbt(["parse", "--target-path", str(target), "--no-send-anonymous-usage-stats"], url)
    run_dbt(["docs", "generate", "--static", "--no-compile", "--target-path", str(target),
             "--no-send-anonymous-usage-stats"], url)  # (with statistics on, the page loads a tracker)
    page = output / "index.html"
    shutil.copyfile(target / DBT_DOCS_PAGE, page)
    for name in ("manifest.json", "catalog.json"):  # beside it, for tools that read them
        shutil.copyfile(target / name, output / name)
    return page


def dbt_docs_dir() -> Path:
    return Path(settings.get("CHISO_DBT_DOCS_DIR") or settings.home() / "dbt_docs")


def main(argv: list[str] | None = None) -> int:
    """python -m chiso.docs_site.offline dbt | data-docs: build the dbt docs into CHISO_DBT_DOCS_DIR, or make the
    whole Data Docs site (CHISO_DATA_DOCS_DIR) offline. The CLI's ``docs build`` calls the same functions."""
    import sys

    from chiso.core.settings import data_docs_dir

    what = (argv if argv is not None else sys.argv[1:]) or ["dbt"]
    try:
        if what[0] == "dbt":
            print(f"dbt docs: {build_dbt_docs(dbt_docs_dir())}")
        elif what[0] == "data-docs":
            changed = make_data_docs_offline(data_docs_dir())
            print(f"Data Docs: {len(changed)} page(s) now use the site's own assets, in {data_docs_dir()}")
        else:
            print(f"unknown docs {what[0]!r}: dbt or data-docs", file=sys.stderr)
            return 2
    except (AssetsMissing, RuntimeError) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
