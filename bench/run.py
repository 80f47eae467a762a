"""Benchmark: a baked service with every production option on, side by side with floors.

    uv run python bench/run.py                 # about three minutes
    uv run python bench/run.py --rounds 7 --duration 10

It bakes the template with every option that changes the service on (database=postgresql,
auth=jwt, metrics, tracing, Sentry, Redis, taskiq tasks), installs
it, creates a fresh PostgreSQL database and migrates it, and starts the service with its
production command (`<slug> serve`, one worker, ENVIRONMENT=production, JSON access lines
written to a file). Next to it, served by uvicorn the same way (one worker, uvloop and
httptools): `bare_app.py` (FastAPI and one route) and `floor_app.py` (FastAPI and asyncpg,
the same queries and token check, no ORM, no middleware). Data is seeded through the API.

Each scenario runs in rounds that alternate which side goes first; every run is a closed
loop of keep-alive connections from the baked project's own load generator
(`scripts/load.py`, `make bench`), in a separate process. Per run it prints requests per
second, the server process's CPU time per request (utime + stime from /proc/<pid>/stat,
steadier than req/s on a shared machine), p50, p99 and non-2xx answers; then the median
ratios (service / baseline) and whether the targets are met. Import time is the median of
fresh interpreters importing `<slug>.main` versus `bare_import.py`.

Needs a PostgreSQL server (DATABASE_ADMIN_URL, default postgres@127.0.0.1:5432, trust) and a
Redis server (BENCH_REDIS_URL, default 127.0.0.1:6379; its keys get a prefix of their own and
are deleted afterwards).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
TEMPLATE = BENCH.parent
SLUG = "benchsvc"
OPTIONS = {
    "project_slug": SLUG,
    "database": "postgresql",
    "auth": "jwt",
    "metrics": True,
    "tracing": True,
    "sentry": True,
    "redis": True,
    "tasks": "taskiq",
    "docker": False,
    "ci": "none",
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PASSWORD = "correct horse battery staple"  # noqa: S105 - a throwaway local account
# Targets from the issue (service / floor).
MAX_CPU_RATIO = 1.5
MIN_LIVENESS_RPS_RATIO = 0.85
MAX_IMPORT_RATIO = 1.3
MAX_OVERLOAD_P99_RATIO = 2.0  # the list's p99 at --overload connections / at --connections


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


@dataclass
class Scenario:
    name: str
    path: str
    connections: int
    method: str = "GET"
    body: str | None = None
    token: str | None = None
    runs: dict[str, list[dict[str, float]]] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def step(message: str) -> None:
    print(f"-- {message}", flush=True)


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def clean_env() -> dict[str, str]:
    """Ours without what would select this repository's virtualenv for the baked project."""
    drop = {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE"}
    return {key: value for key, value in os.environ.items() if key not in drop}


def bake(directory: Path) -> Path:
    from cookiecutter.main import cookiecutter

    step("baking " + " ".join(f"{key}={value}" for key, value in OPTIONS.items()))
    project = cookiecutter(
        str(TEMPLATE),
        no_input=True,
        default_config=True,
        output_dir=str(directory),
        extra_context=OPTIONS,
    )
    # As the container image installs it: without development tools (structlog, for one,
    # imports rich when it finds it, which would count in the import time).
    step("installing the baked project (uv sync --no-dev)")
    run(["uv", "sync", "--quiet", "--no-dev"], Path(project), clean_env())
    return Path(project)


@contextmanager
def fresh_database(project: Path, env: dict[str, str], admin_url: str) -> Iterator[None]:
    python = str(project / ".venv/bin/python")
    name = env["DATABASE_URL"].rsplit("/", 1)[1]
    step(f"creating and migrating database {name}")
    run([str(project / f".venv/bin/{SLUG}"), "create-database"], project, env)
    run([str(project / ".venv/bin/alembic"), "upgrade", "head"], project, env)
    try:
        yield
    finally:
        drop = (
            "import asyncio, asyncpg, sys\n"
            "async def main():\n"
            "    connection = await asyncpg.connect(sys.argv[1])\n"
            f"    await connection.execute('DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)')\n"
            "    await connection.close()\n"
            "asyncio.run(main())\n"
        )
        subprocess.run([python, "-c", drop, admin_url], check=False)
        # And the service's Redis keys (limiter counts, the task stream): all under its prefix.
        forget = (
            "import redis, sys\n"
            "client = redis.Redis.from_url(sys.argv[1])\n"
            "keys = list(client.scan_iter(match=sys.argv[2] + '*'))\n"
            "if keys: client.delete(*keys)\n"
        )
        redis_args = [env["REDIS_URL"], env["REDIS_KEY_PREFIX"]]
        subprocess.run([python, "-c", forget, *redis_args], check=False)


def start(name: str, command: list[str], cwd: Path, env: dict[str, str], logs: Path) -> Server:
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Server(name, process, int(env["PORT"]), log)


def wait_until_up(server: Server, path: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            sys.exit(f"{server.name} exited:\n{server.log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{server.port}{path}", timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    sys.exit(f"{server.name} did not answer {path} within 60 s:\n{server.log.read_text()[-3000:]}")


def stop(server: Server) -> None:
    if server.process.poll() is None:
        os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()


def seed(port: int, rounds_items: int) -> tuple[str, str]:
    """Two users: one whose list is read (`rounds_items` items), one that creates items."""
    tokens = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=30) as client:
        for who in ("reader", "writer"):
            email = f"{who}-{secrets.token_hex(4)}@example.com"
            answer = client.post("/auth/register", json={"email": email, "password": PASSWORD})
            answer.raise_for_status()
            answer = client.post("/auth/token", data={"username": email, "password": PASSWORD})
            answer.raise_for_status()
            tokens.append(answer.json()["access_token"])
        for number in range(rounds_items):
            answer = client.post(
                "/items",
                json={"name": f"item {number}", "description": "seeded by the benchmark"},
                headers={"Authorization": f"Bearer {tokens[0]}"},
            )
            answer.raise_for_status()
    return tokens[0], tokens[1]


def load(
    project: Path, server: Server, scenario: Scenario, duration: float, label: str
) -> dict[str, float]:
    """One closed-loop run of the generated project's own load generator (`make bench`)."""
    command = [
        str(project / ".venv/bin/python"),
        str(project / "scripts/load.py"),
        f"http://127.0.0.1:{server.port}{scenario.path}",
        "--json",
        f"--method={scenario.method}",
        f"--connections={scenario.connections}",
        f"--duration={duration}",
    ]
    if scenario.token:
        command.append(f"--header=Authorization: Bearer {scenario.token}")
    if scenario.body:
        command.append("--body=" + scenario.body.replace("{label}", label))
    before = server.cpu_seconds()
    result = json.loads(subprocess.run(command, capture_output=True, check=True).stdout)
    cpu = server.cpu_seconds() - before
    requests = max(result["requests"], 1)
    failures = sum(
        count for status, count in result["statuses"].items() if not status.startswith("2")
    )
    if result["errors"]:
        print(f"   load errors: {result['errors']}")
    return {
        "rps": result["rps"],
        "cpu_ms": cpu * 1000 / requests,
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
        "non_2xx": failures,
        "s5xx": sum(c for s, c in result["statuses"].items() if s.startswith("5")),
    }


def show(server: Server, figures: dict[str, float]) -> None:
    print(
        f"   {server.name:<8} {figures['rps']:8.0f} req/s {figures['cpu_ms']:7.3f} ms CPU/req "
        f"p50 {figures['p50_ms']:7.1f} ms  p99 {figures['p99_ms']:7.1f} ms"
        + (f"  non-2xx {figures['non_2xx']:.0f}" if figures["non_2xx"] else ""),
        flush=True,
    )


def import_seconds(python: str, module: str, cwd: Path, env: dict[str, str]) -> float:
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); started = time.perf_counter(); "
        f"import {module}; print(time.perf_counter() - started)"
    )
    result = subprocess.run(
        [python, "-c", code, str(BENCH)], cwd=cwd, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        sys.exit(f"importing {module} failed:\n{result.stderr}")
    return float(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="A/B rounds per scenario (3)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run (5)")
    parser.add_argument("--connections", type=int, default=32, help="for list and create (32)")
    parser.add_argument(
        "--overload", type=int, default=64, help="connections of the overload run (64; 0: none)"
    )
    parser.add_argument("--live-connections", type=int, default=64, help="for liveness (64)")
    parser.add_argument("--imports", type=int, default=7, help="fresh interpreters per import")
    parser.add_argument("--project", type=Path, help="reuse this baked project (no bake)")
    parser.add_argument("--keep", action="store_true", help="keep the baked project and logs")
    parser.add_argument(
        "--admin-url",
        default=os.environ.get(
            "DATABASE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL maintenance database; a fresh database is created next to it",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="the Redis the service uses (its keys get a prefix of their own)",
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="fastapi-bench-"))
    try:
        return benchmark(args, workdir)
    finally:
        if args.keep:
            step(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def benchmark(args: argparse.Namespace, workdir: Path) -> int:
    project = args.project.resolve() if args.project else bake(workdir)
    python = str(project / ".venv/bin/python")
    database = f"bench_{secrets.token_hex(4)}"
    admin = httpx.URL(args.admin_url)
    env = clean_env() | {
        "ENVIRONMENT": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": str(admin.copy_with(scheme="postgresql+asyncpg", path=f"/{database}")),
        "HOST": "127.0.0.1",
        "WEB_CONCURRENCY": "1",
        "ACCESS_TOKEN_MINUTES": "240",
        "TOKEN_AUDIENCE": SLUG,
        "REDIS_URL": args.redis_url,
        "REDIS_KEY_PREFIX": f"{database}:",
        # Production needs a mail server to register users: a closed local port, so the
        # two verification mails of the seeding fail at once (logged, never retried long).
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(free_port()),
        "PUBLIC_BASE_URL": "https://bench.example.com",
    }
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "SENTRY_DSN"):
        env.pop(name, None)

    with fresh_database(project, env, args.admin_url):
        uvicorn = [python, "-m", "uvicorn", "--app-dir", str(BENCH), "--host", "127.0.0.1"]
        uvicorn += ["--workers", "1", "--no-access-log", "--no-server-header"]
        uvicorn += ["--log-level", "warning"]
        servers: list[Server] = []
        try:
            service_env = env | {"PORT": str(free_port()), "METRICS_PORT": str(free_port())}
            command = [str(project / f".venv/bin/{SLUG}"), "serve"]
            service = start("service", command, project, service_env, workdir)
            servers.append(service)
            wait_until_up(service, "/health/ready")
            for name in ("bare", "floor"):
                port = free_port()
                command = [*uvicorn, "--port", str(port), f"{name}_app:app"]
                servers.append(start(name, command, BENCH, env | {"PORT": str(port)}, workdir))
            bare, floor = servers[1:]
            wait_until_up(bare, "/health/live")
            wait_until_up(floor, "/api/v1/items")

            step("seeding through the API")
            reader, writer = seed(service.port, 30)
            body = '{"name": "{label}-{n}", "description": "created by the benchmark"}'
            scenarios = [
                (Scenario("liveness", "/health/live", args.live_connections), bare),
                (
                    Scenario("list 20", "/api/v1/items?limit=20", args.connections, token=reader),
                    floor,
                ),
                (
                    Scenario("create", "/api/v1/items", args.connections, "POST", body, writer),
                    floor,
                ),
            ]
            if args.overload:
                scenarios.append(
                    (
                        Scenario(
                            f"list 20 @{args.overload}",
                            "/api/v1/items?limit=20",
                            args.overload,
                            token=reader,
                        ),
                        floor,
                    )
                )
            for scenario, baseline in scenarios:
                step(
                    f"{scenario.name}: {scenario.connections} connections, "
                    f"{args.rounds} rounds of {args.duration:g} s per side"
                )
                for server in (service, baseline):  # warm-up, not counted
                    load(project, server, scenario, 1.0, f"warm-{server.name}")
                for number in range(args.rounds):
                    order = (service, baseline) if number % 2 == 0 else (baseline, service)
                    print(f"  round {number + 1}")
                    for server in order:
                        figures = load(
                            project, server, scenario, args.duration, f"{server.name}-{number}"
                        )
                        scenario.runs.setdefault(server.name, []).append(figures)
                        show(server, figures)

            step(f"import time, {args.imports} fresh interpreters each, alternating")
            mine, bare_imports = [], []
            for _ in range(args.imports + 1):
                mine.append(import_seconds(python, f"{SLUG}.main", project, service_env))
                bare_imports.append(import_seconds(python, "bare_import", project, service_env))
            mine, bare_imports = mine[1:], bare_imports[1:]  # the first compiles bytecode
        finally:
            for server in servers:
                stop(server)

    return summarise(scenarios, statistics.median(mine), statistics.median(bare_imports))


def summarise(scenarios: list[tuple[Scenario, Server]], mine: float, bare: float) -> int:
    print("\n== median over rounds (service / baseline)")
    met = True
    for scenario, baseline in scenarios:
        ours, theirs = scenario.runs["service"], scenario.runs[baseline.name]
        rps = statistics.median(a["rps"] / b["rps"] for a, b in zip(ours, theirs, strict=True))
        cpu = statistics.median(
            a["cpu_ms"] / b["cpu_ms"] for a, b in zip(ours, theirs, strict=True)
        )
        p99 = statistics.median(run["p99_ms"] for run in ours)
        p50 = statistics.median(run["p50_ms"] for run in ours)
        errors = sum(run["s5xx"] for run in ours)
        line = (
            f"{scenario.name:<14} vs {baseline.name:<5}: req/s {rps:5.2f}x  CPU/req {cpu:5.2f}x  "
            f"service p50 {p50:6.1f} ms p99 {p99:6.1f} ms  5xx {errors:.0f}"
        )
        if scenario.name == "liveness":
            ok = rps >= MIN_LIVENESS_RPS_RATIO
            line += f"  [target req/s >= {MIN_LIVENESS_RPS_RATIO}x: {'met' if ok else 'MISSED'}]"
        elif "@" not in scenario.name:
            ok = cpu <= MAX_CPU_RATIO
            line += f"  [target CPU <= {MAX_CPU_RATIO}x: {'met' if ok else 'MISSED'}]"
        else:  # the overload run: p99 against the same list's at the normal concurrency
            [normal] = [s for s, _ in scenarios if s.path == scenario.path and s is not scenario]
            normal_p99 = statistics.median(run["p99_ms"] for run in normal.runs["service"])
            ok = p99 <= MAX_OVERLOAD_P99_RATIO * normal_p99
            line += (
                f"  [target p99 <= {MAX_OVERLOAD_P99_RATIO:g}x {normal.name}'s: "
                f"{p99 / normal_p99:.2f}x, {'met' if ok else 'MISSED'}]"
            )
        met &= ok
        print(line)
    ratio = mine / bare
    ok = ratio <= MAX_IMPORT_RATIO
    met &= ok
    print(
        f"{'import':<14} vs bare : {mine * 1000:.0f} ms vs {bare * 1000:.0f} ms = {ratio:.2f}x  "
        f"[target <= {MAX_IMPORT_RATIO}x: {'met' if ok else 'MISSED'}]"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
