"""The first week with the template and a generated service, step by step as a user takes
it: the README's commands, the cookiecutter command line, `make` and the service's CLI.

The slow tests share one project, baked through the command line with built-in users
(`auth=jwt`, SQLite) and installed once per session (one xdist group).
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests import conftest
from tests.conftest import run, stop_process_group, tool_env
from tests.template import pre_gen
from tests.test_bad_answers import generate
from tests.test_git_url import commit_template_copy
from tests.test_template import quick_start_commands
from tests.test_variants import free_port

ANSI = re.compile(r"\x1b\[[0-9;]*m")

# --- the template repository ----------------------------------------------------------


def test_interpreters_are_found_behind_a_failing_pyenv_shim(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """As under a `uv` that is a pyenv shim: PYENV_VERSION is set for us, and the shims of
    python3.13 and python3.12 come first on PATH and fail."""
    shims = tmp_path / "shims"
    shims.mkdir()
    for name in ("python3", *(f"python{version}" for version in conftest.PYTHON_VERSIONS)):
        shim = shims / name
        shim.write_text(f"#!/bin/sh\necho 'pyenv: {name}: command not found' >&2\nexit 127\n")
        shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYENV_VERSION", "3.11.7")
    project = tmp_path / "project"
    project.mkdir()

    for version in conftest.PYTHON_VERSIONS:
        interpreter = conftest.find_interpreter(version)
        assert interpreter, version
        assert not interpreter.startswith(str(shims))
        reported = subprocess.run(
            [interpreter, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            env=conftest.clean_env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert reported == version

        (project / ".python-version").write_text(f"{version}\n")
        env = tool_env(project)
        assert "PYENV_VERSION" not in env
        assert env["UV_PYTHON"] == conftest.INTERPRETERS[version]


def test_a_missing_python_stops_the_run_at_the_start_with_one_line(
    monkeypatch: pytest.MonkeyPatch, pytestconfig: pytest.Config
) -> None:
    monkeypatch.setattr(conftest, "PYTHON_VERSIONS", ("3.99",))
    with pytest.raises(pytest.UsageError) as raised:
        conftest.pytest_configure(pytestconfig)
    message = str(raised.value)
    assert "\n" not in message
    assert "Python 3.99 is not installed" in message
    assert "uv python install 3.99" in message


def test_the_readme_generate_command_works_as_written_in_a_clone(tmp_path: Path) -> None:
    """The Quick start's first command, run in a clone (a git copy of this repository), with
    cookiecutter from our environment in place of `uvx cookiecutter` and --no-input."""
    generate_command = quick_start_commands()[0].split()
    assert generate_command[:2] == ["uvx", "cookiecutter"]
    clone = commit_template_copy(tmp_path / "clone")
    completed = subprocess.run(
        [sys.executable, "-m", "cookiecutter", *generate_command[2:], "--no-input"],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert (tmp_path / "my_service" / "src" / "my_service" / "main.py").is_file()


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Order's Service v2.0", "orders_service_v2_0"),
        ("Café Orders", "cafe_orders"),
        ("2024 Orders", "service_2024_orders"),
        ("billing-api.internal", "billing_api_internal"),
        ("  Straße  ", "strasse"),
        ("🚀 Rocket 🚀", "rocket"),
        ("!!! ???", "service"),
        ("订单服务", "ding_dan_fu_wu"),
        ("class", "class_service"),
        ("JSON", "json_service"),
        ("Test", "test_service"),
        ("FastAPI", "fastapi_service"),
    ],
)
def test_the_default_slug_of_any_name_is_accepted(tmp_path: Path, name: str, slug: str) -> None:
    completed = generate(tmp_path, f"project_name={name}")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert [path.name for path in tmp_path.iterdir()] == [slug]
    assert pre_gen.slug_problem(slug) is None
    assert (tmp_path / slug / "src" / slug / "main.py").is_file()
    assert not (tmp_path / slug / "deploy").exists()  # pruned as usual


# --- a generated service, as its README says --------------------------------------------


def first_week(test: Callable[..., None]) -> Callable[..., None]:
    """Slow (it needs the installed project), and on the worker that has it."""
    return pytest.mark.slow(pytest.mark.xdist_group("first_week")(test))


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A project baked through the command line and installed; with the printed next steps."""
    output = tmp_path_factory.mktemp("first-week")
    completed = generate(output, "auth=jwt")
    assert completed.returncode == 0, completed.stderr[-2000:]
    project = output / "my_service"
    run(["uv", "sync"], cwd=project)
    return project, completed.stdout


def readme_block(project: Path, section: str) -> list[str]:
    readme = (project / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"^## {section}\n.*?```bash\n(.*?)```", readme, re.MULTILINE | re.DOTALL)
    assert match, section
    return [line.split("#", 1)[0].strip() for line in match[1].splitlines() if line.strip()]


@first_week
def test_pre_commit_installs_by_following_the_readme(service: tuple[Path, str]) -> None:
    project, next_steps = service
    commands = [c for c in readme_block(project, "Test and lint") if c.startswith(("git", "uv"))]
    assert commands == ["git init", "uv run pre-commit install"]
    printed = [line.split("#", 1)[0].strip() for line in next_steps.splitlines()]
    assert printed.index("git init") < printed.index("uv run pre-commit install")
    assert not (project / ".git").exists()  # the generated directory is no repository
    for command in commands:
        run(command.split(), cwd=project)
    assert (project / ".git" / "hooks" / "pre-commit").is_file()


@first_week
def test_make_audit_fails_when_a_dependency_could_not_be_audited(
    service: tuple[Path, str],
) -> None:
    """This machine cannot look dependencies up in the vulnerability service: each is
    "not found ... could not be audited". Such an audit audited nothing and must fail. Where
    lookups work, an audit that did look every dependency up may pass."""
    project, _steps = service
    completed = subprocess.run(
        ["make", "audit"],
        cwd=project,
        env=tool_env(project),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = completed.stdout + completed.stderr
    unaudited = "could not be audited" in output
    assert completed.returncode != 0 or not unaudited, output[-3000:]
    assert "--hash=sha256" not in output  # the exported requirements are not printed
    assert not re.search(r"^[a-z0-9_.-]+==", output, re.MULTILINE), output[:2000]


def listening_addresses(port: int) -> set[str]:
    """The local IPv4/IPv6 addresses (hex, as the kernel shows them) listening on `port`."""
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                addresses.add(address)
    return addresses


@first_week
def test_make_dev_serves_on_the_settings_port_on_loopback_only(
    service: tuple[Path, str], tmp_path: Path
) -> None:
    project, _steps = service
    port = free_port()
    log = tmp_path / "dev.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["make", "dev"],
            cwd=project,
            env=tool_env(project, PORT=str(port)),  # HOST comes from the generated .env
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # make, uv, the reloader and its server: one group
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                try:
                    response = httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.3)
            assert response.status_code == 200
            assert listening_addresses(port) == {"0100007F"}  # 127.0.0.1, nothing else
        finally:
            stop_process_group(process, signal.SIGINT, timeout=20)

    lines = [ANSI.sub("", line) for line in log.read_text().splitlines()]
    # What `make dev` prints after it starts the server (SQLite variants migrate first).
    [start] = [n for n, line in enumerate(lines) if line == "uv run my_service dev"]
    server_lines = lines[start + 1 :]
    assert any("Will watch for changes" in line for line in server_lines), lines
    # Every line, the reloader's first ones included, in the service's own format.
    console_line = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z \[\w+\s*\] ")
    assert all(console_line.match(line) for line in server_lines[:5]), server_lines[:5]


class Terminal:
    """A command whose stdin, stdout and stderr are a pseudo-terminal (getpass, finding no
    controlling terminal in its new session, turns echo off on stdin itself)."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.fd, secondary = os.openpty()
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=secondary,
            stdout=secondary,
            stderr=secondary,
            start_new_session=True,
        )
        os.close(secondary)
        self.seen, self.transcript = "", ""

    def expect(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"waited for {text!r}; the terminal shows:\n{self.seen}"
            if select.select([self.fd], [], [], remaining)[0]:
                try:
                    chunk = os.read(self.fd, 4096).decode(errors="replace")
                except OSError:  # the command ended
                    chunk = ""
                assert chunk, f"ended before {text!r}; the terminal shows:\n{self.seen}"
                self.seen += chunk
                self.transcript += chunk
        before, _, self.seen = self.seen.partition(text)
        return before

    def type(self, line: str) -> None:
        os.write(self.fd, f"{line}\n".encode())

    def exit_code(self) -> int:
        code = self.process.wait(timeout=30)
        os.close(self.fd)
        return code


@first_week
def test_create_superuser_shows_the_rules_and_asks_again(
    service: tuple[Path, str], tmp_path: Path
) -> None:
    project, _steps = service
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'first-week.db'}"
    run(["make", "migrate"], cwd=project, DATABASE_URL=database_url)
    env = tool_env(project, DATABASE_URL=database_url)
    command = [str(project / ".venv" / "bin" / "my_service"), "create-superuser"]
    terminal = Terminal([*command, "--email", "root@example.com"], project, env)

    rules = terminal.expect("Password: ")
    assert "15 to 128 characters" in rules
    terminal.type("too short")
    terminal.expect("Password (again): ")
    terminal.type("too short")
    assert "Refused: password" in terminal.expect("Password: ")
    terminal.type("a long enough passphrase")
    terminal.expect("Password (again): ")
    terminal.type("a different passphrase!")
    assert "The passwords differ" in terminal.expect("Password: ")
    terminal.type("a long enough passphrase")
    terminal.expect("Password (again): ")
    terminal.type("a long enough passphrase")
    terminal.expect("Superuser root@example.com created.")
    assert terminal.exit_code() == 0
    assert "passphrase" not in terminal.transcript  # nothing typed was echoed
    assert "too short" not in terminal.transcript

    # Without a terminal it stays one-shot: a refused password ends the command.
    piped = subprocess.run(
        [*command, "--email", "other@example.com"],
        cwd=project,
        env=env,
        input="too short\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert piped.returncode == 1
    assert "Not created: password" in piped.stderr
