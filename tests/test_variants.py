"""The battery every variant must pass, baked and run for real (marked slow).

One variant's tests share an xdist worker (`xdist_group`), so it is baked and installed
once; --durations shows the bake+install cost on the first test of each variant.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests import oidc_provider
from tests.conftest import POSTGRES_SERVER_URL, Baked, run, tool_env
from tests.k8s_validate import validate_manifests
from tests.loopback_server import QuietHandler, serving
from tests.oidc_provider import running_provider
from tests.otlp_receiver import running_receiver, span_names
from tests.project_files import (
    dockerfile_cmd,
    dockerfile_final_stage,
    github_jobs,
    github_run_commands,
    gitlab_jobs,
    gitlab_script_commands,
    makefile_recipes,
    production_command,
)
from tests.template import PROJECT_TEMPLATE, post_gen
from tests.variants import OPTIONS, VARIANTS, Variant

TEMPLATE_SYNTAX = re.compile(r"(?<!\$)\{\{|\{%|\{#")
DOWNLOADERS = re.compile(r"\b(curl|wget)\b")
# The app's health routes, as the harness calls them on the real server.
LIVE_PATH = "/health/live"
READY_PATH = "/health/ready"
# What a production process needs besides SECRET_KEY with auth=jwt (ignored by the other
# variants): a mail server, where nothing listens here (mail fails fast and is logged), and
# https links.
PRODUCTION_MAIL = {
    "SMTP_HOST": "127.0.0.1",
    "SMTP_PORT": "9",
    "SMTP_TLS": "none",
    "PUBLIC_BASE_URL": "https://app.example.test",
}


def production_env() -> dict[str, str]:
    return {"ENVIRONMENT": "production", "SECRET_KEY": secrets.token_urlsafe(48), **PRODUCTION_MAIL}


TEXT_SUFFIXES = {".py", ".toml", ".yaml", ".yml", ".json", ".md", ".ini", ".cfg", ".txt", ".mako"}


def variants(predicate: Callable[[dict[str, Any]], bool] = lambda _context: True) -> list[Any]:
    return [
        pytest.param(v, id=v.name, marks=[pytest.mark.slow, pytest.mark.xdist_group(v.name)])
        for v in VARIANTS
        if predicate(v.context)
    ]


ALL = variants()
WITH_DATABASE = variants(lambda c: c["database"] != "none")
WITH_DOCKER = variants(lambda c: c["docker"])
WITH_GITHUB = variants(lambda c: c["ci"] == "github")
WITH_GITLAB = variants(lambda c: c["ci"] == "gitlab")
WITH_KUBERNETES = variants(lambda c: c["kubernetes"])


def database_env(variant: Variant) -> dict[str, str]:
    if variant.context["database"] == "postgresql":
        return {"DATABASE_URL": POSTGRES_SERVER_URL}
    return {}


@contextmanager
def fresh_database(variant: Variant, directory: Path) -> Iterator[str]:
    """An empty database of the variant's kind; PostgreSQL ones are dropped afterwards."""
    if variant.context["database"] == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / f'{uuid.uuid4().hex}.db'}"
        return
    name = f"harness_{uuid.uuid4().hex[:12]}"
    server = ["-h", "127.0.0.1", "-U", "postgres"]
    run(["createdb", *server, name], cwd=directory)
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        run(["dropdb", *server, "--force", name], cwd=directory)


# --- what was generated --------------------------------------------------------------


@pytest.mark.parametrize("variant", ALL)
def test_no_template_syntax_is_left(bake: Callable[[Variant], Baked], variant: Variant) -> None:
    project = bake(variant)
    leftovers = [
        name
        for name in project.files_as_generated
        if Path(name).suffix in TEXT_SUFFIXES | {""}
        and TEMPLATE_SYNTAX.search((project.path / name).read_text(encoding="utf-8"))
    ]
    assert leftovers == []


# Which paths each choice must and must not produce, written out here rather than read from
# the hook's FEATURES: a wrong feature map then fails. `{slug}` is the package name; a path
# that must not exist may be a folder (nothing may be generated under it).
Condition = tuple[tuple[str, Any], ...]
DB_PATHS = (
    "alembic.ini",
    "migrations/env.py",
    "src/{slug}/db.py",
    "src/{slug}/items/router.py",
    "tests/test_database.py",
    "tests/test_items.py",
)
JWT_PATHS = (
    "src/{slug}/auth/models.py",
    "src/{slug}/auth/passwords.py",
    "src/{slug}/auth/rate_limit.py",
    "src/{slug}/auth/service.py",
    "src/{slug}/auth/tokens.py",
    "src/{slug}/users/router.py",
    "src/{slug}/accounts/router.py",
    "src/{slug}/mail/outbox.py",
    "src/{slug}/mail/templates/password_reset.html.jinja",
    "migrations/versions/20260102_0002_account_mail.py",
    "migrations/versions/20260104_0004_users_token_version.py",
    "tests/test_auth_jwt.py",
    "tests/test_users.py",
    "tests/test_mail.py",
)
OIDC_PATHS = ("src/{slug}/auth/oidc.py", "tests/test_auth_oidc.py")
AUTH_PATHS = ("src/{slug}/auth/dependencies.py", "tests/auth_support.py")
DOCKER_PATHS = (".dockerignore", "Dockerfile", "compose.yaml")
GITHUB_PATHS = (".github/workflows/ci.yml", ".github/dependabot.yml")
K8S_PATHS = tuple(
    f"deploy/k8s/{name}"
    for name in (
        "kustomization.yaml",
        "deployment.yaml",
        "service.yaml",
        "configmap.yaml",
        "networkpolicy.yaml",
    )
)
FEATURE_MODULES = {
    "metrics": ("src/{slug}/metrics.py", "tests/test_metrics.py"),
    "tracing": ("src/{slug}/tracing.py", "tests/test_tracing.py"),
    "sentry": ("src/{slug}/sentry.py", "tests/test_sentry.py"),
    "redis": ("src/{slug}/redis.py", "tests/redis_support.py", "tests/test_redis.py"),
}
TASK_PATHS = (
    "src/{slug}/tasks/worker.py",
    "tests/test_tasks.py",
    "tests/task_support.py",
    "src/{slug}/items/tasks.py",
    "migrations/versions/20260103_0003_items_archived_at.py",
    "src/{slug}/auth/tasks.py",
    "src/{slug}/mail/tasks.py",
)
TASK_K8S_PATHS = ("deploy/k8s/worker.yaml", "deploy/k8s/scheduler.yaml")
EXPECTED_PATHS: dict[Condition, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # condition: (must exist, must not exist)
    (("database", "sqlite"),): (DB_PATHS, ("tests/test_database_outage.py",)),
    (("database", "postgresql"),): ((*DB_PATHS, "tests/test_database_outage.py"), ()),
    (("database", "none"),): ((), (*DB_PATHS, "migrations", "src/{slug}/items")),
    (("auth", "none"),): (
        (),
        (
            "src/{slug}/auth",
            "src/{slug}/users",
            "src/{slug}/accounts",
            "src/{slug}/mail",
            *JWT_PATHS,
            *OIDC_PATHS,
            "tests/auth_support.py",
        ),
    ),
    (("auth", "jwt"),): ((*JWT_PATHS, *AUTH_PATHS), OIDC_PATHS),
    (("auth", "oidc"),): (
        (*OIDC_PATHS, *AUTH_PATHS),
        (*JWT_PATHS, "src/{slug}/users", "src/{slug}/accounts", "src/{slug}/mail"),
    ),
    (("docker", True),): (DOCKER_PATHS, ()),
    (("docker", False),): ((), DOCKER_PATHS),
    (("ci", "github"),): (GITHUB_PATHS, (".gitlab-ci.yml",)),
    (("ci", "gitlab"),): ((".gitlab-ci.yml",), (".github",)),
    (("ci", "none"),): ((), (".github", ".gitlab-ci.yml")),
    **{((option, True),): (paths, ()) for option, paths in FEATURE_MODULES.items()},
    **{((option, False),): ((), paths) for option, paths in FEATURE_MODULES.items()},
    (("tasks", "none"),): ((), TASK_PATHS),
    (("tasks", "taskiq"),): (TASK_PATHS[:3], ()),
    (("tasks", "taskiq"), ("database", "none")): ((), TASK_PATHS[3:5]),
    (("tasks", "taskiq"), ("database", "sqlite")): (TASK_PATHS[3:5], ()),
    (("tasks", "taskiq"), ("database", "postgresql")): (TASK_PATHS[3:5], ()),
    (("tasks", "taskiq"), ("auth", "jwt")): (TASK_PATHS[5:], ()),
    (("tasks", "taskiq"), ("auth", "none")): ((), TASK_PATHS[5:]),
    (("tasks", "taskiq"), ("auth", "oidc")): ((), TASK_PATHS[5:]),
    (("tasks", "taskiq"), ("kubernetes", True)): (TASK_K8S_PATHS, ()),
    (("tasks", "none"), ("kubernetes", True)): ((), TASK_K8S_PATHS),
    (("kubernetes", False),): ((), ("deploy",)),
    (("kubernetes", True),): (K8S_PATHS, ()),
    (("kubernetes", True), ("database", "postgresql")): (
        ("deploy/k8s/migrate-job.yaml", "deploy/k8s/hpa.yaml", "deploy/k8s/pdb.yaml"),
        ("deploy/k8s/pvc.yaml",),
    ),
    (("kubernetes", True), ("database", "sqlite")): (
        ("deploy/k8s/pvc.yaml",),
        ("deploy/k8s/migrate-job.yaml", "deploy/k8s/hpa.yaml", "deploy/k8s/pdb.yaml"),
    ),
    (("kubernetes", True), ("database", "none")): (
        ("deploy/k8s/hpa.yaml", "deploy/k8s/pdb.yaml"),
        ("deploy/k8s/migrate-job.yaml", "deploy/k8s/pvc.yaml"),
    ),
}


def is_under(name: str, path: str) -> bool:
    return name == path or name.startswith(f"{path}/")


def expected_paths(context: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(must exist, must not exist) for one variant, from EXPECTED_PATHS."""
    must: set[str] = set()
    must_not: set[str] = set()
    for condition, (present, absent) in EXPECTED_PATHS.items():
        if all(context[option] == value for option, value in condition):
            must.update(path.format(slug=context["project_slug"]) for path in present)
            must_not.update(path.format(slug=context["project_slug"]) for path in absent)
    return must, must_not


def test_every_value_of_a_pruning_option_has_expected_paths() -> None:
    options = {option for feature in post_gen.FEATURES for option in feature.when}
    for option in options:
        for value in OPTIONS[option]:
            assert ((option, value),) in EXPECTED_PATHS, (option, value)


@pytest.mark.parametrize("variant", ALL)
def test_each_choice_generates_its_files_and_no_others(
    bake: Callable[[Variant], Baked], variant: Variant
) -> None:
    generated = bake(variant).files_as_generated
    must, must_not = expected_paths(variant.context)
    assert must, "EXPECTED_PATHS has no row for this variant"
    assert sorted(must - generated) == []
    unwanted = [name for name in generated for path in must_not if is_under(name, path)]
    assert sorted(unwanted) == []


@pytest.mark.parametrize("variant", ALL)
def test_every_template_file_belongs_to_the_base_or_a_chosen_feature(
    bake: Callable[[Variant], Baked], variant: Variant
) -> None:
    """No file appears or disappears outside FEATURES (what it declares is checked above)."""
    project = bake(variant)
    slug = variant.context["project_slug"]
    template_files = {
        path.relative_to(PROJECT_TEMPLATE).as_posix().replace("{{cookiecutter.project_slug}}", slug)
        for path in PROJECT_TEMPLATE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    removed = post_gen.paths_to_remove(variant.context)
    expected = {
        name for name in template_files if not any(is_under(name, path) for path in removed)
    }
    assert set(project.files_as_generated) - {".env"} == expected


@pytest.mark.parametrize("variant", ALL)
def test_structured_files_parse(bake: Callable[[Variant], Baked], variant: Variant) -> None:
    project = bake(variant)
    for name in project.files_as_generated:
        text = (project.path / name).read_text(encoding="utf-8")
        if name.endswith((".yaml", ".yml")):
            list(yaml.safe_load_all(text))
        elif name.endswith(".toml"):
            tomllib.loads(text)
        elif name.endswith(".json"):
            json.loads(text)


@pytest.mark.parametrize("variant", ALL)
def test_env_file_holds_a_fresh_secret(bake: Callable[[Variant], Baked], variant: Variant) -> None:
    project = bake(variant)
    env = dict(
        line.split("=", 1)
        for line in (project.path / ".env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    example = (project.path / ".env.example").read_text()
    if variant.context["auth"] == "jwt":
        assert len(env["SECRET_KEY"]) >= 43  # >= 32 random bytes, base64url
        assert env["SECRET_KEY"] not in example
    else:  # nothing signs with a key: none is asked for, so none can be weak or leaked
        assert "SECRET_KEY" not in env
        assert "SECRET_KEY" not in example
    assert env["ENVIRONMENT"] == "development"  # unset would mean production
    assert ".env" in (project.path / ".gitignore").read_text().splitlines()
    assert (project.path / ".env").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("variant", ALL)
def test_readme_says_what_is_secure_and_what_to_set(
    bake: Callable[[Variant], Baked], variant: Variant
) -> None:
    project = bake(variant)
    context = variant.context
    readme = (project.path / "README.md").read_text()
    security = readme.split("\n## Security\n", 1)[1].split("\n## ", 1)[0]
    expected = ["no-store", "FORWARDED_ALLOW_IPS", "CORS_ORIGINS", "HSTS_MAX_AGE_SECONDS"]
    expected.append("MAX_REQUEST_BODY_BYTES")
    expected += {"jwt": ["argon2id", "SECRET_KEY"], "oidc": ["OIDC_ISSUER"], "none": []}[
        context["auth"]
    ]
    if context["database"] == "postgresql":
        expected.append("DATABASE_URL")
    if context["metrics"]:
        expected.append("METRICS_PORT")
    if context["redis"]:
        expected.append("REDIS_URL")
    assert [name for name in expected if name not in security] == []
    open_api = context["auth"] == "none" and context["database"] != "none"
    assert ("The items API is open to anyone" in readme) is open_api
    settings = (project.path / ".env.example").read_text()
    documented = ["DOCS_ENABLED", "HSTS_MAX_AGE_SECONDS"] + ["METRICS_PORT"] * context["metrics"]
    documented += ["REDIS_URL", "REDIS_KEY_PREFIX", "CACHE_TTL_SECONDS"] * context["redis"]
    for name in documented:
        assert f"{name}=" in settings, name


@pytest.mark.parametrize("variant", ALL)
def test_readme_layout_names_what_the_package_holds(
    bake: Callable[[Variant], Baked], variant: Variant
) -> None:
    """The Layout section lists every module and folder of the package, and no other, and
    cli.py's line names its commands, in each variant."""
    project = bake(variant).path
    package = project / "src" / variant.context["project_slug"]
    readme = (project / "README.md").read_text()
    layout = re.search(r"^## Layout\n\n```\n(.*?)```", readme, re.MULTILINE | re.DOTALL)
    assert layout, "the README has no Layout block"
    named = re.findall(r"^  (\w+(?:\.py)?)/?\s", layout[1], re.MULTILINE)
    present = [path.name for path in package.iterdir() if path.name not in PACKAGE_PLUMBING]
    assert sorted(named) == sorted(present)
    [cli_line] = [line for line in layout[1].splitlines() if line.startswith("  cli.py ")]
    commands = re.findall(r'add_parser\(\s*"([a-z-]+)"', (package / "cli.py").read_text())
    assert re.findall(r"`(?:\w+ )?([a-z-]+)`", cli_line) == commands


PACKAGE_PLUMBING = {"__init__.py", "py.typed", "__pycache__"}


# --- the project's own tools ---------------------------------------------------------


@pytest.mark.parametrize("variant", ALL)
def test_lint_and_types(bake: Callable[[Variant], Baked], variant: Variant) -> None:
    """`make lint`, line by line: the same commands CI runs."""
    project = bake(variant)
    for line in makefile_recipes(project.path / "Makefile")["lint"]:
        run(line.split(), cwd=project.path)


@pytest.mark.parametrize("variant", ALL)
def test_own_test_suite_passes(bake: Callable[[Variant], Baked], variant: Variant) -> None:
    """`make test`: the project's tests with its coverage threshold."""
    project = bake(variant)
    [line] = makefile_recipes(project.path / "Makefile")["test"]
    run(line.split(), cwd=project.path, timeout=900, **database_env(variant))


# The hooks are the same in every variant, and they run `make lint`'s three commands, which
# test_lint_and_types runs on every variant: the fewest and the most files are enough here.
FEWEST_AND_MOST = [param for param in ALL if param.id in {"defaults", "everything"}]


@pytest.mark.parametrize("variant", FEWEST_AND_MOST)
def test_pre_commit_passes_in_a_new_repository(
    bake: Callable[[Variant], Baked], variant: Variant, tmp_path: Path
) -> None:
    """The hooks (.pre-commit-config.yaml) run and pass in a fresh git repository made of
    the files as generated."""
    project = bake(variant)
    copy = tmp_path / project.path.name
    for name in project.files_as_generated:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes((project.path / name).read_bytes())
    run(["git", "init", "-q"], cwd=copy)
    run(["git", "add", "-A"], cwd=copy)
    run(["pre-commit", "run", "--all-files"], cwd=copy, PRE_COMMIT_HOME=str(tmp_path / "pc"))


@pytest.mark.parametrize("variant", WITH_DATABASE)
def test_migrations_round_trip(
    bake: Callable[[Variant], Baked], variant: Variant, tmp_path: Path
) -> None:
    project = bake(variant)
    alembic = str(project.path / ".venv" / "bin" / "alembic")
    with fresh_database(variant, tmp_path) as url:
        for step in (["upgrade", "head"], ["check"], ["downgrade", "base"], ["upgrade", "head"]):
            run([alembic, *step], cwd=project.path, DATABASE_URL=url)


# --- a real server process -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


ADDRESS_IN_USE = "address already in use"


def wait_until_live(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """For a test that starts the server itself, with PYTHONUNBUFFERED=1 so its start-up
    lines reach the log in time; `production_server` does both and retries a taken port."""
    if not wait_for_start(base_url, process, log):
        pytest.fail(f"the port was taken:\n{log.read_text()[-4000:]}")


def wait_for_start(base_url: str, process: subprocess.Popen[bytes], log: Path) -> bool:
    """True once this process has bound the port and answers; False if the port was taken
    (`free_port` releases it before the server binds it: another process may get there first).
    Until uvicorn says it runs on the port, an answer there may come from someone else."""
    deadline = time.monotonic() + 60
    announced = f"running on {base_url} "
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log.read_text()
            if ADDRESS_IN_USE in output.lower():
                return False
            pytest.fail(f"the server exited with {process.returncode}:\n{output[-4000:]}")
        if announced in log.read_text():
            try:
                if httpx.get(f"{base_url}{LIVE_PATH}", timeout=1).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
        time.sleep(0.2)
    pytest.fail(f"the server did not answer within 60 s:\n{log.read_text()[-4000:]}")


@contextmanager
def production_server(
    project: Baked, env: dict[str, str], log: Path
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """The production command on a free loopback port, live; killed if still running after.
    Started again on another port when a parallel test took the first one."""
    command = production_command(project.path)
    executable = project.path / ".venv" / "bin" / command[0]
    for _attempt in range(5):
        port = free_port()
        # Metrics have a port of their own (9100 by default: taken by parallel tests).
        ports = {"PORT": str(port), "METRICS_PORT": env.get("METRICS_PORT", str(free_port()))}
        with log.open("wb") as output:
            process = subprocess.Popen(
                [str(executable), *command[1:]],
                cwd=project.path,
                # Unbuffered: the start-up lines must reach the log while the server runs.
                env=tool_env(**(env | ports), HOST="127.0.0.1", PYTHONUNBUFFERED="1"),
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            if wait_for_start(f"http://127.0.0.1:{port}", process, log):
                yield process, port
                return
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    pytest.fail(f"no free port in five attempts:\n{log.read_text()[-4000:]}")


@contextmanager
def production_worker(
    project: Baked, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`make worker`'s command without `uv run` (what the worker container runs); killed if
    still running after."""
    [line] = makefile_recipes(project.path / "Makefile")["worker"]
    command = [
        word.replace("$(SLUG)", project.variant.context["project_slug"]) for word in line.split()
    ]
    assert command[:2] == ["uv", "run"], line
    ports = {"WORKER_METRICS_PORT": str(free_port())} if project.variant.context["metrics"] else {}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(project.path / ".venv" / "bin" / command[2]), *command[3:]],
            cwd=project.path,
            env=tool_env(**env, **ports, HOST="127.0.0.1", PYTHONUNBUFFERED="1"),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_for_event(log: Path, event: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if f'"event": "{event}"' in log.read_text():
            return
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        time.sleep(0.1)
    pytest.fail(f"no {event} line in 60 s:\n{log.read_text()[-4000:]}")


def delete_keys(project: Baked, prefix: str) -> None:
    """Delete the keys under `prefix` on the local Redis (with the project's own client)."""
    code = (
        "import sys, redis; r = redis.Redis(); "
        "keys = list(r.scan_iter(match=sys.argv[1] + '*')); keys and r.delete(*keys)"
    )
    run([str(project.path / ".venv" / "bin" / "python"), "-c", code, prefix], cwd=project.path)


def log_records(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]  # JSON, every line


def stored_item_names(url: str, directory: Path) -> list[str]:
    """The item names in the database at `url`, read directly (not through the service)."""
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(url.split(":///", 1)[1])) as connection:
            return [name for (name,) in connection.execute("SELECT name FROM items")]
    database = url.rsplit("/", 1)[1]
    query = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-tA"]
    return run([*query, "-c", "SELECT name FROM items"], cwd=directory).stdout.splitlines()


def post_slowly(port: int, path: str, body: bytes, headers: dict[str, str]) -> socket.socket:
    """Start a request and return once the application waits for its body, which `finish`
    sends. `Expect: 100-continue` makes the server say when the application first reads the
    body: only then is the request surely in flight (a SIGTERM that reaches the server
    before it has parsed the headers rightly closes the connection as idle)."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=15)
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"{extra}Content-Length: {len(body)}\r\nExpect: 100-continue\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    connection.sendall(head)
    interim = b""
    while not interim.endswith(b"\r\n\r\n"):
        chunk = connection.recv(1)
        assert chunk, f"the server closed the connection after {interim!r}"
        interim += chunk
    assert interim.startswith(b"HTTP/1.1 100 "), interim
    return connection


def finish(connection: socket.socket, body: bytes) -> str:
    connection.sendall(body)
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    connection.close()
    return b"".join(chunks).decode("latin-1")


@pytest.mark.parametrize("variant", ALL)
def test_production_process_serves_and_stops_cleanly(
    bake: Callable[[Variant], Baked], variant: Variant, tmp_path: Path
) -> None:
    project = bake(variant)
    context = variant.context
    log = tmp_path / "server.log"
    worker_log = tmp_path / "worker.log"

    with (
        fresh_database(variant, tmp_path) if context["database"] != "none" else _none() as url,
        running_provider() if context["auth"] == "oidc" else _none() as provider,
        running_receiver() if context["tracing"] else _none() as receiver,
    ):
        metrics_port = free_port()
        env = production_env()
        env["METRICS_PORT"] = str(metrics_port)
        if provider:
            env |= {"OIDC_ISSUER": provider.issuer, "OIDC_AUDIENCE": oidc_provider.AUDIENCE}
        if receiver:
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
        if url:
            env["DATABASE_URL"] = url
            run(
                [str(project.path / ".venv/bin/alembic"), "upgrade", "head"],
                cwd=project.path,
                **env,
            )
        tasks = context["tasks"] != "none"
        if tasks:  # a queue of this test's own, its keys deleted afterwards
            env["REDIS_KEY_PREFIX"] = f"harness-{uuid.uuid4().hex}:"
        with (
            production_worker(project, env, worker_log) if tasks else _none() as worker,
            production_server(project, env, log) as (process, port),
        ):
            # The README's load test, against the real server (briefly; on liveness, which
            # the metrics and the access log leave out).
            url_arg, args = f"url=http://127.0.0.1:{port}{LIVE_PATH}", "args=--duration 0.3"
            bench = run(["make", "bench", url_arg, args], project.path)
            assert "statuses {'200': " in bench.stdout, bench.stdout
            in_flight = exercise(f"http://127.0.0.1:{port}", port, context, provider, metrics_port)
            process.send_signal(signal.SIGTERM)
            if in_flight is not None:
                connection, body = in_flight
                time.sleep(0.5)  # the server is draining now
                response = finish(connection, body)
                assert response.startswith("HTTP/1.1 201"), response[:300]
            assert process.wait(timeout=10) == 0
            if worker:
                # The worker, started with the production command, stops cleanly too.
                wait_for_event(worker_log, "worker_started", worker)
                worker.send_signal(signal.SIGTERM)
                assert worker.wait(timeout=10) == 0, worker_log.read_text()[-4000:]
        if tasks:
            delete_keys(project, env["REDIS_KEY_PREFIX"])
            events = [record["event"] for record in log_records(worker_log)]
            assert {"worker_started", "stopping", "worker_stopped"} <= set(events), events
        if url:
            # The answer was 201: the item posted while draining was committed.
            assert "sent during shutdown" in stored_item_names(url, tmp_path)
        if receiver:
            # Spans are exported by the real process, flushed as it stops.
            names = span_names(receiver, project.path / ".venv" / "bin" / "python", tmp_path)
            assert "GET /api/v1/info" in names, names
            if url:
                assert {name.split()[0] for name in names} & {"SELECT", "INSERT"}, names

    access = [r for r in log_records(log) if r.get("event") == "request"]
    assert access, "no access line"
    assert all(r["request_id"] for r in access)
    assert {"method", "path", "status", "duration_ms"} <= set(access[0])


@pytest.mark.parametrize("variant", variants(lambda c: c["auth"] == "jwt"))
def test_serve_without_settings_is_production_and_refuses_the_example_key(
    bake: Callable[[Variant], Baked], variant: Variant, tmp_path: Path
) -> None:
    """No .env and no ENVIRONMENT: the process is production, so it will not sign tokens
    with the public example key; it says why in one readable message."""
    project = bake(variant)
    command = production_command(project.path)
    env = tool_env(HOST="127.0.0.1", PORT=str(free_port()))  # should it start after all
    for name in ("ENVIRONMENT", "SECRET_KEY"):
        env.pop(name, None)
    completed = subprocess.run(
        [str(project.path / ".venv" / "bin" / command[0]), *command[1:]],
        cwd=tmp_path,  # no .env here
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert completed.returncode != 0
    assert "Invalid configuration" in completed.stderr
    assert "SECRET_KEY is the public example value" in completed.stderr
    assert "Traceback" not in completed.stderr


# Trusting X-Forwarded-For is uvicorn's work, the same in every variant: one is enough.
DEFAULTS_ONLY = [param for param in ALL if param.id == "defaults"]


@pytest.mark.parametrize("variant", DEFAULTS_ONLY)
@pytest.mark.parametrize(
    ("allowed", "client"), [("127.0.0.1", "203.0.113.7"), ("10.9.9.9", "127.0.0.1")]
)
def test_forwarded_for_is_believed_only_from_trusted_proxies(
    bake: Callable[[Variant], Baked], variant: Variant, tmp_path: Path, allowed: str, client: str
) -> None:
    """A request from 127.0.0.1 claims to come from 203.0.113.7 on behalf of a proxy."""
    project = bake(variant)
    log = tmp_path / "server.log"
    env = {
        **production_env(),
        "FORWARDED_ALLOW_IPS": allowed,
    }
    with (
        fresh_database(variant, tmp_path) as url,
        production_server(project, env | {"DATABASE_URL": url}, log) as (process, port),
    ):
        headers = {"X-Forwarded-For": "203.0.113.7"}
        response = httpx.get(f"http://127.0.0.1:{port}/api/v1/info", headers=headers, timeout=10)
        assert response.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    [access] = [r for r in log_records(log) if r.get("path") == "/api/v1/info"]
    assert access["client"] == client


@contextmanager
def impostor_server() -> Iterator[int]:
    """Something else on a loopback port that answers 200 to every GET; yields the port."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    with serving(Handler) as port:
        yield port


@pytest.mark.parametrize("variant", DEFAULTS_ONLY)
def test_start_up_moves_on_from_a_port_taken_meanwhile(
    bake: Callable[[Variant], Baked],
    variant: Variant,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another test binds the port between `free_port` and the server: the harness neither
    believes that other server's answers nor gives up, it starts again on another port."""
    project = bake(variant)
    env = production_env()
    with impostor_server() as taken, fresh_database(variant, tmp_path) as url:
        offered = [taken]
        unused_port = free_port
        monkeypatch.setattr(
            f"{__name__}.free_port", lambda: offered.pop() if offered else unused_port()
        )
        log = tmp_path / "server.log"
        with production_server(project, env | {"DATABASE_URL": url}, log) as (process, port):
            assert port != taken
            info = httpx.get(f"http://127.0.0.1:{port}/api/v1/info", timeout=10)
            assert info.json()["name"] == "my-service"
            assert "strict-transport-security" in info.headers  # the production service
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0


@contextmanager
def _none() -> Iterator[None]:
    yield None


def b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def sign_in_with_a_password(client: httpx.Client) -> dict[str, str]:
    """The built-in users' whole story, as a client sees it; returns a valid bearer header."""
    account = {"email": "harness@example.com", "password": "a long enough passphrase"}
    assert client.post("/api/v1/auth/register", json=account).status_code == 202
    form = {"username": account["email"], "password": account["password"]}
    wrong = client.post("/api/v1/auth/token", data={**form, "password": "not the password"})
    assert wrong.status_code == 401
    first = client.post("/api/v1/auth/token", data=form)
    assert first.status_code == 200, first.text
    assert client.get("/api/v1/users/me").status_code == 401
    headers = bearer(first.json()["access_token"])
    me = client.get("/api/v1/users/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["email"] == account["email"]

    spent = {"refresh_token": first.json()["refresh_token"]}
    assert client.post("/api/v1/auth/refresh", json=spent).status_code == 200
    assert client.post("/api/v1/auth/refresh", json=spent).status_code == 401

    # The real token's claims, unsigned: only the algorithm can make the service refuse it.
    claims = first.json()["access_token"].split(".")[1]
    alg_none = f"{b64url({'alg': 'none', 'typ': 'JWT'})}.{claims}."
    assert client.get("/api/v1/users/me", headers=bearer(alg_none)).status_code == 401

    again = client.post("/api/v1/auth/token", data=form)
    return bearer(again.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(
    client: httpx.Client, context: dict[str, Any], provider: oidc_provider.Provider | None
) -> dict[str, str]:
    if context["auth"] == "jwt":
        return sign_in_with_a_password(client)
    if provider is not None:
        headers = bearer(provider.token("harness-user"))
        assert client.get("/api/v1/me").status_code == 401
        me = client.get("/api/v1/me", headers=headers)
        assert me.status_code == 200, me.text
        assert me.json()["subject"] == "harness-user"
        return headers
    return {}


def exercise(
    base_url: str,
    port: int,
    context: dict[str, Any],
    provider: oidc_provider.Provider | None,
    metrics_port: int,
) -> tuple[socket.socket, bytes] | None:
    """Talk to the running server; return a request left in flight (with a database)."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        assert client.get(LIVE_PATH).status_code == 200
        assert client.get(READY_PATH).status_code == 200
        info = client.get("/api/v1/info")
        assert info.status_code == 200
        assert_private_in_production(client, info)
        missing = client.get("/api/v1/this-does-not-exist")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        too_large = client.post("/api/v1/items", content=b"x" * (2 * 1024 * 1024))
        assert too_large.status_code == 413, too_large.text  # refused before auth reads it
        assert too_large.headers["content-type"] == "application/problem+json"
        assert client.get("/health/live").status_code == 200
        if context["metrics"]:
            assert client.get("/metrics").status_code == 404  # not on the service's port
            scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
            assert 'http_requests_total{method="GET",route="/api/v1/info",status="200"} 1.0' in (
                scraped
            )
        headers = sign_in(client, context, provider)
        if context["database"] == "none":
            return None
        item = {"name": "harness item", "description": "x"}
        created = client.post("/api/v1/items", json=item, headers=headers)
        assert created.status_code == 201, created.text
        fetched = client.get(f"/api/v1/items/{created.json()['id']}", headers=headers)
        assert fetched.status_code == 200
        assert fetched.json()["name"] == "harness item"
    body = json.dumps({"name": "sent during shutdown"}).encode()
    return post_slowly(port, "/api/v1/items", body, headers), body


def assert_private_in_production(client: httpx.Client, info: httpx.Response) -> None:
    """What a production process tells strangers: no docs or schema, no environment; and
    the headers that keep browsers on HTTPS and caches away from tokens and user data."""
    for path in (
        "/docs",
        "/redoc",
        "/docs/oauth2-redirect",
        "/openapi.json",
        "/docs/assets/favicon.png",
    ):
        hidden = client.get(path)
        assert hidden.status_code == 404, path
        assert hidden.headers["content-type"] == "application/problem+json"
    assert set(info.json()) == {"name", "version"}
    assert info.headers["strict-transport-security"] == "max-age=31536000"
    assert info.headers["cache-control"] == "no-store"


WITH_METRICS = variants(lambda c: c["metrics"])


def worker_counts(scraped: str) -> float:
    """The info requests counted on the metrics port (every worker's, added up)."""
    line = 'http_requests_total{method="GET",route="/api/v1/info",status="200"} '
    return sum(
        float(row.removeprefix(line)) for row in scraped.splitlines() if row.startswith(line)
    )


def counting_pids(directory: Path) -> set[int]:
    return {
        int(path.stem.rsplit("_", 1)[1]) for path in directory.glob("prometheus-*/counter_*.db")
    }


@pytest.mark.parametrize("variant", WITH_METRICS)
def test_metrics_add_up_every_worker(
    bake: Callable[[Variant], Baked], variant: Variant, tmp_path: Path
) -> None:
    """WEB_CONCURRENCY=2: the metrics port adds up both workers' counts (each worker writes
    to prometheus-client's multiprocess directory, under TMPDIR here), keeps a killed
    worker's counts, and everything stops with exit 0 and leaves no directory behind."""
    project = bake(variant)
    context = variant.context
    log = tmp_path / "server.log"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    metrics_port = free_port()
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    env = production_env()
    env |= {"METRICS_PORT": str(metrics_port), "WEB_CONCURRENCY": "2", "TMPDIR": str(scratch)}
    with (
        fresh_database(variant, tmp_path) if context["database"] != "none" else _none() as url,
        running_provider() if context["auth"] == "oidc" else _none() as provider,
    ):
        if provider:
            env |= {"OIDC_ISSUER": provider.issuer, "OIDC_AUDIENCE": oidc_provider.AUDIENCE}
        if url:
            env["DATABASE_URL"] = url
        with production_server(project, env, log) as (process, port):
            info_url = f"http://127.0.0.1:{port}/api/v1/info"
            sent = 0
            # New connections, several at a time, until both workers have answered some.
            with ThreadPoolExecutor(max_workers=8) as pool:
                while len(counting_pids(scratch)) < 2 and sent < 2000:
                    statuses = list(pool.map(lambda _: httpx.get(info_url).status_code, range(100)))
                    assert statuses == [200] * 100
                    sent += 100
            pids = counting_pids(scratch)
            assert len(pids) == 2, f"one worker served all {sent} requests: {pids}"
            scraped = httpx.get(metrics_url, timeout=10).text
            assert worker_counts(scraped) == sent, scraped
            assert 'http_requests_in_progress{method="GET"} 0.0' in scraped

            # A killed worker: uvicorn starts another; its counts stay, its gauges go.
            killed = min(pids)
            os.kill(killed, signal.SIGKILL)
            deadline = time.monotonic() + 20
            while any(scratch.glob(f"prometheus-*/gauge_livesum_{killed}.db")):
                assert time.monotonic() < deadline, "the dead worker's gauge stayed"
                httpx.get(metrics_url, timeout=10)  # each scrape forgets dead workers
                time.sleep(0.2)
            assert worker_counts(httpx.get(metrics_url, timeout=10).text) == sent

            # The replacement serves before the stop, so the stop measures a drain, not how
            # long a worker takes to boot on a loaded machine.
            deadline = time.monotonic() + 60
            while log.read_text().count("Application startup complete") < 3:
                assert time.monotonic() < deadline, f"no replacement worker:\n{log.read_text()}"
                time.sleep(0.2)
            process.send_signal(signal.SIGTERM)
            try:
                assert process.wait(timeout=15) == 0
            except subprocess.TimeoutExpired:
                pytest.fail(f"still running 15 s after SIGTERM:\n{log.read_text()[-4000:]}")
    assert not list(scratch.iterdir()), "the multiprocess directory was left behind"


# --- Docker, CI and Kubernetes files, checked statically -----------------------------


@pytest.mark.parametrize("variant", WITH_DOCKER)
def test_docker_files(bake: Callable[[Variant], Baked], variant: Variant) -> None:
    project = bake(variant)
    dockerfile = project.path / "Dockerfile"
    run(["hadolint", str(dockerfile)], cwd=project.path)
    run(
        ["check-jsonschema", "--builtin-schema", "vendor.compose-spec", "compose.yaml"],
        cwd=project.path,
    )
    final = dockerfile_final_stage(dockerfile)
    users = [arguments for instruction, arguments in final if instruction == "USER"]
    assert users, "the image runs as root"
    assert users[-1].split(":")[0] == "10001"
    installs = " ".join(arguments for instruction, arguments in final if instruction == "RUN")
    assert not DOWNLOADERS.search(installs), installs
    [healthcheck] = [arguments for instruction, arguments in final if instruction == "HEALTHCHECK"]
    probe: list[str] = yaml.safe_load(healthcheck.split(" CMD ", 1)[1])  # exec form
    assert probe[0] in {"python", variant.context["project_slug"]}, probe
    assert not DOWNLOADERS.search(healthcheck), healthcheck
    assert LIVE_PATH in healthcheck
    assert dockerfile_cmd(dockerfile) == production_command(project.path)
    ignored = (project.path / ".dockerignore").read_text().splitlines()
    assert ".env" in ignored


@pytest.mark.parametrize("variant", variants(lambda c: c["docker"] and c["database"] != "none"))
def test_compose_starts_the_app_after_the_migrations(
    bake: Callable[[Variant], Baked], variant: Variant
) -> None:
    project = bake(variant)
    services = yaml.safe_load((project.path / "compose.yaml").read_text())["services"]
    for name in ("app", "app-dev"):
        migrated = {"condition": "service_completed_successfully"}
        assert services[name]["depends_on"]["migrate"] == migrated, name
    assert services["migrate"]["command"] == ["alembic", "upgrade", "head"]
    if variant.context["database"] == "postgresql":
        assert services["migrate"]["depends_on"]["db"] == {"condition": "service_healthy"}


# Published on every interface: the service itself (and nothing else) may be.
PUBLIC_COMPOSE_PORTS = {"8000:8000"}


@pytest.mark.parametrize("variant", WITH_DOCKER)
def test_compose_keeps_the_database_private_and_the_app_in_production(
    bake: Callable[[Variant], Baked], variant: Variant
) -> None:
    project = bake(variant)
    services = yaml.safe_load((project.path / "compose.yaml").read_text())["services"]
    for name, service in services.items():
        for published in map(str, service.get("ports", [])):
            assert published in PUBLIC_COMPOSE_PORTS or published.startswith("127.0.0.1:"), (
                name,
                published,
            )
    # `environment` beats `env_file` (.env says development): the app runs in production.
    assert services["app"]["environment"]["ENVIRONMENT"] == "production"
    assert services["app-dev"]["environment"]["ENVIRONMENT"] == "development"
    if variant.context["database"] == "postgresql":
        assert services["db"]["ports"] == ["127.0.0.1:5432:5432"]


@pytest.mark.parametrize("variant", WITH_GITHUB)
def test_github_actions(bake: Callable[[Variant], Baked], variant: Variant) -> None:
    project = bake(variant)
    workflows = sorted((project.path / ".github" / "workflows").glob("*.yml"))
    run(
        ["check-jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, workflows)],
        cwd=project.path,
    )
    run(
        ["check-jsonschema", "--builtin-schema", "vendor.dependabot", ".github/dependabot.yml"],
        cwd=project.path,
    )
    targets = makefile_recipes(project.path / "Makefile")
    workflow = project.path / ".github" / "workflows" / "ci.yml"
    for command in github_run_commands(workflow):
        assert command.split()[0] == "make", command
        assert command.split()[1] in targets, command
    jobs = github_jobs(workflow)
    runs = {
        name: [step["run"].strip() for step in job.get("steps", []) if "run" in step]
        for name, job in jobs.items()
    }
    for command in ("make lint", "make test", "make audit"):
        assert any(command in commands for commands in runs.values()), f"no job runs {command}"
    [test_job] = [jobs[name] for name, commands in runs.items() if "make test" in commands]
    postgres = [
        service
        for service in test_job.get("services", {}).values()
        if str(service.get("image", "")).startswith("postgres:")
    ]
    if variant.context["database"] == "postgresql":
        assert postgres, "the test job has no PostgreSQL service"
        assert test_job["env"]["DATABASE_URL"].startswith("postgresql+asyncpg://")
    else:
        assert postgres == []
    redis = [
        service
        for service in test_job.get("services", {}).values()
        if str(service.get("image", "")).startswith("redis:")
    ]
    assert bool(redis) == variant.context["redis"], redis
    if variant.context["redis"]:
        assert test_job["env"]["REDIS_URL"].startswith("redis://")


@pytest.mark.parametrize("variant", WITH_GITLAB)
def test_gitlab_ci(bake: Callable[[Variant], Baked], variant: Variant) -> None:
    project = bake(variant)
    run(
        ["check-jsonschema", "--builtin-schema", "vendor.gitlab-ci", ".gitlab-ci.yml"],
        cwd=project.path,
    )
    recipe_lines = {
        line for lines in makefile_recipes(project.path / "Makefile").values() for line in lines
    }
    commands = gitlab_script_commands(project.path / ".gitlab-ci.yml", image_jobs=("docker-image",))
    assert commands
    assert set(commands) <= recipe_lines
    # The uv image has no make: each target's recipe is some job's whole script.
    recipes = makefile_recipes(project.path / "Makefile")
    jobs = gitlab_jobs(project.path / ".gitlab-ci.yml")
    for target in ("lint", "test", "audit"):
        assert any(job["script"] == recipes[target] for job in jobs.values()), target
    [test_job] = [job for job in jobs.values() if job["script"] == recipes["test"]]
    services = [
        service["name"] if isinstance(service, dict) else service
        for service in test_job.get("services", [])
    ]
    postgres = [service for service in services if service.startswith("postgres:")]
    if variant.context["database"] == "postgresql":
        assert postgres, "the test job has no PostgreSQL service"
        assert test_job["variables"]["DATABASE_URL"].startswith("postgresql+asyncpg://")
    else:
        assert postgres == []
    redis = [service for service in services if service.startswith("redis:")]
    assert bool(redis) == variant.context["redis"], redis
    if variant.context["redis"]:
        assert test_job["variables"]["REDIS_URL"].startswith("redis://redis:")


@pytest.mark.parametrize("variant", WITH_KUBERNETES)
def test_kubernetes_manifests(bake: Callable[[Variant], Baked], variant: Variant) -> None:
    project = bake(variant)
    assert validate_manifests(project.path / "deploy" / "k8s") == []


def kubernetes_objects(directory: Path) -> dict[str, list[dict[str, Any]]]:
    """Every object in the directory's YAML files, by kind."""
    objects: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(directory.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(document, dict) and "kind" in document:
                objects.setdefault(document["kind"], []).append(document)
    return objects


def settings_default(project: Baked, field: str) -> Any:
    python = str(project.path / ".venv" / "bin" / "python")
    slug = project.variant.context["project_slug"]
    code = f"from {slug}.settings import Settings; print(Settings.model_fields[{field!r}].default)"
    return yaml.safe_load(run([python, "-c", code], cwd=project.path).stdout)


@pytest.mark.parametrize("variant", WITH_KUBERNETES)
def test_kubernetes_pods_are_locked_down_probed_and_drained(
    bake: Callable[[Variant], Baked], variant: Variant
) -> None:
    project = bake(variant)
    objects = kubernetes_objects(project.path / "deploy" / "k8s")
    deployments = {
        document["metadata"]["labels"]["app.kubernetes.io/component"]: document
        for document in objects["Deployment"]
    }
    tasks = variant.context["tasks"] != "none"
    assert set(deployments) == ({"api", "worker", "scheduler"} if tasks else {"api"})
    deployment = deployments["api"]
    [config] = objects["ConfigMap"]
    pod = deployment["spec"]["template"]["spec"]
    for each in deployments.values():
        pod_spec = each["spec"]["template"]["spec"]
        assert pod_spec["securityContext"]["runAsNonRoot"] is True
        assert pod_spec["securityContext"]["runAsUser"] == 10001
        for container in pod_spec.get("initContainers", []) + pod_spec["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, container["name"]
            assert security["allowPrivilegeEscalation"] is False, container["name"]
            assert security["capabilities"]["drop"] == ["ALL"], container["name"]
            requests = container["resources"]["requests"]
            assert {"cpu", "memory"} <= requests.keys(), container["name"]
            assert "memory" in container["resources"]["limits"], container["name"]

    [app] = [container for container in pod["containers"] if container["name"] == "app"]
    ports = {port["name"]: port["containerPort"] for port in app["ports"]}
    # The port the server listens on in the pod: the ConfigMap's PORT, else the image's.
    image_env = " ".join(
        arguments
        for instruction, arguments in dockerfile_final_stage(project.path / "Dockerfile")
        if instruction == "ENV"
    )
    image_port = re.search(r"\bPORT=(\d+)", image_env)
    assert image_port, image_env
    port = int(config["data"].get("PORT", image_port[1]))
    probes = {
        "startupProbe": LIVE_PATH,
        "livenessProbe": LIVE_PATH,
        "readinessProbe": READY_PATH,
    }
    for probe, path in probes.items():
        assert app[probe]["httpGet"]["path"] == path, probe
        assert ports[app[probe]["httpGet"]["port"]] == port, probe

    # SIGTERM comes after the preStop pause; the drain must end before the kill.
    drain = int(
        config["data"].get("GRACEFUL_SHUTDOWN_TIMEOUT")
        or settings_default(project, "graceful_shutdown_timeout")
    )
    pause = 0
    if pre_stop := app.get("lifecycle", {}).get("preStop"):
        command = pre_stop["exec"]["command"]
        assert command[0] == "sleep", command
        pause = int(command[1])
    assert pod["terminationGracePeriodSeconds"] > pause + drain
    if tasks:
        # The worker drains running tasks for the same time; its probes read its heartbeat.
        worker_pod = deployments["worker"]["spec"]["template"]["spec"]
        assert worker_pod["terminationGracePeriodSeconds"] > drain
        [worker] = worker_pod["containers"]
        heartbeat = f"/tmp/{variant.context['project_slug']}-worker.alive"  # noqa: S108 - the pod's emptyDir
        for probe in ("startupProbe", "livenessProbe"):
            assert heartbeat in " ".join(worker[probe]["exec"]["command"]), probe
        # Two schedulers would send every periodic task twice.
        scheduler = deployments["scheduler"]["spec"]
        assert scheduler["replicas"] == 1
        assert scheduler["strategy"]["type"] == "Recreate"


def k8s_document(directory: Path, name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((directory / name).read_text())
    return document


@pytest.mark.parametrize("variant", WITH_KUBERNETES)
def test_kubernetes_admits_only_the_ingress_and_the_scraper(
    bake: Callable[[Variant], Baked], variant: Variant
) -> None:
    k8s = bake(variant).path / "deploy" / "k8s"
    assert "networkpolicy.yaml" in k8s_document(k8s, "kustomization.yaml")["resources"]
    policy = k8s_document(k8s, "networkpolicy.yaml")["spec"]
    pod = k8s_document(k8s, "deployment.yaml")["spec"]["template"]
    assert policy["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    [container] = pod["spec"]["containers"]
    container_ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    admitted = []
    for rule in policy["ingress"]:
        assert rule["from"], rule  # never from everywhere
        assert all(set(peer) == {"namespaceSelector"} for peer in rule["from"]), rule
        admitted += [port["port"] for port in rule["ports"]]
    expected = ["http", "metrics"] if variant.context["metrics"] else ["http"]
    assert admitted == expected
    assert set(admitted) <= container_ports.keys()

    if variant.context["auth"] == "jwt":  # mail leaves through the SMTP submission ports
        allowed_out = {port["port"] for rule in policy["egress"] for port in rule["ports"]}
        assert {587, 465} <= allowed_out

    settings = k8s_document(k8s, "configmap.yaml")["data"]
    assert "*" not in settings["FORWARDED_ALLOW_IPS"]
    if variant.context["metrics"]:
        annotations = pod["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == settings["METRICS_PORT"]
        assert int(settings["METRICS_PORT"]) == container_ports["metrics"]
        service_ports = k8s_document(k8s, "service.yaml")["spec"]["ports"]
        assert [port["targetPort"] for port in service_ports] == ["http"]  # metrics stay inside
