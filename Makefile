# The two commands a fresh machine needs: `make demo` and `make test`.
# Both create what they need (.venv from requirements.lock, databases, Airflow home) and can be re-run.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test venv lock clean docs-assets

demo: venv
	$(VENV)/bin/chiso demo

test: venv
	$(PY) -m pytest

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml scripts/bootstrap.sh docs_assets/package-lock.json
	bash scripts/bootstrap.sh $(VENV)

# The Data Docs' CSS, JS and fonts from the npm registry (versions in docs_assets/package-lock.json).
docs-assets:
	cd docs_assets && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

# Re-resolve pins after editing requirements.in.
lock:
	$(PY) -m uv pip compile requirements.in -p python3.11 -o requirements.lock

clean:
	rm -rf .work dbt_project/target dbt_project/logs
