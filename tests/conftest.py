from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.variants import Variant

# The local PostgreSQL server (trust auth) that PostgreSQL variants run against.
POSTGRES_SERVER_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
IGNORED_PARTS = {".venv", ".git", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


def tool_env(**extra: str) -> dict[str, str]:
    """The environment for tools run inside a baked project: its own venv, never ours."""
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env.update(extra)
    return env


def run(
    command: Sequence[str], cwd: Path, *, timeout: float = 600, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure, fail the test with the command and its output's tail."""
    completed = subprocess.run(
        list(command),
        cwd=cwd,
        env=tool_env(**env),
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
