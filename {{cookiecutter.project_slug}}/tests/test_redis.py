"""Redis against the real server REDIS_URL names: the client, its key prefix, readiness."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from {{ cookiecutter.project_slug }}.redis import RedisStore
from {{ cookiecutter.project_slug }}.settings import Settings


async def test_keys_carry_the_configured_prefix(app: FastAPI, settings: Settings) -> None:
    store: RedisStore = app.state.redis
    key = store.key("probe", "1")
    assert key == f"{settings.redis_key_prefix}probe:1"
    await store.client.set(key, b"x", ex=60)
    assert await store.client.get(key) == b"x"


async def test_ready_checks_redis(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["redis"] == "ok"
