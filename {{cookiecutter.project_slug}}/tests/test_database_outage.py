"""A database outage through a TCP proxy that the test cuts and restores: the service
answers 503 problems within its timeout while the database is gone, and recovers by
itself when it is back, with no restart. A statement stuck behind a lock is a 503 too."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from {{ cookiecutter.project_slug }}.main import create_app
from tests.support import {% if cookiecutter.auth != "none" %}items_without_login, {% endif %}make_client, make_settings
from tests.tcp_proxy import TcpProxy

TIMEOUT_SECONDS = 1.0


@contextlib.asynccontextmanager
async def service_behind(proxy: TcpProxy, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    url = make_url(database_url).set(host="127.0.0.1", port=proxy.port)
    async with service(url.render_as_string(hide_password=False)) as client:
        yield client


async def timed_get(client: httpx.AsyncClient, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await client.get(path)
    return response, time.monotonic() - started


async def test_outage_gives_503_within_the_timeout_and_recovers(database_url: str) -> None:
    target = make_url(database_url)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    await proxy.start()
    async with service_behind(proxy, database_url) as client:
        assert (await client.get("/api/v1/items")).status_code == 200

        await proxy.cut()
        response, elapsed = await timed_get(client, "/api/v1/items")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert elapsed < TIMEOUT_SECONDS * 3
        assert (await client.get("/health/ready")).status_code == 503

        await proxy.start()  # same port: the database is back
        assert (await client.get("/api/v1/items")).status_code == 200
        assert (await client.get("/health/ready")).status_code == 200

        await proxy.blackhole()
        response, elapsed = await timed_get(client, "/api/v1/items")
        assert response.status_code == 503
        assert elapsed < TIMEOUT_SECONDS * 4
    await proxy.cut()


@contextlib.asynccontextmanager
async def table_locked(database_url: str, table: str) -> AsyncIterator[None]:
    """Another session holds `table` exclusively (no reads, no writes) until the block ends."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection, connection.begin():
            await connection.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            yield
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def service(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(database_url=database_url, db_timeout_seconds=TIMEOUT_SECONDS))
{%- if cookiecutter.auth != "none" %}
    items_without_login(app)
{%- endif %}
    async with app.router.lifespan_context(app), make_client(app) as client:
        yield client


def assert_unavailable(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    assert TIMEOUT_SECONDS * 0.9 < elapsed < TIMEOUT_SECONDS * 3  # the server's timeout


async def test_a_statement_stuck_behind_a_lock_is_a_503_that_logs_no_parameters(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    name = "item-name-never-logged"
    async with service(database_url) as client, table_locked(database_url, "items"):
        with caplog.at_level(logging.DEBUG):
            started = time.monotonic()
            response = await client.post("/api/v1/items", json={"name": name})
            elapsed = time.monotonic() - started
    assert_unavailable(response, elapsed)
    assert "57014" in caplog.text  # query_canceled, by statement_timeout
    assert name not in caplog.text
{%- if cookiecutter.auth == "jwt" %}


async def test_a_registration_stuck_behind_a_lock_is_a_503_that_logs_no_hash(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    account = {"email": "locked-out@example.com", "password": "a long enough passphrase"}
    async with service(database_url) as client, table_locked(database_url, "users"):
        with caplog.at_level(logging.DEBUG):
            started = time.monotonic()
            response = await client.post("/api/v1/auth/register", json=account)
            elapsed = time.monotonic() - started - 0.5  # argon2 hashing comes first
    assert response.status_code == 503, response.text
    assert elapsed < TIMEOUT_SECONDS * 3
    assert "$argon2" not in caplog.text
    assert account["email"] not in caplog.text
{%- endif %}
