"""Redis: one client per process over a bounded connection pool, opened and closed in the
application's lifespan (`redis_lifespan`), checked by /health/ready; and `Cache`, a typed
cache of pydantic models on it.

Every key this service writes starts with REDIS_KEY_PREFIX (`RedisStore.key`), so that
several services, or several test runs, can share one Redis. Every command waits at most
REDIS_TIMEOUT_SECONDS (to connect, for an answer, for a free connection); a Redis that is
down or too slow is a 503 where the request needs it, and the next command after it comes
back connects again: no restart needed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from {{ cookiecutter.project_slug }}.errors import problem_response
from {{ cookiecutter.project_slug }}.health import add_readiness_check
from {{ cookiecutter.project_slug }}.settings import Settings

logger = structlog.stdlib.get_logger(__name__)

# Errors that mean "Redis did not answer" (down, unreachable, too slow, pool exhausted), as
# opposed to a bug in a command.
REDIS_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError)


@dataclass(frozen=True)
class RedisStore:
    """The client and the prefix every key of this service starts with."""

    client: Redis
    prefix: str

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)


def connection_options(settings: Settings, *, read_wait_seconds: float = 0) -> dict[str, Any]:
    """Bounded waits for a pool of connections to Redis (this client's, the task broker's):
    a Redis that stops answering fails a command within the timeout instead of hanging it.
    `read_wait_seconds`: how long a command blocks on purpose (a worker's read)."""
    timeout = settings.redis_timeout_seconds
    return {
        "timeout": timeout,  # waiting for a free connection
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout + read_wait_seconds,
        # One immediate retry on a broken connection (Redis restarted since it was pooled);
        # none on a timeout, which would double the wait.
        "retry": Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
        "health_check_interval": 30,  # PING a connection idle this long before reusing it
    }


def build_client(settings: Settings) -> Redis:
    pool = BlockingConnectionPool.from_url(
        settings.redis_url.get_secret_value(),
        max_connections=settings.redis_pool_size,
        **connection_options(settings),
    )
    return Redis.from_pool(pool)


async def ping(client: Redis) -> None:
    await client.ping()


@asynccontextmanager
async def redis_lifespan(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    client = build_client(settings)  # connects on first use: a Redis outage is no crash loop
    app.state.redis = RedisStore(client, settings.redis_key_prefix)
    add_readiness_check(app, "redis", lambda: ping(client))
    try:
        yield
    finally:
        await client.aclose()


class Cache[Model: BaseModel]:
    """Models of one kind, cached as JSON for `ttl_seconds` under
    `<REDIS_KEY_PREFIX>cache:<namespace>:<id>` (cache-aside: read here, else load and store).

    Reads fail open: with Redis down (each call waits at most REDIS_TIMEOUT_SECONDS) the
    model is loaded and not stored, and a copy that no longer validates (the model changed
    between deployments) is a miss. `invalidate` fails closed: it raises, so that a change
    whose cached copy cannot be dropped is rolled back (503) rather than served stale.
    """

    def __init__(
        self, store: RedisStore, namespace: str, model: type[Model], ttl_seconds: int
    ) -> None:
        self.store = store
        self.namespace = namespace
        self.model = model
        self.ttl_seconds = ttl_seconds

    def key(self, id_: str) -> str:
        return self.store.key("cache", self.namespace, id_)

    async def get_or_load(
        self, id_: str, load: Callable[[], Awaitable[Model | None]]
    ) -> Model | None:
        """The cached model, else `load()`'s (stored when not None)."""
        try:
            cached = await self.store.client.get(self.key(id_))
        except REDIS_UNAVAILABLE_ERRORS as exc:
            logger.warning("cache_unavailable", cache=self.namespace, error=type(exc).__name__)
            return await load()
        if cached is not None:
            try:
                return self.model.model_validate_json(cached)
            except ValidationError:
                logger.info("cache_entry_outdated", cache=self.namespace)
        value = await load()
        if value is not None:
            await self._store(id_, value)
        return value

    async def _store(self, id_: str, value: Model) -> None:
        try:
            await self.store.client.set(self.key(id_), value.model_dump_json(), ex=self.ttl_seconds)
        except REDIS_UNAVAILABLE_ERRORS as exc:
            logger.warning("cache_unavailable", cache=self.namespace, error=type(exc).__name__)

    async def invalidate(self, id_: str) -> None:
        """Drop the cached copy; raises when Redis does not answer (a 503)."""
        await self.store.client.unlink(self.key(id_))

    async def invalidate_quietly(self, id_: str) -> None:
        """Drop the cached copy; a Redis that does not answer is logged: the copy expires
        within the TTL. For after a commit, when the change can no longer be undone."""
        try:
            await self.invalidate(id_)
        except REDIS_UNAVAILABLE_ERRORS as exc:
            logger.warning("cache_not_invalidated", cache=self.namespace, error=type(exc).__name__)


def get_redis(request: Request) -> RedisStore:
    store: RedisStore = request.app.state.redis
    return store


RedisDep = Annotated[RedisStore, Depends(get_redis)]


async def handle_redis_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """Redis down or too slow where a request needs it: 503 with Retry-After. The log line
    names the error class only (a message can carry the host)."""
    logger.warning("redis_unavailable", error=type(exc).__name__)
    return problem_response(
        503,
        "A backing service is unavailable; retry later.",
        instance=request.url.path,
        request_id=getattr(request.state, "request_id", None),
        headers={"Retry-After": "5"},
    )


def install_redis_error_handlers(app: FastAPI) -> None:
    for error in REDIS_UNAVAILABLE_ERRORS:
        app.add_exception_handler(error, handle_redis_unavailable)
