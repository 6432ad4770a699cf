#!/usr/bin/env bash
# Create (or refresh) the BI server's own virtualenv (Apache Superset, for the dashboard tests) from
# bi/requirements-superset.lock. Kept apart from .venv so that Superset never shares a resolver with Airflow.
set -euo pipefail
venv="${1:-.venv-bi}"
cd "$(dirname "$0")/.."
source scripts/uv_venv.sh
uv_venv_sync "$venv" bi/requirements-superset.lock
touch "$venv/.installed"
echo "BI virtualenv ready: $venv"
