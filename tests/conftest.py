from __future__ import annotations

import functools
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.template import COOKIECUTTER_JSON
from tests.variants import Variant

# The local PostgreSQL server (trust auth) that PostgreSQL variants run against.
POSTGRES_SERVER_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
# The local Redis that redis=true variants run against (REDIS_URL in our environment wins).
REDIS_SERVER_URL = "redis://127.0.0.1:6379/0"
IGNORED_PARTS = {".venv", ".git", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
PYTHON_VERSIONS: tuple[str, ...] = tuple(COOKIECUTTER_JSON["python_version"])
# Each baked project's interpreter, by version: found once per process (pytest_configure).
INTERPRETERS: dict[str, str] = {}


def clean_env() -> dict[str, str]:
    """Our environment without a selection that would leak into baked projects: our own
    venv, and pyenv's (its shims export PYENV_VERSION to their children, which makes
    `python3.13` fail in every directory)."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in DROPPED_VARIABLES and not (key.startswith("PYENV_") and key != "PYENV_ROOT")
    }


# PYTHONDONTWRITEBYTECODE (set on some CI machines) would make every process of a baked
# project compile its imports again: seconds per worker start. The Docker image compiles
# its bytecode at build time, so writing it here is the closer match to production.
DROPPED_VARIABLES = frozenset({"VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE"})


@functools.cache
def uv_binary() -> str:
    """The real uv (uv sets UV for the commands it runs), never pyenv's shim of it: in a
    baked project the shim would look uv up under that project's Python version."""
    found = os.environ.get("UV") or shutil.which("uv")
    if found and "shims" in Path(found).parts and shutil.which("pyenv"):
        which = subprocess.run(
            ["pyenv", "which", "uv"], capture_output=True, text=True, check=False
        )
        found = which.stdout.strip() or found
    return found or "uv"


def _real_interpreter(candidate: str, version: str) -> str | None:
    """The interpreter's own path if it runs and is `version` (a pyenv shim resolves to the
    real one or fails), else None."""
    probe = "import sys; print(sys.executable); print('%d.%d' % sys.version_info[:2])"
    try:
        completed = subprocess.run(
            [candidate, "-c", probe],
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return None
    lines = completed.stdout.split()
    if completed.returncode != 0 or len(lines) != 2 or lines[1] != version:
        return None
    return None if "shims" in Path(lines[0]).parts else lines[0]


def _pyenv_root() -> str | None:
    if not shutil.which("pyenv"):
        return None
    completed = subprocess.run(
        ["pyenv", "root"], env=clean_env(), capture_output=True, text=True, check=False
    )
    return completed.stdout.strip() or None


def find_interpreter(version: str) -> str | None:
    """An installed Python `version`, never downloaded: uv's discovery, then pyenv's
    installations, then `python<version>` on PATH outside pyenv's shims."""
    candidates: list[str] = []
    found = subprocess.run(
        [uv_binary(), "python", "find", "--system", "--no-project", version],
        env={**clean_env(), "UV_PYTHON_DOWNLOADS": "never"},
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode == 0:
        candidates.append(found.stdout.strip())
    if root := _pyenv_root():
        installed = glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", "python3"))
        candidates += sorted(installed, key=_version_key, reverse=True)
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if directory and "shims" not in Path(directory).parts:
            candidates.append(os.path.join(directory, f"python{version}"))
    for candidate in candidates:
        if os.access(candidate, os.X_OK) and (real := _real_interpreter(candidate, version)):
            return real
    return None


def _version_key(path: str) -> list[int]:
    """A pyenv installation's version as numbers (3.13.10 sorts after 3.13.9)."""
    return [int(part) for part in Path(path).parents[1].name.split(".") if part.isdigit()]


def pytest_configure(config: pytest.Config) -> None:
    """Find each Python the template offers before anything is baked; stop with one line
    saying how to install a missing one."""
    for version in PYTHON_VERSIONS:
        interpreter = find_interpreter(version)
        if interpreter is None:
            raise pytest.UsageError(
                f"Python {version} is not installed, and every variant on it needs it: "
                f"install it (`uv python install {version}` or `pyenv install {version}`), "
                "then run the tests again."
            )
        INTERPRETERS[version] = interpreter


def tool_env(project: Path | None = None, /, **extra: str) -> dict[str, str]:
    """The environment for tools run inside a baked project: its own venv and its own
    interpreter (the one its `.python-version` names), never ours or pyenv's selection."""
    env = clean_env()
    if os.path.isabs(uv := uv_binary()):
        env["PATH"] = os.pathsep.join([os.path.dirname(uv), env.get("PATH", "")])
    env["UV_PYTHON_DOWNLOADS"] = "never"
    # Every command (a server, a test suite) gets keys of its own on the shared Redis, so
    # that variants running in parallel never share a login count or a cached row. Every
    # key a service writes expires (limits after their window, cached rows after the TTL).
    env.setdefault("REDIS_URL", REDIS_SERVER_URL)
    env["REDIS_KEY_PREFIX"] = f"harness-{uuid.uuid4().hex[:12]}:"
    pin = project / ".python-version" if project else None
    if pin and pin.is_file():
        env["UV_PYTHON"] = INTERPRETERS[pin.read_text(encoding="utf-8").strip()]
    env.update(extra)
    return env


def run(
    command: Sequence[str], cwd: Path, *, timeout: float = 600, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure, fail the test with the command and its output's tail."""
    completed = subprocess.run(
        list(command),
        cwd=cwd,
        env=tool_env(cwd, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr)[-6000:]
        pytest.fail(
            f"`{' '.join(command)}` exited {completed.returncode} in {cwd}:\n{output}",
            pytrace=False,
        )
    return completed


def stop_process_group(process: subprocess.Popen[bytes], signum: int, *, timeout: float) -> None:
    """Send `signum` to the process's whole group (make, uv and the server it runs), wait,
    and kill the group if it has not exited within `timeout` seconds."""
    if process.poll() is not None:
        return  # it stopped by itself (a failed start): the test reports why
    os.killpg(process.pid, signum)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def project_files(root: Path) -> set[str]:
    return {
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and not IGNORED_PARTS & set(path.relative_to(root).parts)
    }


@pytest.fixture(scope="session", autouse=True)
def temp_files_kept_in_pytest_basetemp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point this run's temporary files (ours and every tool's) into pytest's own temp
    directory, which pytest rotates: cookiecutter writes each hook to a temp file that it
    never deletes, two per bake, and the harness bakes dozens of times per run."""
    directory = str(tmp_path_factory.mktemp("tmp"))
    saved_env, saved_tempdir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = tempfile.tempdir = directory
    yield
    tempfile.tempdir = saved_tempdir
    if saved_env is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = saved_env


@dataclass(frozen=True)
class Baked:
    variant: Variant
    path: Path
    files_as_generated: frozenset[str]  # before any tool ran in it
    seconds_to_bake_and_sync: float


@pytest.fixture(scope="session")
def bake(cookies_session: object) -> Callable[[Variant], Baked]:
    """Bake each variant once per worker and install it (uv's cache is shared)."""
    baked: dict[str, Baked] = {}

    def bake_variant(variant: Variant) -> Baked:
        if variant.name not in baked:
            started = time.monotonic()
            result = cookies_session.bake(extra_context=variant.answers)  # type: ignore[attr-defined]
            assert result.exit_code == 0, f"{variant.name}: {result.exception!r}"
            path = Path(result.project_path)
            files = frozenset(project_files(path))
            run(["uv", "sync"], cwd=path)
            baked[variant.name] = Baked(variant, path, files, time.monotonic() - started)
        return baked[variant.name]

    return bake_variant
