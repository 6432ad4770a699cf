"""Running dbt against the warehouse named by CHISO_WAREHOUSE_URL.

    python -m chiso.transform.runner build          # any dbt command and its flags

dbt reads its connection from CHISO_DBT_* variables (dbt_project/profiles.yml); they are derived
here from the one warehouse setting so that nobody configures the warehouse twice.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from chiso.core import settings
from chiso.core.warehouse import url_parts, warehouse_url


class DbtError(RuntimeError):
    pass


def dbt_environment(url: str) -> dict[str, str]:
    parts = url_parts(url)
    return {f"CHISO_DBT_{key.upper()}": value for key, value in parts.items()}


def run_dbt(args: list[str], url: str | None = None):
    """Run one dbt command in-process and return dbt's result; raise DbtError naming what failed."""
    from dbt.cli.main import dbtRunner

    project_dir = Path(settings.require("CHISO_DBT_PROJECT_DIR"))
    os.environ.update(dbt_environment(url or warehouse_url()))
    full_args = [*args, "--project-dir", str(project_dir), "--profiles-dir", str(project_dir)]
    result = dbtRunner().invoke(full_args)
    if result.exception is not None:
        raise DbtError(f"dbt {' '.join(args)} could not run: {result.exception}") from result.exception
    if not result.success:
        failed = []
        for node_result in getattr(result.result, "results", None) or []:
            status = str(getattr(node_result, "status", ""))
            if status.lower() in ("error", "fail", "runtime error"):
                failed.append(f"{node_result.node.unique_id}: {node_result.message}")
        raise DbtError(f"dbt {' '.join(args)} failed: " + ("; ".join(failed) or "see the dbt log above"))
    return result


def compile_inline(sql: str, url: str | None = None) -> str:
    """The SQL that dbt compiles from ``sql`` (Jinja: refs, macros) against the warehouse's project."""
    import contextlib
    import io

    # dbt prints an inline compilation to stdout; the caller wants it as a value.
    with contextlib.redirect_stdout(io.StringIO()):
        result = run_dbt(["compile", "--quiet", "--inline", sql], url)
    return result.result.results[0].node.compiled_code


def main(argv: list[str] | None = None) -> int:
    try:
        run_dbt(argv if argv is not None else sys.argv[1:])
    except DbtError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
