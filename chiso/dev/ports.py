"""A free TCP port on this machine, for the local servers chiso starts (Postgres, the mail catcher, the
simulator in tests, Superset, Airflow's api-server): bind to port 0 and let the kernel choose."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]
