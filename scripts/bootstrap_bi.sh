#!/usr/bin/env bash
# Create (or refresh) the BI server's own virtualenv (Apache Superset, for the dashboard tests) from
# bi/requirements-superset.lock. Kept apart from .venv so that Superset never shares a resolver with Airflow.
set -euo pipefail
venv="${1:-.venv-bi}"
cd "$(dirname "$0")/.."
python_bin="${CHISO_PYTHON:-python3.11}"
command -v "$python_bin" >/dev/null || python_bin=python3
if ! command -v uv >/dev/null; then
  "$python_bin" -m pip install --quiet --user uv || "$python_bin" -m pip install --quiet uv
fi
uv_bin="$(command -v uv || echo "$("$python_bin" -m site --user-base)/bin/uv")"
[ -x "$venv/bin/python" ] || "$uv_bin" venv --quiet --python "$python_bin" "$venv"
VIRTUAL_ENV="$PWD/$venv" "$uv_bin" pip sync --quiet --compile-bytecode bi/requirements-superset.lock
touch "$venv/.installed"
echo "BI virtualenv ready: $venv"
