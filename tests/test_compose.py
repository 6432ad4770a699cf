"""docker-compose.yml checked against the repository, without a Docker engine.

``docker compose config`` needs an engine, and even with one it only checks the file's shape, not
that the stack fits the code: that the modules and files it names exist, that it sets the
environment names the code reads (declared in ``chiso.core.settings.SETTINGS``), and that the Airflow
connections it provides are the ones the code asks for. ``compose_problems`` checks that and
returns a list of problems; the tests run it on the real file (expecting none) and on deliberately
broken copies (expecting the break to be reported), so a check that can never fail gets noticed.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from chiso.core.settings import SETTINGS

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"

# Where the Dockerfile puts the repository (its WORKDIR); paths under it must exist in the repo.
CONTAINER_REPO_ROOT = "/opt/chiso"

EXPECTED_SERVICES = {
    "postgres",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "simulator",
    "mailcatcher",
    "metabase",
    "data-docs",
    "dbt-docs",
    "metabase-setup",
    "redis",
    "airflow-worker",
}

# The scale-out profile (docs/performance.md): what `docker compose --profile celery up` adds.
CELERY_PROFILE = "celery"
CELERY_SERVICES = {"redis", "airflow-worker"}
# Images built elsewhere must name a version: an unpinned tag changes under a running deployment.
UNPINNED_TAGS = {None, "latest", "alpine", "bookworm"}

# The Airflow 3 CLI commands the stack may run (`airflow --help`; `webserver` is gone in Airflow 3).
AIRFLOW_COMMANDS = {
    ("api-server",),
    ("scheduler",),
    ("dag-processor",),
    ("triggerer",),
    ("db", "migrate"),
    ("celery", "worker"),
}

# The settings naming the Airflow connections the code uses; each needs an AIRFLOW_CONN_<ID>.
CONN_ID_SETTINGS = ("CHISO_PORTAL_CONN_ID", "CHISO_SMTP_CONN_ID", "CHISO_PSEUDONYM_CONN_ID")
PORTAL_CONN_ID_SETTING = "CHISO_PORTAL_CONN_ID"

# Python code that reads settings; each CHISO_* name in it must be declared. (dbt_project is left
# out on purpose: its CHISO_DBT_* variables are set by chiso.transform.runner, not by the environment.)
SETTING_SCAN_DIRS = ("chiso", "dags")

SETTING_NAME = re.compile(r"\bCHISO_[A-Z0-9]+(?:_[A-Z0-9]+)*\b")
# Compose interpolation: $$ is a literal $, then ${NAME}, ${NAME:-default}, ${NAME?error}... or $NAME.
INTERPOLATION = re.compile(
    r"\$\$"
    r"|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?+])(?P<argument>[^}]*))?\}"
    r"|\$(?P<bare_name>[A-Za-z_][A-Za-z0-9_]*)"
)
CREATE_DATABASE = re.compile(r"\bCREATE\s+DATABASE\s+\"?(\w+)\"?", re.IGNORECASE)
LOCAL_HOSTS = {"localhost", "127.0.0.1", "0.0.0.0"}

# Declared setting name -> its default, as in chiso.core.settings.SETTINGS.
SettingDefaults = dict[str, str | None]


# --- Reading compose values ------------------------------------------------------------------


def load_compose(path: Path = COMPOSE_FILE) -> dict:
    # safe_load resolves anchors and `<<` merge keys the way compose does.
    return yaml.safe_load(path.read_text())


def render_unset(value: str) -> str:
    """The value compose produces when none of the variables in it is set (defaults apply)."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        if match.group("operator") in ("-", ":-"):
            return match.group("argument")
        return ""

    return INTERPOLATION.sub(replace, value)


def interpolated_names(value: str) -> set[str]:
    return {
        match.group("name") or match.group("bare_name")
        for match in INTERPOLATION.finditer(value)
        if match.group(0) != "$$"
    }


def strings_in(node) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings_in(key)
            yield from strings_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings_in(item)


def environment(service: dict) -> dict:
    """A service's environment as a dict, whether written as a mapping or as NAME=value items."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return dict(env)


def command_argv(service: dict) -> list[str] | None:
    command = service.get("command")
    if command is None:
        return None
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def depends_on(service: dict) -> dict[str, str]:
    """Dependency name -> condition (a list form means service_started)."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def volume_mounts(service: dict) -> list[tuple[str | None, str]]:
    """(source, target) of each mount; a source of None is an anonymous volume."""
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            mounts.append((volume.get("source"), volume["target"]))
        else:
            parts = volume.split(":")
            mounts.append((parts[0], parts[1]) if len(parts) > 1 else (None, parts[0]))
    return mounts


def is_bind_source(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def build_paths(service: dict, repo_root: Path) -> tuple[Path, Path] | None:
    """(context, dockerfile) of a service built from source, None for image-only services."""
    build = service.get("build")
    if build is None:
        return None
    if isinstance(build, str):
        build = {"context": build}
    context = repo_root / build.get("context", ".")
    return context, context / build.get("dockerfile", "Dockerfile")


def is_airflow_service(service: dict) -> bool:
    argv = command_argv(service)
    return bool(argv) and argv[0] == "airflow"


def repo_path_of_container_path(path: str, repo_root: Path) -> Path | None:
    if path == CONTAINER_REPO_ROOT or path.startswith(CONTAINER_REPO_ROOT + "/"):
        return repo_root / path[len(CONTAINER_REPO_ROOT):].lstrip("/")
    return None


def postgres_databases(compose: dict, repo_root: Path) -> dict[str, set[str]]:
    """Postgres service -> the databases it creates (POSTGRES_DB, then CREATE DATABASE in init SQL)."""
    databases = {}
    for name, service in compose.get("services", {}).items():
        if not str(service.get("image", "")).startswith("postgres"):
            continue
        env = environment(service)
        created = {env.get("POSTGRES_DB") or env.get("POSTGRES_USER") or "postgres"}
        for source, target in volume_mounts(service):
            if target == "/docker-entrypoint-initdb.d" and source and is_bind_source(source):
                for sql_file in sorted((repo_root / source).glob("*.sql")):
                    created.update(CREATE_DATABASE.findall(sql_file.read_text()))
        databases[name] = created
    return databases


# --- Checks ----------------------------------------------------------------------------------


def compose_problems(compose: dict, repo_root: Path, setting_defaults: SettingDefaults) -> list[str]:
    """Everything in ``compose`` that does not fit the repository or the settings; [] if all is well.

    ``setting_defaults`` maps each declared setting name to its default (from ``chiso.core.settings``).
    """
    services = compose.get("services") or {}
    problems = [f"missing service {name!r}" for name in sorted(EXPECTED_SERVICES - services.keys())]
    declared_volumes = set((compose.get("volumes") or {}).keys())
    databases = postgres_databases(compose, repo_root)

    for name, service in services.items():
        problems += _build_problems(name, service, repo_root)
        problems += _volume_problems(name, service, repo_root, declared_volumes)
        problems += _depends_on_problems(name, service, services)
        problems += _command_problems(name, service, repo_root)
        problems += _environment_problems(name, service, services, databases, repo_root, setting_defaults)
        problems += [
            f"{name}: port {port!r} must be a quoted string (YAML reads some a:b numbers as base 60)"
            for port in service.get("ports") or []
            if not isinstance(port, (str, dict))
        ]
        if is_airflow_service(service):
            problems += _airflow_environment_problems(name, service, setting_defaults)

    problems += _interpolation_problems(compose, setting_defaults)
    problems += _portal_problems(services, setting_defaults)
    problems += celery_profile_problems(services)
    # Services sharing an anchor report the same problem; once is enough.
    return list(dict.fromkeys(problems))


def _build_problems(name: str, service: dict, repo_root: Path) -> list[str]:
    paths = build_paths(service, repo_root)
    if paths is None:
        return [] if service.get("image") else [f"{name}: has neither build nor image"]
    context, dockerfile = paths
    if not context.is_dir():
        return [f"{name}: build context {context.relative_to(repo_root)} does not exist"]
    if not dockerfile.is_file():
        return [f"{name}: dockerfile {dockerfile.relative_to(repo_root)} does not exist"]
    # Not prefixed with the service: several services share the Dockerfile, and it breaks them all.
    return dockerfile_copy_problems(dockerfile, context)


def dockerfile_copy_problems(dockerfile: Path, context: Path) -> list[str]:
    """COPY/ADD sources of the build context that do not exist (an image build would fail)."""
    problems = []
    instructions = re.sub(r"\\\n", " ", dockerfile.read_text()).splitlines()
    for line in instructions:
        words = line.split()
        if len(words) < 3 or words[0].upper() not in ("COPY", "ADD"):
            continue
        options = [word for word in words[1:] if word.startswith("--")]
        if any(option.startswith("--from=") for option in options):
            continue  # copies from another image, not from the context
        sources = [word for word in words[1:-1] if not word.startswith("--")]
        problems += [
            f"{dockerfile.name} copies {source}, which does not exist"
            for source in sources
            if not any(context.glob(source.rstrip("/")))
        ]
    return problems


def _volume_problems(name: str, service: dict, repo_root: Path, declared_volumes: set[str]) -> list[str]:
    problems = []
    for source, _target in volume_mounts(service):
        if source is None:
            continue
        if is_bind_source(source):
            if source.startswith(".") and not (repo_root / source).exists():
                problems.append(f"{name}: bind mount source {source} does not exist")
        elif source not in declared_volumes:
            problems.append(f"{name}: named volume {source!r} is not declared under top-level volumes")
    return problems


def _depends_on_problems(name: str, service: dict, services: dict) -> list[str]:
    problems = []
    for dependency, condition in depends_on(service).items():
        if dependency not in services:
            problems.append(f"{name}: depends on unknown service {dependency!r}")
        elif condition == "service_healthy" and "healthcheck" not in services[dependency]:
            problems.append(f"{name}: waits for {dependency} to be healthy, but it has no healthcheck")
    return problems


def _command_problems(name: str, service: dict, repo_root: Path) -> list[str]:
    argv = command_argv(service)
    if not argv:
        if build_paths(service, repo_root) is not None:
            return [f"{name}: is built from the repo but has no command"]
        return []  # the image's own entrypoint

    problems = []
    for arg in argv:
        repo_path = repo_path_of_container_path(arg, repo_root)
        if repo_path is not None and not repo_path.exists():
            relative = repo_path.relative_to(repo_root)
            problems.append(f"{name}: command names {arg}, but {relative} does not exist")

    if argv[0] == "airflow":
        if not any(tuple(argv[1:1 + len(known)]) == known for known in AIRFLOW_COMMANDS):
            problems.append(f"{name}: `{' '.join(argv)}` is not a known Airflow 3 command")
    elif argv[:2] == ["python", "-m"] and len(argv) > 2 and argv[2].split(".")[0] == "chiso":
        problems += _python_module_problems(name, argv[2], argv[3:], repo_root)
    elif build_paths(service, repo_root) is not None:
        problems.append(f"{name}: `{' '.join(argv)}` is a command tests/test_compose.py cannot check")
    return problems


def _python_module_problems(name: str, module: str, args: list[str], repo_root: Path) -> list[str]:
    module_path = repo_root / Path(*module.split("."))
    if module_path.with_suffix(".py").is_file():
        sources = [module_path.with_suffix(".py")]
    elif (module_path / "__main__.py").is_file():
        sources = sorted(module_path.rglob("*.py"))
    else:
        return [f"{name}: python -m {module}: neither {module_path.relative_to(repo_root)}.py "
                f"nor {module_path.relative_to(repo_root)}/__main__.py exists"]
    # The options are parsed somewhere in the module; a renamed option would show here.
    source_text = "\n".join(path.read_text() for path in sources)
    options = [arg.split("=", 1)[0] for arg in args if arg.startswith("--")]
    return [
        f"{name}: python -m {module} is given {option}, which its source never mentions"
        for option in options
        if f'"{option}"' not in source_text and f"'{option}'" not in source_text
    ]


def _environment_problems(
    name: str,
    service: dict,
    services: dict,
    databases: dict[str, set[str]],
    repo_root: Path,
    setting_defaults: SettingDefaults,
) -> list[str]:
    problems = []
    for key, value in environment(service).items():
        if key.startswith("CHISO_") and key not in setting_defaults:
            problems.append(f"{name}: sets {key}, which chiso/core/settings.py does not declare")
        if isinstance(value, bool) or not isinstance(value, (str, int, float, type(None))):
            problems.append(f"{name}: {key} must be a string (compose rejects {type(value).__name__} values)")
            continue
        if value is None:
            continue
        rendered = render_unset(str(value))

        if key.startswith("AIRFLOW_CONN_"):
            problems += _connection_problems(name, key, rendered, services)
        elif "://" in rendered:
            problems += _url_problems(name, key, rendered, services, databases)
        if key.endswith("_HOST") and rendered not in services and rendered not in LOCAL_HOSTS:
            problems.append(f"{name}: {key} names host {rendered!r}, which is not a service")
        if key.endswith("_DBNAME") and not any(rendered in created for created in databases.values()):
            problems.append(f"{name}: {key} names database {rendered!r}, which postgres never creates")

        repo_path = repo_path_of_container_path(rendered, repo_root)
        if repo_path is not None and not repo_path.exists():
            relative = repo_path.relative_to(repo_root)
            problems.append(f"{name}: {key}={rendered}, but {relative} does not exist")
    return problems


def _url_problems(
    name: str, key: str, url: str, services: dict, databases: dict[str, set[str]]
) -> list[str]:
    host = urlsplit(url).hostname
    if host is None or host in LOCAL_HOSTS:
        return []
    if host not in services:
        return [f"{name}: {key} points at host {host!r}, which is not a service"]
    database = urlsplit(url).path.strip("/")
    if host in databases and database not in databases[host]:
        return [f"{name}: {key} uses database {database!r}, which {host} never creates"]
    return []


def parse_connection(value: str) -> dict:
    """An AIRFLOW_CONN_* value (JSON or URI) as conn_type/host/port/password."""
    if value.lstrip().startswith("{"):
        return json.loads(value)
    url = urlsplit(value)
    return {"conn_type": url.scheme, "host": url.hostname, "port": url.port, "password": url.password}


def _connection_problems(name: str, key: str, value: str, services: dict) -> list[str]:
    try:
        connection = parse_connection(value)
    except ValueError as error:
        return [f"{name}: {key} is neither valid JSON nor a URI: {error}"]
    problems = []
    if not connection.get("conn_type"):
        problems.append(f"{name}: {key} has no conn_type")
    host = connection.get("host")
    if host and host not in services and host not in LOCAL_HOSTS:
        problems.append(f"{name}: {key} points at host {host!r}, which is not a service")
    return problems


def expected_conn_ids(service: dict, setting_defaults: SettingDefaults) -> set[str]:
    env = environment(service)
    return {env.get(setting) or setting_defaults[setting] for setting in CONN_ID_SETTINGS}


def _airflow_environment_problems(name: str, service: dict, setting_defaults: SettingDefaults) -> list[str]:
    env = environment(service)
    required = [
        "CHISO_WAREHOUSE_URL",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    ]
    problems = [f"{name}: Airflow service does not set {key}" for key in required if not env.get(key)]

    conn_ids = expected_conn_ids(service, setting_defaults)
    expected_vars = {f"AIRFLOW_CONN_{conn_id.upper()}" for conn_id in conn_ids}
    provided_vars = {key for key in env if key.startswith("AIRFLOW_CONN_")}
    problems += [
        f"{name}: {var} matches none of the connection ids {', '.join(CONN_ID_SETTINGS)}"
        for var in sorted(provided_vars - expected_vars)
    ]
    problems += [
        f"{name}: {var} is missing; the code looks the connection up by that id"
        for var in sorted(expected_vars - provided_vars)
    ]
    return problems


def _interpolation_problems(compose: dict, setting_defaults: SettingDefaults) -> list[str]:
    # Host-side variables called CHISO_* must mean what the code means by that name.
    names = {name for text in strings_in(compose) for name in interpolated_names(text)}
    return [
        f"variable ${{{name}}} looks like a chiso setting but chiso/core/settings.py does not declare it"
        for name in sorted(names)
        if name.startswith("CHISO_") and name not in setting_defaults
    ]


def _portal_problems(services: dict, setting_defaults: SettingDefaults) -> list[str]:
    """The portal connection must reach the simulator with the token the simulator expects."""
    simulator = services.get("simulator")
    if simulator is None:
        return []
    argv = command_argv(simulator) or []
    simulator_port = argv[argv.index("--port") + 1] if "--port" in argv[:-1] else None
    token_value = environment(simulator).get("CHISO_SIMULATOR_TOKEN")
    simulator_token = render_unset(str(token_value or "")) or setting_defaults.get("CHISO_SIMULATOR_TOKEN")
    conn_var = f"AIRFLOW_CONN_{setting_defaults[PORTAL_CONN_ID_SETTING].upper()}"

    problems = []
    for name, service in services.items():
        value = environment(service).get(conn_var)
        if not isinstance(value, str):
            continue
        try:
            connection = parse_connection(render_unset(value))
        except ValueError:
            continue  # reported by _connection_problems
        if connection.get("host") != "simulator":
            problems.append(f"{name}: {conn_var} does not point at the simulator")
        if simulator_port is not None and str(connection.get("port")) != simulator_port:
            problems.append(f"{name}: {conn_var} uses port {connection.get('port')}, "
                            f"the simulator listens on {simulator_port}")
        if connection.get("password") != simulator_token:
            problems.append(f"{name}: the password of {conn_var} is not the simulator's CHISO_SIMULATOR_TOKEN")
    return problems


def image_tag(image: str) -> str | None:
    """The tag of ``name[:tag]`` (a registry's host:port is not a tag)."""
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def celery_profile_problems(services: dict) -> list[str]:
    """The profile celery must be a working CeleryExecutor deployment: a pinned Redis with a health
    check, workers that run ``airflow celery worker`` with the scheduler's own environment (the same
    database, JWT secret and execution API) and wait for Redis, a broker URL naming that Redis, and
    N workers. Services outside the profile must not need it (a plain ``docker compose up``)."""
    problems = []
    in_profile = {name for name, service in services.items() if CELERY_PROFILE in (service.get("profiles") or [])}
    problems += [f"profile {CELERY_PROFILE} has no service {name!r}" for name in sorted(CELERY_SERVICES - in_profile)]
    for name, service in services.items():
        if name not in in_profile:
            problems += [f"{name}: starts without the profile {CELERY_PROFILE} but depends on {dependency}, "
                         "which only runs with it" for dependency in depends_on(service) if dependency in in_profile]
        image = service.get("image")
        if name in in_profile and image and "build" not in service and image_tag(str(image)) in UNPINNED_TAGS:
            problems.append(f"{name}: image {image} names no version")
    redis = services.get("redis")
    if redis is not None and "healthcheck" not in redis:
        problems.append("redis: has no healthcheck, so the workers cannot wait for it")
    scheduler_env = environment(services.get("airflow-scheduler") or {})
    broker = render_unset(str(scheduler_env.get("AIRFLOW__CELERY__BROKER_URL") or ""))
    if urlsplit(broker).hostname not in in_profile:
        problems.append(f"airflow-scheduler: AIRFLOW__CELERY__BROKER_URL {broker!r} names no service of the "
                        f"profile {CELERY_PROFILE}")
    if render_unset(str(scheduler_env.get("AIRFLOW__CORE__EXECUTOR") or "")) != "LocalExecutor":
        problems.append("airflow-scheduler: the executor must default to LocalExecutor (the plain stack has no workers)")
    worker = services.get("airflow-worker")
    if worker is None:
        return problems
    if command_argv(worker) != ["airflow", "celery", "worker"]:
        problems.append(f"airflow-worker: runs {command_argv(worker)}, not airflow celery worker")
    if depends_on(worker).get("redis") != "service_healthy":
        problems.append("airflow-worker: does not wait for redis to be healthy")
    worker_env = environment(worker)
    for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__API_AUTH__JWT_SECRET",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "AIRFLOW__CELERY__BROKER_URL", "CHISO_WAREHOUSE_URL"):
        if worker_env.get(key) != scheduler_env.get(key):
            problems.append(f"airflow-worker: {key} differs from the scheduler's (tasks would be rejected or lost)")
    replicas = render_unset(str((worker.get("deploy") or {}).get("replicas", "1")))
    if not replicas.isdigit() or int(replicas) < 2:
        problems.append(f"airflow-worker: {replicas!r} replicas by default; the profile is there to run several")
    return problems


def undeclared_setting_names(files: list[Path], declared: set[str]) -> list[str]:
    """`file: NAME` for each CHISO_* name a file mentions that is not a declared setting."""
    problems = []
    for path in files:
        for setting_name in sorted(set(SETTING_NAME.findall(path.read_text())) - declared):
            problems.append(f"{path}: {setting_name} is not declared in chiso/core/settings.py")
    return problems


def files_to_scan(repo_root: Path) -> list[Path]:
    return sorted(path for directory in SETTING_SCAN_DIRS for path in (repo_root / directory).rglob("*.py"))


# --- Tests -----------------------------------------------------------------------------------

SETTING_DEFAULTS = {name: setting.default for name, setting in SETTINGS.items()}


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


def test_compose_file_fits_the_repository(compose):
    problems = compose_problems(compose, REPO_ROOT, SETTING_DEFAULTS)
    assert problems == [], "\n".join(problems)


def test_compose_has_every_service_of_the_stack(compose):
    assert EXPECTED_SERVICES <= compose["services"].keys()


def test_code_reads_only_declared_settings():
    files = files_to_scan(REPO_ROOT)
    assert any(path.name == "settings.py" for path in files), "the scan found no code to check"
    problems = undeclared_setting_names(files, set(SETTINGS))
    assert problems == [], "\n".join(problems)


def test_scan_reports_an_undeclared_setting(tmp_path):
    code = tmp_path / "reader.py"
    code.write_text('import os\nos.environ["CHISO_NOT_A_SETTING"]\nget("CHISO_HOME")\n')
    assert undeclared_setting_names([code], set(SETTINGS)) == [
        f"{code}: CHISO_NOT_A_SETTING is not declared in chiso/core/settings.py"
    ]


def test_dockerfile_copy_of_a_missing_file_is_reported(tmp_path):
    (tmp_path / "present.txt").write_text("")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "FROM python:3.11-slim\n"
        "COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /bin/\n"
        "COPY present.txt \\\n    absent.txt ./\n"
    )
    problems = dockerfile_copy_problems(dockerfile, tmp_path)
    assert problems == ["Dockerfile copies absent.txt, which does not exist"]


def test_render_unset_applies_defaults():
    assert render_unset("${A:-x}/${B}/${C:?required}/$$HOME/${D-y}") == "x///$HOME/y"


def _set(path: list, value) -> Callable[[dict], None]:
    def mutate(compose: dict) -> None:
        node = compose
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _delete(path: list) -> Callable[[dict], None]:
    def mutate(compose: dict) -> None:
        node = compose
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


SCHEDULER_ENV = ["services", "airflow-scheduler", "environment"]

BROKEN_COPIES = {
    "missing service": (_delete(["services", "metabase"]), "missing service 'metabase'"),
    "missing build context": (
        _set(["services", "simulator", "build"], {"context": "no-such-dir", "dockerfile": "Dockerfile"}),
        "simulator: build context no-such-dir does not exist",
    ),
    "missing dockerfile": (
        _set(["services", "simulator", "build"], {"context": ".", "dockerfile": "Nope.Dockerfile"}),
        "simulator: dockerfile Nope.Dockerfile does not exist",
    ),
    "missing bind mount source": (
        _set(["services", "airflow-scheduler", "volumes"], ["./no-such-dags:/opt/chiso/dags"]),
        "airflow-scheduler: bind mount source ./no-such-dags does not exist",
    ),
    "undeclared named volume": (
        _set(["services", "postgres", "volumes"], ["pgdata:/var/lib/postgresql/data"]),
        "postgres: named volume 'pgdata' is not declared",
    ),
    "unknown dependency": (
        _set(["services", "metabase", "depends_on"], {"warehouse": {"condition": "service_started"}}),
        "metabase: depends on unknown service 'warehouse'",
    ),
    "healthy wait without healthcheck": (
        _set(["services", "metabase", "depends_on"], {"mailcatcher": {"condition": "service_healthy"}}),
        "metabase: waits for mailcatcher to be healthy, but it has no healthcheck",
    ),
    "Airflow 2 command": (
        _set(["services", "airflow-apiserver", "command"], "airflow webserver"),
        "`airflow webserver` is not a known Airflow 3 command",
    ),
    "renamed python option": (
        _set(["services", "simulator", "command"], "python -m chiso.simulator --listen 0.0.0.0 --port 8765"),
        "simulator: python -m chiso.simulator is given --listen, which its source never mentions",
    ),
    "uncheckable command": (
        _set(["services", "simulator", "command"], "bash -c 'python serve.py'"),
        "simulator: `bash -c python serve.py` is a command tests/test_compose.py cannot check",
    ),
    "portal port differs from simulator": (
        _set(["services", "simulator", "command"], "python -m chiso.simulator --host 0.0.0.0 --port 9000"),
        "AIRFLOW_CONN_CHISO_PORTAL uses port 8765, the simulator listens on 9000",
    ),
    "missing python module": (
        _set(["services", "simulator", "command"], "python -m chiso.no_such_module --port 8765"),
        "simulator: python -m chiso.no_such_module: neither chiso/no_such_module.py",
    ),
    "unknown CHISO_ name": (
        _set(SCHEDULER_ENV + ["CHISO_NOT_A_SETTING"], "x"),
        "airflow-scheduler: sets CHISO_NOT_A_SETTING, which chiso/core/settings.py does not declare",
    ),
    "unknown CHISO_ interpolation": (
        _set(SCHEDULER_ENV + ["CHISO_HOME"], "${CHISO_DATA_ROOT:-/data}"),
        "variable ${CHISO_DATA_ROOT} looks like a chiso setting",
    ),
    "boolean environment value": (
        _set(SCHEDULER_ENV + ["AIRFLOW__CORE__LOAD_EXAMPLES"], False),
        "airflow-scheduler: AIRFLOW__CORE__LOAD_EXAMPLES must be a string",
    ),
    "connection id not in settings": (
        _set(SCHEDULER_ENV + ["AIRFLOW_CONN_PORTAL"], '{"conn_type": "http", "host": "simulator"}'),
        "airflow-scheduler: AIRFLOW_CONN_PORTAL matches none of the connection ids",
    ),
    "connection missing": (
        _delete(SCHEDULER_ENV + ["AIRFLOW_CONN_CHISO_SMTP"]),
        "airflow-scheduler: AIRFLOW_CONN_CHISO_SMTP is missing",
    ),
    "connection is broken JSON": (
        _set(SCHEDULER_ENV + ["AIRFLOW_CONN_CHISO_SMTP"], '{"conn_type": "smtp",'),
        "airflow-scheduler: AIRFLOW_CONN_CHISO_SMTP is neither valid JSON nor a URI",
    ),
    "connection to unknown host": (
        _set(SCHEDULER_ENV + ["AIRFLOW_CONN_CHISO_SMTP"], "smtp://mailhog:1025"),
        "airflow-scheduler: AIRFLOW_CONN_CHISO_SMTP points at host 'mailhog'",
    ),
    "portal token differs from simulator": (
        _set(["services", "simulator", "environment", "CHISO_SIMULATOR_TOKEN"], "other-token"),
        "the password of AIRFLOW_CONN_CHISO_PORTAL is not the simulator's CHISO_SIMULATOR_TOKEN",
    ),
    "airflow service without warehouse": (
        _delete(SCHEDULER_ENV + ["CHISO_WAREHOUSE_URL"]),
        "airflow-scheduler: Airflow service does not set CHISO_WAREHOUSE_URL",
    ),
    "warehouse database never created": (
        _set(SCHEDULER_ENV + ["CHISO_WAREHOUSE_URL"], "postgresql://chiso:chiso@postgres:5432/dwh"),
        "airflow-scheduler: CHISO_WAREHOUSE_URL uses database 'dwh', which postgres never creates",
    ),
    "metabase database never created": (
        _set(["services", "metabase", "environment", "MB_DB_DBNAME"], "mb"),
        "metabase: MB_DB_DBNAME names database 'mb', which postgres never creates",
    ),
    "container path missing from repo": (
        _set(SCHEDULER_ENV + ["CHISO_RECIPIENTS_FILE"], "/opt/chiso/config/nobody.yml"),
        "CHISO_RECIPIENTS_FILE=/opt/chiso/config/nobody.yml, but config/nobody.yml does not exist",
    ),
    "unquoted port": (
        _set(["services", "metabase", "ports"], [3000]),
        "metabase: port 3000 must be a quoted string",
    ),
}


@pytest.mark.parametrize("mutate, expected_problem", BROKEN_COPIES.values(), ids=BROKEN_COPIES.keys())
def test_a_broken_copy_is_reported(compose, mutate, expected_problem):
    broken = copy.deepcopy(compose)
    mutate(broken)
    problems = compose_problems(broken, REPO_ROOT, SETTING_DEFAULTS)
    assert any(expected_problem in problem for problem in problems), problems


# An exact version: a name, a colon and a tag with a digit that is no moving alias (latest, stable, a bare
# major version such as postgres:15 or a distribution alone such as nginx:alpine).
PINNED_IMAGE = re.compile(r"^[a-z0-9./_-]+:v?\d+\.\d+[0-9A-Za-z.+_-]*$")


def image_pin_problems(compose: dict, dockerfile_text: str) -> list[str]:
    """Every third-party image of the stack and the Dockerfile's base image must name an exact version,
    so that the stack a user starts is the one these files were checked against."""
    problems = []
    for name, service in compose.get("services", {}).items():
        image = str(service.get("image") or "")
        if not image or "build" in service:
            continue  # built from this repository (chiso:local)
        if not PINNED_IMAGE.match(image):
            problems.append(f"{name}: image {image!r} has no exact version")
    for line in dockerfile_text.splitlines():
        if line.upper().startswith("FROM "):
            image = line.split()[1]
            if not PINNED_IMAGE.match(image):
                problems.append(f"Dockerfile: base image {image!r} has no exact version")
    return problems


def test_every_image_is_pinned_to_a_version(compose):
    assert image_pin_problems(compose, (REPO_ROOT / "Dockerfile").read_text()) == []


@pytest.mark.parametrize("image", ["postgres:15", "nginx:alpine", "metabase/metabase", "mailpit:latest"])
def test_an_unpinned_image_is_reported(compose, image):
    broken = copy.deepcopy(compose)
    broken["services"]["mailcatcher"]["image"] = image
    assert image_pin_problems(broken, "FROM python:slim\n") == [
        f"mailcatcher: image {image!r} has no exact version", "Dockerfile: base image 'python:slim' has no exact version"]


def test_the_docs_service_serves_the_data_docs_and_the_dbt_docs_from_a_pinned_image(compose):
    """Both sites the gates and dbt-docs write, read-only, from an nginx image of a fixed version."""
    services = compose["services"]
    docs = services["data-docs"]
    image, _, tag = docs["image"].partition(":")
    assert image == "nginx" and re.fullmatch(r"\d+\.\d+\.\d+(-alpine)?", tag), docs["image"]
    served = {volume.split(":")[0]: volume.split(":")[1] for volume in docs["volumes"]}
    assert served == {"data-docs": "/usr/share/nginx/html", "dbt-docs": "/usr/share/nginx/html/dbt"}
    assert all(volume.endswith(":ro") for volume in docs["volumes"])
    # Each site is written where the service reads it: the gates' CHISO_DATA_DOCS_DIR, dbt-docs' CHISO_DBT_DOCS_DIR.
    gates_env = services["airflow-scheduler"]["environment"]
    assert f"data-docs:{gates_env['CHISO_DATA_DOCS_DIR']}" in services["airflow-scheduler"]["volumes"]
    builder = services["dbt-docs"]
    assert builder["command"] == "python -m chiso.docs_site.offline dbt"
    assert f"dbt-docs:{builder['environment']['CHISO_DBT_DOCS_DIR']}" in builder["volumes"]


def test_celery_profile_runs_workers_with_redis(compose):
    assert celery_profile_problems(compose["services"]) == []
    worker = compose["services"]["airflow-worker"]
    assert CELERY_PROFILE in worker["profiles"] and CELERY_PROFILE in compose["services"]["redis"]["profiles"]
    assert all(CELERY_PROFILE not in (compose["services"][name].get("profiles") or [])
               for name in ("airflow-scheduler", "airflow-apiserver", "airflow-dag-processor", "airflow-triggerer"))


@pytest.mark.parametrize("break_it, expected", [
    (lambda s: s.pop("redis"), "profile celery has no service 'redis'"),
    (lambda s: s["redis"].update(image="redis:latest"), "redis: image redis:latest names no version"),
    (lambda s: s["redis"].update(image="redis"), "redis: image redis names no version"),
    (lambda s: s["redis"].pop("healthcheck"), "redis: has no healthcheck, so the workers cannot wait for it"),
    (lambda s: s["airflow-worker"].update(command="airflow scheduler"),
     "airflow-worker: runs ['airflow', 'scheduler'], not airflow celery worker"),
    (lambda s: s["airflow-worker"]["depends_on"].pop("redis"), "airflow-worker: does not wait for redis to be healthy"),
    (lambda s: s["airflow-worker"].update(environment={**s["airflow-worker"]["environment"],
                                                       "AIRFLOW__API_AUTH__JWT_SECRET": "another"}),
     "airflow-worker: AIRFLOW__API_AUTH__JWT_SECRET differs from the scheduler's (tasks would be rejected or lost)"),
    (lambda s: s["airflow-worker"]["deploy"].update(replicas=1),
     "airflow-worker: '1' replicas by default; the profile is there to run several"),
    (lambda s: s["airflow-scheduler"]["depends_on"].update(redis={"condition": "service_healthy"}),
     "airflow-scheduler: starts without the profile celery but depends on redis, which only runs with it"),
    (lambda s: s["airflow-scheduler"].update(environment={**s["airflow-scheduler"]["environment"],
                                                          "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor"}),
     "airflow-scheduler: the executor must default to LocalExecutor (the plain stack has no workers)"),
])
def test_a_broken_celery_profile_is_reported(compose, break_it, expected):
    services = copy.deepcopy(compose["services"])
    break_it(services)
    assert expected in celery_profile_problems(services)
