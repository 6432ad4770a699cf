"""A real Apache Superset server for the dashboard tests (and for a look by hand), run from .venv-bi.

Superset lives in a virtualenv of its own (``make bi-venv``, bi/requirements-superset.lock): it never
shares a resolver with Airflow. This module only starts it as a separate process: metadata in a Postgres
database given by the caller, ``superset db upgrade``, ``fab create-admin``, ``superset init``, then
gunicorn on a free loopback port; and talks to it over its REST API (login, dashboard import).

Test-only settings (superset_config written next to its logs): CSRF off and Talisman off, so that the
harness can log in and import with plain requests; the D3 locale is Vietnamese (70,48; 1.234).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from chiso.dev.ports import free_port
from chiso.core.settings import REPO_ROOT

BI_VENV = REPO_ROOT / ".venv-bi"  # make bi-venv
ADMIN_USER = "admin"

_CONFIG = """\
SQLALCHEMY_DATABASE_URI = {metadata_url!r}
SECRET_KEY = {secret!r}
WTF_CSRF_ENABLED = False
TALISMAN_ENABLED = False
CONTENT_SECURITY_POLICY_WARNING = False
# Vietnamese number formats in charts: 70,48 and 1.234.
D3_FORMAT = {{"decimal": ",", "thousands": ".", "grouping": [3], "currency": ["", " ₫"]}}
D3_TIME_FORMAT = {{"dateTime": "%d/%m/%Y %H:%M:%S", "date": "%d/%m/%Y", "time": "%H:%M:%S",
                  "periods": ["SA", "CH"],
                  "days": ["Chủ nhật", "Thứ hai", "Thứ ba", "Thứ tư", "Thứ năm", "Thứ sáu", "Thứ bảy"],
                  "shortDays": ["CN", "T2", "T3", "T4", "T5", "T6", "T7"],
                  "months": ["Tháng 1", "Tháng 2", "Tháng 3", "Tháng 4", "Tháng 5", "Tháng 6", "Tháng 7",
                             "Tháng 8", "Tháng 9", "Tháng 10", "Tháng 11", "Tháng 12"],
                  "shortMonths": ["Th1", "Th2", "Th3", "Th4", "Th5", "Th6", "Th7", "Th8", "Th9", "Th10",
                                  "Th11", "Th12"]}}
# No results backend, no Celery: queries run in the web process.
CACHE_CONFIG = {{"CACHE_TYPE": "NullCache"}}
DATA_CACHE_CONFIG = {{"CACHE_TYPE": "NullCache"}}
RATELIMIT_ENABLED = False
"""


class SupersetFailed(RuntimeError):
    pass


def available() -> bool:
    return (BI_VENV / "bin" / "superset").exists()


@dataclass
class Superset:
    """A running Superset: its URL, the admin's password and an authenticated API session."""

    url: str
    password: str
    process: subprocess.Popen
    workdir: Path
    api: requests.Session | None = None

    def login_api(self) -> requests.Session:
        session = requests.Session()
        answer = session.post(f"{self.url}/api/v1/security/login", timeout=60,
                              json={"username": ADMIN_USER, "password": self.password, "provider": "db",
                                    "refresh": False})
        answer.raise_for_status()
        session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        self.api = session
        return session

    def browser_cookie(self) -> dict:
        """The session cookie of a person logged in through the login form."""
        session = requests.Session()
        answer = session.post(f"{self.url}/login/", data={"username": ADMIN_USER, "password": self.password},
                              timeout=60, allow_redirects=False)
        if answer.status_code not in (302, 303) or "session" not in session.cookies:
            raise SupersetFailed(f"logging in to Superset at {self.url}/login/ failed ({answer.status_code})")
        return {"name": "session", "value": session.cookies["session"], "domain": "127.0.0.1", "path": "/"}

    def import_dashboards(self, bundle: bytes, passwords: dict[str, str]) -> None:
        api = self.api or self.login_api()
        answer = api.post(f"{self.url}/api/v1/dashboard/import/", timeout=300,
                          files={"formData": ("chiso_dashboards.zip", bundle, "application/zip")},
                          data={"overwrite": "true", "passwords": json.dumps(passwords)})
        if answer.status_code != 200:
            raise SupersetFailed(f"Superset refused the dashboard bundle ({answer.status_code}): {answer.text[:2000]}")

    def get(self, path: str, **params) -> dict:
        api = self.api or self.login_api()
        answer = api.get(f"{self.url}{path}", params=params, timeout=120)
        answer.raise_for_status()
        return answer.json()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


def _run(workdir: Path, env: dict, *args: str, timeout: int = 600) -> None:
    log = workdir / "setup.log"
    with log.open("a") as out:
        out.write(f"$ {' '.join(args)}\n")
        out.flush()
        result = subprocess.run([str(BI_VENV / "bin" / args[0]), *args[1:]], env=env, stdout=out,
                                stderr=subprocess.STDOUT, timeout=timeout, cwd=workdir)
    if result.returncode != 0:
        raise SupersetFailed(f"`{' '.join(args[:3])}` failed (exit {result.returncode}); see {log}:\n"
                             + log.read_text()[-3000:])


def start(metadata_url: str, workdir: Path, startup_timeout: float = 180) -> Superset:
    """Set up a Superset whose metadata lives in ``metadata_url`` (an empty Postgres database) and start it."""
    if not available():
        raise SupersetFailed(f"Superset is not installed in {BI_VENV}: run `make bi-venv`")
    workdir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(16)
    config = workdir / "superset_config.py"
    config.write_text(_CONFIG.format(metadata_url=metadata_url.replace("postgresql://", "postgresql+psycopg2://", 1),
                                     secret=secrets.token_urlsafe(32)), encoding="utf-8")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "VIRTUAL_ENV", "PYTHON"))},
           "SUPERSET_CONFIG_PATH": str(config), "FLASK_APP": "superset.app:create_app()",
           "SUPERSET_HOME": str(workdir / "home"), "PYTHONUNBUFFERED": "1"}
    _run(workdir, env, "superset", "db", "upgrade")
    _run(workdir, env, "superset", "fab", "create-admin", "--username", ADMIN_USER, "--firstname", "Quản trị",
         "--lastname", "chiso", "--email", "admin@example.org", "--password", password)
    _run(workdir, env, "superset", "init")
    port = free_port()
    server_log = (workdir / "server.log").open("a")
    process = subprocess.Popen(
        [str(BI_VENV / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4",
         "--timeout", "120", "superset.app:create_app()"],
        env=env, stdout=server_log, stderr=subprocess.STDOUT, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + startup_timeout
    while True:
        if process.poll() is not None:
            raise SupersetFailed(f"Superset stopped at start (exit {process.returncode}); see {workdir}/server.log:\n"
                                 + (workdir / "server.log").read_text()[-3000:])
        try:
            if requests.get(f"{url}/health", timeout=5).status_code == 200:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise SupersetFailed(f"Superset did not answer on {url}/health within {startup_timeout:.0f} s")
        time.sleep(1)
    return Superset(url, password, process, workdir)
