# Sourced by scripts/bootstrap.sh and scripts/bootstrap_bi.sh: a virtualenv that holds exactly a lock
# file, installed by uv (itself installed with pip if missing), bytecode compiled.
# uv_venv_sync VENV LOCKFILE  (sets uv_bin for the caller's further installs)
uv_venv_sync() {
  local venv="$1" lock="$2"
  local python_bin="${CHISO_PYTHON:-python3.11}"
  command -v "$python_bin" >/dev/null || python_bin=python3
  if ! command -v uv >/dev/null; then
    "$python_bin" -m pip install --quiet --user uv || "$python_bin" -m pip install --quiet uv
  fi
  uv_bin="$(command -v uv || echo "$("$python_bin" -m site --user-base)/bin/uv")"
  [ -x "$venv/bin/python" ] || "$uv_bin" venv --quiet --python "$python_bin" "$venv"
  VIRTUAL_ENV="$PWD/$venv" "$uv_bin" pip sync --quiet --compile-bytecode "$lock"
}
