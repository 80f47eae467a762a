"""Test helpers for the task queue: real worker processes on the real Redis, their logs,
{%- if cookiecutter.database != "none" %} and a
database held locked so that a task is caught in the middle{% endif %}."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
{%- if cookiecutter.database != "none" %}

from sqlalchemy.ext.asyncio import create_async_engine
{%- endif %}

from {{ cookiecutter.project_slug }}.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
WAIT_SECONDS = 20.0


async def eventually[T](check: Callable[[], T], what: str) -> T:
    """Poll `check` until it returns something true (for WAIT_SECONDS at most); that value."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if result := check():
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def environment(settings: Settings) -> dict[str, str]:
    """The process environment that gives a worker `settings` (they win over `.env`)."""
    env = dict(os.environ)
    for name, value in settings.model_dump(exclude_none=True).items():
        if hasattr(value, "get_secret_value"):
            env[name.upper()] = value.get_secret_value()
        elif isinstance(value, list):
            env[name.upper()] = ",".join(value)
        else:
            env[name.upper()] = str(value)
    env["LOG_FORMAT"] = "json"
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TaskProcess:
    """`{{ cookiecutter.project_slug }} worker` (or `scheduler`) in a process of its own, its JSON log
    lines in a file."""

    def __init__(self, settings: Settings, log: Path, command: str = "worker") -> None:
        self.command = command
        self.log = log
        self.environment = environment(settings)
{%- if cookiecutter.metrics %}
        self.environment["WORKER_METRICS_PORT"] = str(free_port())
{%- endif %}
        with log.open("w") as output:
            self.process = subprocess.Popen(  # noqa: S603 - our own command
                [sys.executable, "-m", "{{ cookiecutter.project_slug }}.cli", command],
                cwd=PROJECT_ROOT,
                env=self.environment,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    async def started(self) -> TaskProcess:
        event = f"{self.command}_started"
        await eventually(lambda: self.lines(event) or self.process.poll() is not None, event)
        assert self.process.poll() is None, self.log.read_text()
        return self

    def log_lines(self) -> list[dict[str, Any]]:
        found = []
        for raw in self.log.read_text().splitlines():
            try:
                found.append(json.loads(raw))
            except ValueError:
                continue
        return found

    def lines(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        """The log lines for `event` whose fields have the given values."""
        return [
            line
            for line in self.log_lines()
            if line.get("event") == event and all(line.get(k) == v for k, v in fields.items())
        ]

    def stop(self) -> int:
        """SIGTERM, then the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=WAIT_SECONDS)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=WAIT_SECONDS)


@asynccontextmanager
async def running(
    settings: Settings, log: Path, command: str = "worker"
) -> AsyncIterator[TaskProcess]:
    """A worker (or scheduler), stopped with SIGTERM at the end: it must exit 0."""
    process = TaskProcess(settings, log, command)
    try:
        yield await process.started()
    finally:
        if process.process.poll() is None:
            assert await asyncio.to_thread(process.stop) == 0, process.log_lines()
{%- if cookiecutter.database != "none" %}


@asynccontextmanager
async def items_locked(database_url: str) -> AsyncIterator[None]:
    """Another connection holds a write lock on the items{% if cookiecutter.database == "sqlite" %} (on SQLite: the whole database){% endif %}
    until the block ends: reads go on, a task's write waits (up to DB_TIMEOUT_SECONDS)."""
    engine = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
{%- if cookiecutter.database == "sqlite" %}
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
{%- else %}
            await connection.exec_driver_sql("BEGIN")
            await connection.exec_driver_sql("LOCK TABLE items IN EXCLUSIVE MODE")
{%- endif %}
            try:
                yield
            finally:
                await connection.exec_driver_sql("ROLLBACK")
    finally:
        await engine.dispose()
{%- endif %}
