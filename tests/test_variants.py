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
import subprocess
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import yaml

from tests import oidc_provider
from tests.conftest import POSTGRES_SERVER_URL, Baked, run, tool_env
from tests.k8s_validate import validate_manifests
from tests.oidc_provider import running_provider
from tests.project_files import (
    dockerfile_cmd,
    github_run_commands,
    gitlab_script_commands,
    makefile_recipes,
    production_command,
)
from tests.template import PROJECT_TEMPLATE, post_gen
from tests.variants import VARIANTS, Variant

TEMPLATE_SYNTAX = re.compile(r"(?<!\$)\{\{|\{%|\{#")
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


@pytest.mark.parametrize("variant", ALL)
def test_file_set_matches_the_feature_map(
    bake: Callable[[Variant], Baked], variant: Variant
) -> None:
    project = bake(variant)
    slug = variant.context["project_slug"]
    template_files = {
        path.relative_to(PROJECT_TEMPLATE).as_posix().replace("{{cookiecutter.project_slug}}", slug)
        for path in PROJECT_TEMPLATE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    removed = post_gen.paths_to_remove(variant.context)
    expected = {
        name
        for name in template_files
        if not any(name == path or name.startswith(f"{path}/") for path in removed)
    }
    assert set(project.files_as_generated) - {".env"} == expected
    for feature in post_gen.FEATURES:
        if feature.is_chosen(variant.context):
            for path in post_gen.feature_paths(feature, slug):
                assert (project.path / path).exists(), path


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
    assert len(env["SECRET_KEY"]) >= 43  # >= 32 random bytes, base64url
    assert env["SECRET_KEY"] not in (project.path / ".env.example").read_text()
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
    expected += {"jwt": ["argon2id", "SECRET_KEY"], "oidc": ["OIDC_ISSUER"], "none": []}[
        context["auth"]
    ]
    if context["database"] == "postgresql":
        expected.append("DATABASE_URL")
    if context["metrics"]:
        expected.append("METRICS_PORT")
    assert [name for name in expected if name not in security] == []
    open_api = context["auth"] == "none" and context["database"] != "none"
    assert ("The items API is open to anyone" in readme) is open_api
    settings = (project.path / ".env.example").read_text()
    for name in ["DOCS_ENABLED", "HSTS_MAX_AGE_SECONDS"] + ["METRICS_PORT"] * context["metrics"]:
        assert f"{name}=" in settings, name


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


@pytest.mark.parametrize("variant", ALL)
def test_pre_commit_passes_in_a_new_repository(
    bake: Callable[[Variant], Baked], variant: Variant, tmp_path: Path
) -> None:
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


def wait_until_live(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{base_url}/health/live", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail(f"the server did not answer within 30 s:\n{log.read_text()[-4000:]}")


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


def production_env(
    port: int,
    metrics_port: int,
    provider: oidc_provider.Provider | None,
    database_url: str | None,
) -> dict[str, str]:
    env = {
        "ENVIRONMENT": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "METRICS_PORT": str(metrics_port),
    }
    if provider:
        env |= {"OIDC_ISSUER": provider.issuer, "OIDC_AUDIENCE": oidc_provider.AUDIENCE}
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def start_server(project: Path, env: dict[str, str], output: IO[bytes]) -> subprocess.Popen[bytes]:
    """The production command (`make run` without `uv run`), as the container runs it."""
    command = production_command(project)
    return subprocess.Popen(
        [str(project / ".venv" / "bin" / command[0]), *command[1:]],
        cwd=project,
        env=tool_env(**env),
        stdout=output,
        stderr=subprocess.STDOUT,
    )


@pytest.mark.parametrize("variant", ALL)
def test_production_process_serves_and_stops_cleanly(
    bake: Callable[[Variant], Baked], variant: Variant, tmp_path: Path
) -> None:
    project = bake(variant)
    context = variant.context
    port, metrics_port = free_port(), free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"

    with (
        fresh_database(variant, tmp_path) if context["database"] != "none" else _none() as url,
        running_provider() if context["auth"] == "oidc" else _none() as provider,
    ):
        env = production_env(port, metrics_port, provider, url)
        if url:
            run(
                [str(project.path / ".venv/bin/alembic"), "upgrade", "head"],
                cwd=project.path,
                **env,
            )
        with log.open("wb") as output:
            process = start_server(project.path, env, output)
            try:
                wait_until_live(base_url, process, log)
                in_flight = exercise(base_url, port, context, provider, metrics_port)
                process.send_signal(signal.SIGTERM)
                if in_flight is not None:
                    connection, body = in_flight
                    time.sleep(0.5)  # the server is draining now
                    response = finish(connection, body)
                    assert response.startswith("HTTP/1.1 201"), response[:300]
                assert process.wait(timeout=10) == 0
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()

    lines = log.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # production logs are JSON, every line
    access = [r for r in records if r.get("event") == "request"]
    assert access, "no access line"
    assert all(r["request_id"] for r in access)
    assert {"method", "path", "status", "duration_ms"} <= set(access[0])


@contextmanager
def _none() -> Iterator[None]:
    yield None


def b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def sign_in_with_a_password(client: httpx.Client) -> dict[str, str]:
    """The built-in users' whole story, as a client sees it; returns a valid bearer header."""
    account = {"email": "harness@example.com", "password": "a long enough passphrase"}
    assert client.post("/api/v1/auth/register", json=account).status_code == 201
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
        assert client.get("/health/live").status_code == 200
        assert client.get("/health/ready").status_code == 200
        info = client.get("/api/v1/info")
        assert info.status_code == 200
        assert_private_in_production(client, info)
        missing = client.get("/api/v1/this-does-not-exist")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
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
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect", "/openapi.json"):
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
    port, metrics_port = free_port(), free_port()
    base_url = f"http://127.0.0.1:{port}"
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    log = tmp_path / "server.log"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    with (
        fresh_database(variant, tmp_path) if context["database"] != "none" else _none() as url,
        running_provider() if context["auth"] == "oidc" else _none() as provider,
        log.open("wb") as output,
    ):
        env = production_env(port, metrics_port, provider, url)
        env |= {"WEB_CONCURRENCY": "2", "TMPDIR": str(scratch)}
        process = start_server(project.path, env, output)
        try:
            wait_until_live(base_url, process, log)
            sent = 0
            # New connections, several at a time, until both workers have answered some.
            with ThreadPoolExecutor(max_workers=8) as pool:
                while len(counting_pids(scratch)) < 2 and sent < 2000:
                    statuses = list(
                        pool.map(
                            lambda _: httpx.get(f"{base_url}/api/v1/info").status_code, range(100)
                        )
                    )
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
                scraped = httpx.get(metrics_url, timeout=10).text
                time.sleep(0.2)
            assert worker_counts(httpx.get(metrics_url, timeout=10).text) == sent

            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
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
    text = dockerfile.read_text()
    users = re.findall(r"^USER (\S+)", text, flags=re.MULTILINE)
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert "HEALTHCHECK" in text
    assert dockerfile_cmd(dockerfile) == production_command(project.path)
    ignored = (project.path / ".dockerignore").read_text().splitlines()
    assert ".env" in ignored


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
    for command in github_run_commands(workflows[0]):
        assert command.split()[0] == "make", command
        assert command.split()[1] in targets, command


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


@pytest.mark.parametrize("variant", WITH_KUBERNETES)
def test_kubernetes_manifests(bake: Callable[[Variant], Baked], variant: Variant) -> None:
    project = bake(variant)
    assert validate_manifests(project.path / "deploy" / "k8s") == []


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

    settings = k8s_document(k8s, "configmap.yaml")["data"]
    assert "*" not in settings["FORWARDED_ALLOW_IPS"]
    if variant.context["metrics"]:
        annotations = pod["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == settings["METRICS_PORT"]
        assert int(settings["METRICS_PORT"]) == container_ports["metrics"]
        service_ports = k8s_document(k8s, "service.yaml")["spec"]["ports"]
        assert [port["targetPort"] for port in service_ports] == ["http"]  # metrics stay inside
