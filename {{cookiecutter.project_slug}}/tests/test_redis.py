{%- set db = cookiecutter.database != "none" -%}
"""Redis, against the real server REDIS_URL names (this run's keys only): the client and
its key prefix, readiness{% if db %}, the item cache{% endif %}{% if cookiecutter.auth == "jwt" %}, login limits shared by two instances{% endif %},
and an outage through a TCP proxy: 503 within the timeout where Redis is needed, and
recovery without a restart."""

from __future__ import annotations

import contextlib
{%- if db %}
import json
{%- endif %}
import time
{%- if cookiecutter.auth == "jwt" %}
import uuid
{%- endif %}
from collections.abc import AsyncIterator, Awaitable
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
{%- if cookiecutter.auth == "jwt" %}
from sqlalchemy import delete
{%- endif %}

from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.redis import RedisStore
from {{ cookiecutter.project_slug }}.settings import Settings
{%- if cookiecutter.auth == "jwt" %}
from {{ cookiecutter.project_slug }}.users.models import User
from tests.auth_support import access_headers, add_user
{%- endif %}
from tests.redis_support import delete_prefixed, redis_url
from tests.support import {% if cookiecutter.auth == "oidc" and db %}items_without_login, {% endif %}make_client, make_settings
from tests.tcp_proxy import TcpProxy

TIMEOUT_SECONDS = 0.5


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


def test_production_refuses_a_redis_without_a_password_on_the_network() -> None:
    with pytest.raises(ValidationError, match="REDIS_URL must carry a password"):
        make_settings(environment="production", redis_url="redis://cache.internal:6379/0")
    make_settings(environment="production", redis_url="redis://:s3cret@cache.internal:6379/0")
    make_settings(environment="production", redis_url="redis://127.0.0.1:6379/0")


def test_a_redis_url_is_checked_and_its_password_never_shown() -> None:
    with pytest.raises(ValidationError, match=r"redis:// or rediss://") as raised:
        make_settings(redis_url="http://:s3cret@cache.internal:6379/0")
    assert "s3cret" not in str(raised.value)
{%- if db %}


async def test_item_reads_are_cached_and_every_write_drops_the_copy(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    created = (await client.post("/api/v1/items", json={"name": "cached"})).json()
    url = f"/api/v1/items/{created['id']}"
    store: RedisStore = app.state.redis
    key = store.key("cache", "items", created["id"])
    assert await store.client.get(key) is None  # creating caches nothing

    assert (await client.get(url)).json() == created
    cached = await store.client.get(key)
    assert cached is not None
    assert 0 < await store.client.ttl(key) <= settings.cache_ttl_seconds
    # Reads come from the cache: a copy changed behind the service's back is what it serves.
    changed = json.loads(cached) | {"name": "from the cache"}
    await store.client.set(key, json.dumps(changed), ex=60)
    assert (await client.get(url)).json()["name"] == "from the cache"

    assert (await client.patch(url, json={"name": "renamed"})).status_code == 200
    assert await store.client.get(key) is None
    assert (await client.get(url)).json()["name"] == "renamed"

    assert (await client.delete(url)).status_code == 204
    assert await store.client.get(key) is None
    assert (await client.get(url)).status_code == 404


async def test_an_outdated_cached_copy_is_a_miss(app: FastAPI, client: httpx.AsyncClient) -> None:
    created = (await client.post("/api/v1/items", json={"name": "outdated"})).json()
    store: RedisStore = app.state.redis
    await store.client.set(store.key("cache", "items", created["id"]), b'{"old": "shape"}', ex=60)
    assert (await client.get(f"/api/v1/items/{created['id']}")).json() == created
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}


async def test_a_cached_item_stays_invisible_to_other_users(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings
) -> None:
    created = (await client.post("/api/v1/items", json={"name": "mine"})).json()
    url = f"/api/v1/items/{created['id']}"
    assert (await client.get(url)).status_code == 200  # cached now
    other = await add_user(app, "other@example.com")
    async with make_client(app, access_headers(settings, other.id)) as stranger:
        assert (await stranger.get(url)).status_code == 404


async def test_login_failures_are_counted_across_instances(database_url: str) -> None:
    """Two instances (two workers, two replicas) on one Redis share each count."""
    settings = make_settings(database_url=database_url, login_max_failures=2)
    first, second = create_app(settings), create_app(settings)
    form = {"username": "shared-count@example.com", "password": "not the password at all"}
    try:
        async with (
            first.router.lifespan_context(first),
            second.router.lifespan_context(second),
            make_client(first) as one,
            make_client(second) as other,
        ):
            assert (await one.post("/api/v1/auth/token", data=form)).status_code == 401
            assert (await other.post("/api/v1/auth/token", data=form)).status_code == 401
            assert (await one.post("/api/v1/auth/token", data=form)).status_code == 429
            assert (await other.post("/api/v1/auth/token", data=form)).status_code == 429
    finally:
        await delete_prefixed(redis_url(), settings.redis_key_prefix)
{%- endif %}


# --- an outage ---------------------------------------------------------------------------


def through_proxy(proxy: TcpProxy) -> str:
    """REDIS_URL with its host and port replaced by the proxy's."""
    parts = urlsplit(redis_url())
    credentials, _, _ = parts.netloc.rpartition("@")
    address = f"127.0.0.1:{proxy.port}"
    return parts._replace(netloc=f"{credentials}@{address}" if credentials else address).geturl()


@contextlib.asynccontextmanager
async def service_behind(proxy: TcpProxy{% if db %}, database_url: str{% endif %}) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        redis_url=through_proxy(proxy),
        redis_timeout_seconds=TIMEOUT_SECONDS,
{%- if db %}
        database_url=database_url,
{%- endif %}
    )
    app = create_app(settings)
{%- if cookiecutter.auth == "oidc" and db %}
    items_without_login(app)
{%- endif %}
    try:
        async with app.router.lifespan_context(app), make_client(app) as client:
{%- if cookiecutter.auth == "jwt" %}
            user = await add_user(app, f"outage-{uuid.uuid4().hex}@example.com")
            client.headers.update(access_headers(settings, user.id))
            try:
                yield client
            finally:  # committed for real: later tests count the users
                async with app.state.sessionmaker() as session, session.begin():
                    await session.execute(delete(User).where(User.id == user.id))
{%- else %}
            yield client
{%- endif %}
    finally:
        await delete_prefixed(redis_url(), settings.redis_key_prefix)


async def timed(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


def assert_unavailable(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert elapsed < TIMEOUT_SECONDS * 4  # the service's own timeout, not a hang


async def test_outage_gives_503_within_the_timeout_and_recovers({% if db %}database_url: str{% endif %}) -> None:
    target = urlsplit(redis_url())
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379)
    await proxy.start()
    async with service_behind(proxy{% if db %}, database_url{% endif %}) as client:
{%- if db %}
        item = (await client.post("/api/v1/items", json={"name": "kept"})).json()
        url = f"/api/v1/items/{item['id']}"
        assert (await client.get(url)).status_code == 200  # cached
{% endif %}
        for outage in ("cut", "blackhole"):  # Redis gone (connections refused), or hung
            await (proxy.cut() if outage == "cut" else proxy.blackhole())
            assert_unavailable(*await timed(client.get("/health/ready")))
{%- if cookiecutter.auth == "jwt" %}
            form = {"username": "someone@example.com", "password": "a guess, while Redis is down"}
            response, elapsed = await timed(client.post("/api/v1/auth/token", data=form))
            assert_unavailable(response, elapsed)  # no count, no login: limits fail closed
            assert response.headers["retry-after"] == "5"
{%- endif %}
{%- if db %}
            # Reads fall back on the database; a change whose cached copy cannot be dropped
            # is refused and rolled back, never left stale behind Redis's back.
            assert (await client.get(url)).json()["name"] == "kept"
            assert_unavailable(*await timed(client.patch(url, json={"name": "lost"})))
{%- if cookiecutter.tasks != "none" %}
            # The queue is Redis too: a task it cannot take is a 503, not a hang or a 500.
            assert_unavailable(*await timed(client.post(f"{url}/archive")))
{%- endif %}
{%- endif %}

            if outage == "blackhole":
                await proxy.cut()  # drops the silent connections
            await proxy.start()  # same port: Redis is back
            assert (await client.get("/health/ready")).status_code == 200
{%- if cookiecutter.auth == "jwt" %}
            assert (await client.post("/api/v1/auth/token", data=form)).status_code == 401
{%- endif %}
{%- if db %}
            assert (await client.get(url)).json()["name"] == "kept"
{%- endif %}
{%- if db and cookiecutter.tasks != "none" %}
            assert (await client.post(f"{url}/archive")).status_code == 202
{%- endif %}
{%- if db %}

        assert (await client.patch(url, json={"name": "changed"})).status_code == 200
        assert (await client.get(url)).json()["name"] == "changed"
        assert (await client.delete(url)).status_code == 204  # committed for real: tidy up
{%- endif %}
    await proxy.cut()
