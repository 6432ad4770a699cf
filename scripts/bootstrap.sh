#!/usr/bin/env bash
# Create (or refresh) the project's virtualenv from the lock file.
# uv resolves nothing here: it installs exactly requirements.lock, with bytecode compiled so that
# Airflow's imports are fast from the first run.
set -euo pipefail
venv="${1:-.venv}"
cd "$(dirname "$0")/.."
source scripts/uv_venv.sh
uv_venv_sync "$venv" requirements.lock
VIRTUAL_ENV="$PWD/$venv" "$uv_bin" pip install --quiet --no-deps --compile-bytecode -e .
# The Data Docs' CSS, JS and fonts, pinned in docs_assets/ (chiso/docs_site/offline.py): without them the docs
# need the internet to render, which is all that is lost, so a machine without npm only gets a warning.
if command -v npm >/dev/null; then
  (cd docs_assets && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
else
  echo "npm not found: Data Docs will load their assets from CDNs (install npm, then: make docs-assets)" >&2
fi
touch "$venv/.installed"
echo "virtualenv ready: $venv"
