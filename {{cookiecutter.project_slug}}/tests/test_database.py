from __future__ import annotations

import logging
from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.db import SessionDep, UTCDateTime
from {{ cookiecutter.project_slug }}.main import create_app
from tests.support import {% if cookiecutter.auth != "none" %}items_without_login, {% endif %}make_settings


async def test_a_failing_commit_is_a_503_not_a_success(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing_commit(self: AsyncSession) -> None:
        raise OperationalError("COMMIT", {}, ConnectionError("connection reset"))

    with monkeypatch.context() as patch:
        patch.setattr(AsyncSession, "commit", failing_commit)
        response = await client.post("/api/v1/items", json={"name": "lost write"})

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    assert (await client.get("/api/v1/items")).json()["total"] == 0


async def test_readiness_fails_when_the_database_does_not_answer() -> None:
{%- if cookiecutter.database == "sqlite" %}
    unreachable = "sqlite+aiosqlite:////nonexistent-dir/db.sqlite"
{%- else %}
    unreachable = "postgresql+asyncpg://postgres@127.0.0.1:1/none"
{%- endif %}
    broken = create_app(make_settings(database_url=unreachable, db_timeout_seconds=1))
{%- if cookiecutter.auth != "none" %}
    items_without_login(broken)
{%- endif %}
    async with broken.router.lifespan_context(broken):
        transport = httpx.ASGITransport(app=broken)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            ready = await client.get("/health/ready")
            items = await client.get("/api/v1/items")
    assert ready.status_code == 503
    assert items.status_code == 503
    assert items.headers["content-type"] == "application/problem+json"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1), dialect=None)  # type: ignore[arg-type]


async def test_a_broken_query_is_a_500_that_logs_no_parameter_values(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "parameter-value-never-logged"

    @app.get("/test/broken-query")
    async def broken_query(session: SessionDep) -> None:
        await session.execute(text("SELEC :value"), {"value": secret})

    with caplog.at_level(logging.INFO):
        response = await client.get("/test/broken-query")

    assert response.status_code == 500  # a bug, not an outage
    assert response.headers["content-type"] == "application/problem+json"
    assert "SELEC" in caplog.text  # the statement is logged, with its traceback
    assert secret not in caplog.text
    assert secret not in response.text
