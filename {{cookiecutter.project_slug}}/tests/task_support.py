"""Test helpers for the task queue: real worker processes on the real Redis, their logs,
a worker inside the test's process (`in_process_worker`), waiting for the queue to be
drained{% if cookiecutter.database != "none" %}, and a database held locked so that a task is caught in the middle{% endif %}."""

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

from fastapi import FastAPI
from redis.asyncio import Redis
{%- if cookiecutter.database != "none" %}
from sqlalchemy.ext.asyncio import create_async_engine
{%- endif %}
from taskiq.receiver import Receiver

from {{ cookiecutter.project_slug }}.settings import Settings
from {{ cookiecutter.project_slug }}.tasks.broker import group_name, stream_key
from tests.redis_support import redis_url

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
async def in_process_worker(app: FastAPI) -> AsyncIterator[None]:
    """A worker in the test's process, receiving from `app`'s broker (the real Redis stream)
    until the block ends: its tasks see `app`'s state and log through the test's log capture."""
    stop = asyncio.Event()
    receiver = Receiver(app.state.broker, run_startup=False, max_async_tasks=4)
    listening = asyncio.create_task(receiver.listen(stop))
    try:
        yield
    finally:
        stop.set()
        await listening


async def drained(settings: Settings) -> None:
    """Wait until every message on the queue has been handed to a worker and acknowledged,
    so its task has run (a retry is a new message, sent before the failed one is acknowledged)."""
    stream, group = stream_key(settings), group_name(settings).encode()
    deadline = time.monotonic() + WAIT_SECONDS
    async with Redis.from_url(redis_url()) as redis:
        while time.monotonic() < deadline:
            groups = await redis.xinfo_groups(stream)
            ours = [g for g in groups if g["name"] == group]
            if ours and ours[0]["pending"] == 0 and ours[0]["lag"] == 0:
                return
            await asyncio.sleep(0.02)
    raise AssertionError("timed out waiting for the queue to be drained")


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
