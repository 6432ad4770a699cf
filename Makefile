# The two commands a fresh machine needs: `make demo` and `make test`.
# Both create what they need (.venv from requirements.lock, databases, Airflow home) and can be re-run.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test venv bi-venv lock clean docs-assets

demo: venv
	$(VENV)/bin/chiso demo

# bi-venv: the dashboard tests start a real Superset from its own virtualenv (tests/test_bi.py).
test: venv bi-venv
	$(PY) -m pytest

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml scripts/bootstrap.sh scripts/uv_venv.sh docs_assets/package-lock.json
	bash scripts/bootstrap.sh $(VENV)

# The Data Docs' CSS, JS and fonts from the npm registry (versions in docs_assets/package-lock.json).
docs-assets:
	cd docs_assets && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

# Apache Superset, the BI server of the dashboard tests, in a virtualenv of its own: it never shares a
# resolver with Airflow (bi/requirements-superset.lock; about 2 min on 2 cores, 0.8 GB).
BI_VENV ?= .venv-bi
bi-venv: $(BI_VENV)/.installed

$(BI_VENV)/.installed: bi/requirements-superset.lock scripts/bootstrap_bi.sh scripts/uv_venv.sh
	bash scripts/bootstrap_bi.sh $(BI_VENV)

# Re-resolve pins after editing requirements.in.
lock:
	$(PY) -m uv pip compile requirements.in -p python3.11 -o requirements.lock

clean:
	rm -rf .work dbt_project/target dbt_project/logs
