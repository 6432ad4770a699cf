"""A throw-away local PostgreSQL server for the demo, when CHISO_WAREHOUSE_URL is not set.

It uses the machine's PostgreSQL binaries (initdb, pg_ctl), keeps its data under CHISO_HOME and
listens on a Unix socket there plus a loopback port, so it never collides with a system server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

from chiso.dev.ports import free_port

SEARCH_PATHS = ["/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin", "/opt/homebrew/bin"]


class LocalPostgresError(RuntimeError):
    pass


def _find_binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for pattern in SEARCH_PATHS:
        for candidate in sorted(Path("/").glob(pattern.lstrip("/")), reverse=True):
            if (candidate / name).exists():
                return str(candidate / name)
    raise LocalPostgresError(
        f"{name} not found: install PostgreSQL's server binaries (e.g. apt-get install postgresql) "
        "or point CHISO_WAREHOUSE_URL at an existing Postgres"
    )


def _stored_port_if_free(port_file: Path) -> int | None:
    try:
        port = int(port_file.read_text())
    except (OSError, ValueError):
        return None
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return None
    return port


class LocalPostgres:
    def __init__(self, root: Path, port: int | None = None):
        self.root = Path(root)
        self.data = self.root / "data"
        self.port_file = self.root / "port"
        self.port = port
        self._started_here = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, command: list[str], check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(_as_server_user(command), capture_output=True, text=True, check=check)

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self._run([_find_binary("pg_ctl"), "-D", str(self.data), *args], check=check)

    def start(self) -> LocalPostgres:
        self.root.mkdir(parents=True, exist_ok=True)
        _hand_to_server_user(self.root)
        if not (self.data / "PG_VERSION").exists():
            result = self._run([_find_binary("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                                "--encoding=UTF8", "--locale=C.UTF-8"], check=False)
            if result.returncode != 0:
                raise LocalPostgresError(f"initdb failed: {result.stderr or result.stdout}")
        if self._pg_ctl("status", check=False).returncode == 0:  # left running by an earlier demo
            self.port = int(self.port_file.read_text())
            return self
        # The port of the previous run if it is still free, so that a printed psql URL keeps working.
        self.port = self.port or _stored_port_if_free(self.port_file) or free_port()
        self.port_file.write_text(str(self.port))
        _hand_to_server_user(self.port_file)
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        result = self._pg_ctl("start", "-w", "-l", str(self.root / "server.log"), "-o", options, check=False)
        if result.returncode != 0:
            raise LocalPostgresError(f"local Postgres did not start: {result.stderr or result.stdout}; "
                                     f"see {self.root / 'server.log'}")
        self._started_here = True
        return self

    @property
    def started_here(self) -> bool:
        """True if start() started the server (False: it was running already)."""
        return self._started_here

    def running(self) -> bool:
        return self.data.exists() and self._pg_ctl("status", check=False).returncode == 0

    def stop(self) -> None:
        if self.data.exists() and self._pg_ctl("status", check=False).returncode == 0:
            self._pg_ctl("stop", "-m", "fast", "-w")

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _server_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as the 'postgres' system user."""
    if not (hasattr(os, "geteuid") and os.geteuid() == 0):
        return None
    import pwd

    try:
        return pwd.getpwnam("postgres").pw_name
    except KeyError:
        raise LocalPostgresError("running as root and there is no 'postgres' user to run the local server; "
                                 "set CHISO_WAREHOUSE_URL to an existing Postgres") from None


def _as_server_user(command: list[str]) -> list[str]:
    user = _server_user()
    return ["runuser", "-u", user, "--", *command] if user else command


def _hand_to_server_user(path: Path) -> None:
    user = _server_user()
    if user:
        shutil.chown(path, user=user)
