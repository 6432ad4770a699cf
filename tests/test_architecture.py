"""The package tree reads as the data flow (docs/architecture.md), and imports keep it that way.

Every `import` in chiso/ and dags/ is read with ast, including imports inside functions (a late import is
still a dependency). The rules:

* no module imports one that imports it back, however long the loop;
* a package imports only its own modules and packages of lower layers (LAYERS), with the one exception
  docs/architecture.md explains (ALLOWED_UPWARD);
* the pipeline's packages never import the development tools (chiso.dev) or the command line (chiso.cli),
  and the DAG files import neither, nor the docs site.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

REPO = Path(__file__).resolve().parents[1]

# Lower number = lower layer. Same number = side by side (may import each other only at the tools layer).
LAYERS = {
    "contract": 0,       # what the portal sends
    "core": 1,           # settings, the warehouse connection and schema, the calendar
    "ingest": 2,         # fetch → land → load
    "simulator": 3,      # a portal stand-in, built on the contract and ingest's checks
    "transform": 3,      # dbt, targets, reconciliation
    "quality": 4,        # the gates
    "bi": 5,             # logins, row-level security, dashboards
    "publish": 6,        # write-audit-publish, the figures as published, explain
    "reports": 7,        # e-mails and campaign reports
    "orchestration": 8,  # what the DAGs' tasks call
    "docs_site": 9,      # dbt docs and Data Docs as a site
    "cli": 10,           # the chiso command
    "dev": 10,           # local Postgres, mail catcher, demo, local stack, Celery cluster, Superset server
}
TOOLS = {"cli", "dev"}
PIPELINE = set(LAYERS) - TOOLS - {"docs_site"}
# The gates make each Data Docs page they write work offline (chiso.docs_site.offline) as they write it.
ALLOWED_UPWARD = {("quality", "docs_site")}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources(files: list[Path]) -> dict[str, str]:
    return {module_name(path): path.read_text(encoding="utf-8") for path in files}


def import_graph(modules: dict[str, str], known: set[str]) -> nx.DiGraph:
    """Module → imported chiso module (the longest known prefix of what is imported), from each module's
    source text."""
    def resolve(target: str) -> str | None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    graph = nx.DiGraph()
    for name, source in modules.items():
        graph.add_node(name)
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                if target.split(".")[0] == "chiso" and (resolved := resolve(target)) and resolved != name:
                    graph.add_edge(name, resolved)
    return graph


def package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "chiso" and len(parts) > 1 else None


def layer_violations(graph: nx.DiGraph) -> list[str]:
    found = []
    for importer, imported in graph.edges:
        a, b = package(importer), package(imported)
        if a is None or b is None or a == b or (a, b) in ALLOWED_UPWARD:
            continue
        if a not in LAYERS or b not in LAYERS:
            found.append(f"{importer} → {imported}: package not in LAYERS")
        elif LAYERS[b] > LAYERS[a] or (LAYERS[b] == LAYERS[a] and not {a, b} <= TOOLS):
            found.append(f"{importer} → {imported}: {a} (layer {LAYERS[a]}) may not import {b} (layer {LAYERS[b]})")
        elif a in PIPELINE and b in TOOLS:
            found.append(f"{importer} → {imported}: the pipeline imports a tool")
    return sorted(found)


@pytest.fixture(scope="module")
def chiso_graph() -> nx.DiGraph:
    modules = sources(sorted((REPO / "chiso").rglob("*.py")))
    return import_graph(modules, set(modules))


def test_every_module_sits_in_a_package_with_a_layer(chiso_graph):
    """A new top-level module (chiso/foo.py) or package must be given its place in the flow."""
    packages = {package(m) for m in chiso_graph.nodes} - {None}
    assert packages and packages <= set(LAYERS), packages - set(LAYERS)


def test_no_module_imports_one_that_imports_it_back(chiso_graph):
    assert list(nx.simple_cycles(chiso_graph)) == []


def test_packages_import_only_lower_layers(chiso_graph):
    assert layer_violations(chiso_graph) == []


def test_the_dags_import_neither_tools_nor_the_docs_site(chiso_graph):
    dags = sorted((REPO / "dags").glob("*.py"))
    graph = import_graph(sources(dags), set(chiso_graph.nodes))
    bad = [(dag, imported) for dag, imported in graph.edges if package(imported) in TOOLS | {"docs_site"}]
    assert dags and graph.number_of_edges() > 0 and bad == []


def test_the_checks_catch_a_bad_import():
    """The rules above are not vacuous: a cycle, an upward import and a tool in the pipeline are found."""
    made = {"chiso.core.settings": "from chiso.publish import publication\n",
            "chiso.publish.publication": "def f():\n    from chiso.core import settings\n",
            "chiso.ingest.load": "import chiso.dev.localpg\n",
            "chiso.dev.localpg": ""}
    graph = import_graph(made, set(made))
    assert list(nx.simple_cycles(graph))
    violations = layer_violations(graph)
    assert any("core (layer 1) may not import publish" in v for v in violations)
    assert any("ingest (layer 2) may not import dev" in v for v in violations)
