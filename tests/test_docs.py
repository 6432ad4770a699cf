"""The README stays true to the code: its first commands and its settings table."""

from __future__ import annotations

import re

from chiso.core.settings import REPO_ROOT, SETTINGS

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_opens_with_the_demo_and_test_commands():
    first_block = re.search(r"```sh\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_every_setting_is_documented_in_the_readme():
    table = {m.group(1) for m in re.finditer(r"^\| `(CHISO_[A-Z_]+)`", README, re.M)}
    assert table == set(SETTINGS)


def test_ci_runs_the_readme_test_command():
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()


def test_docs_bi_names_every_column_of_every_semantic_view():
    import yaml

    page = (REPO_ROOT / "docs" / "bi.md").read_text(encoding="utf-8")
    models = yaml.safe_load((REPO_ROOT / "dbt_project" / "models" / "marts" / "bi" / "_bi__models.yml")
                            .read_text(encoding="utf-8"))["models"]
    assert models
    for model in models:
        section = page.split(f"#### `reporting.{model['name']}`", 1)
        assert len(section) == 2, f"docs/bi.md has no section for reporting.{model['name']}"
        body = section[1].split("####", 1)[0]
        missing = [c["name"] for c in model["columns"] if f"| `{c['name']}` |" not in body]
        assert missing == [], f"docs/bi.md's reporting.{model['name']} lacks {missing}"
