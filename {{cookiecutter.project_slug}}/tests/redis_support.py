"""Test helpers for Redis: the real server REDIS_URL names, one key prefix per test run.

Tests never flush a database: they write under a prefix of their own and delete exactly
those keys afterwards, so a developer's data (or a parallel run) on the same Redis is safe.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from redis.asyncio import Redis

from {{ cookiecutter.project_slug }}.settings import Settings

SERVER_HINT = (
    "The tests need the Redis server named by REDIS_URL, e.g.\n"
    "  REDIS_URL=redis://127.0.0.1:6379/0\n"
{%- if cookiecutter.docker %}
    "Start one with `docker compose up -d redis` (then REDIS_URL=redis://:redis@127.0.0.1:6379/0),\n"
    "or point REDIS_URL at an existing server."
{%- else %}
    "Point REDIS_URL at a running server."
{%- endif %}
)


# Every key a test writes starts with this (`make_settings` sets it): one prefix per run.
KEY_PREFIX = f"test-{{ cookiecutter.project_slug }}-{uuid.uuid4().hex[:12]}:"


def redis_url() -> str:
    """REDIS_URL from the environment, else `.env`, else the default."""
    url = os.environ.get("REDIS_URL") or Settings(environment="test").redis_url
    return url if isinstance(url, str) else url.get_secret_value()


async def delete_prefixed(url: str, prefix: str) -> int:
    """Delete every key that starts with `prefix`; how many there were."""
    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        return await client.unlink(*keys) if keys else 0
    finally:
        await client.aclose()


async def _ping(url: str) -> None:
    client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()
    finally:
        await client.aclose()


@contextmanager
def throwaway_key_prefix() -> Iterator[str]:
    """This run's key prefix on the Redis REDIS_URL names; its keys are deleted afterwards.
    A Redis that does not answer fails the run, loudly."""
    url = redis_url()
    try:
        asyncio.run(_ping(url))
    except Exception as exc:  # any failure here: say how to fix it
        pytest.fail(f"Redis does not answer: {exc!r}\n{SERVER_HINT}", pytrace=False)
    try:
        yield KEY_PREFIX
    finally:
        asyncio.run(delete_prefixed(url, KEY_PREFIX))
