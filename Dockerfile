# syntax=docker/dockerfile:1
# One image for every Python service of the stack (Airflow components and the portal simulator):
# the pinned dependency set of requirements.lock plus the chiso package.
# The Data Docs' CSS, JS and fonts, from the npm registry at the versions of docs_assets/package-lock.json
# (chiso/docs_site/offline.py copies them into every site it builds, so the docs render offline).
FROM node:20.18.1-alpine AS docs-assets
WORKDIR /docs_assets
COPY docs_assets/package.json docs_assets/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

FROM python:3.11.11-slim-bookworm

# uv only installs the already-resolved requirements.lock; it is used because it is much faster than pip.
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /uvx /bin/

# The stack runs as an arbitrary uid (AIRFLOW_UID in docker-compose.yml) in group 0 so that files
# written into bind mounts (dbt's target/, logs) belong to the host user. Such a uid has no
# /etc/passwd entry, and Airflow's getuser() fails without one unless USER/LOGNAME are set.
ENV PYTHONUNBUFFERED=1 \
    UV_LINK_MODE=copy \
    HOME=/home/chiso \
    USER=chiso \
    LOGNAME=chiso
RUN useradd --uid 50000 --gid 0 --home-dir /home/chiso --create-home chiso

WORKDIR /opt/chiso

# Dependencies first, in their own layer, so editing chiso/ does not reinstall Airflow, dbt and GX.
COPY requirements.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --system --compile-bytecode -r requirements.lock

# The package itself; --no-deps because requirements.lock already pins everything it needs.
# README.md is the `readme` of pyproject.toml: setuptools refuses to build without it.
COPY pyproject.toml README.md ./
COPY chiso/ chiso/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --system --compile-bytecode --no-deps .

COPY dags/ dags/
COPY dbt_project/ dbt_project/
COPY expectations/ expectations/
COPY config/ config/
COPY --from=docs-assets /docs_assets/node_modules/ docs_assets/node_modules/
ENV CHISO_DOCS_ASSETS_DIR=/opt/chiso/docs_assets/node_modules

# /var/lib/chiso is CHISO_HOME (landing zone, AIRFLOW_HOME). A fresh named volume mounted there
# copies this directory's ownership and mode, so group 0 must be able to write it.
RUN mkdir -p /var/lib/chiso/landing /var/lib/chiso/airflow \
    && chgrp -R 0 /opt/chiso /var/lib/chiso /home/chiso \
    && chmod -R g+rwX /opt/chiso /var/lib/chiso /home/chiso

USER 50000:0
