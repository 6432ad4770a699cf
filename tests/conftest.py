"""Shared fixtures: the machine's PostgreSQL (CHISO_TEST_PG_URL) and throw-away databases on it."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg
import pytest

# Airflow reads its configuration at import: give the test process a private, example-free home
# before anything imports it.
_AIRFLOW_HOME = Path(os.environ.get("PYTEST_AIRFLOW_HOME", f"/tmp/chiso-pytest-airflow-{os.getpid()}"))
os.environ.setdefault("AIRFLOW_HOME", str(_AIRFLOW_HOME))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")

ADMIN_URL = os.environ.get("CHISO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=5) as conn:
            conn.execute("select 1")
    except psycopg.OperationalError as exc:
        pytest.fail(f"The tests need PostgreSQL at {ADMIN_URL} (set CHISO_TEST_PG_URL): {exc}")
    return ADMIN_URL


@pytest.fixture(scope="session")
def make_database(pg_admin_url):
    """Factory of empty databases, all dropped at the end of the session."""
    created: list[str] = []

    def create(prefix: str = "chiso_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        created.append(name)
        return _with_database(pg_admin_url, name)

    yield create
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        for name in created:
            conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def warehouse_url(make_database, monkeypatch) -> str:
    url = make_database()
    monkeypatch.setenv("CHISO_WAREHOUSE_URL", url)
    return url
