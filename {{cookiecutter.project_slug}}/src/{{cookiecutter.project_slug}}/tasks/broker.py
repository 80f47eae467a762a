"""The task queue: a taskiq broker on a Redis stream, built from settings by the feature
lifespan (for the API and for the worker alike), and how a request enqueues a task.

Tasks are declared with `shared_task`, so they do not depend on a broker built at import
time: the lifespan makes the broker it builds their default one.

Delivery is at least once. A worker acknowledges a message after the task has run; a
message left unacknowledged for TASK_REDELIVERY_SECONDS (its worker died) is given to
another worker. So a task can run twice: write it so that a second run changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from redis.asyncio import Redis
{%- if cookiecutter.database != "none" %}
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
{%- endif %}
from taskiq import AckableMessage, {% if cookiecutter.database != "none" %}AsyncTaskiqDecoratedTask, {% endif %}Context, TaskiqMessage
from taskiq.brokers.shared_broker import async_shared_broker
from taskiq.exceptions import SendTaskError
from taskiq.kicker import AsyncKicker
from taskiq.middlewares import SmartRetryMiddleware
from taskiq_redis import RedisStreamBroker

{% if cookiecutter.database != "none" -%}
from {{ cookiecutter.project_slug }}.db import after_commit, run_after_commit
{% endif -%}
from {{ cookiecutter.project_slug }}.redis import (
    REDIS_UNAVAILABLE_ERRORS,
    connection_options,
    handle_redis_unavailable,
)
from {{ cookiecutter.project_slug }}.settings import Settings
from {{ cookiecutter.project_slug }}.tasks.middleware import TaskContextMiddleware

# A stream entry as redis-py returns it: (id, {field: value}).
Entry = tuple[bytes, dict[bytes, bytes]]
# The longest wait between two runs of a failing task.
MAX_RETRY_DELAY_SECONDS = 60.0
# How long a worker's read waits for a new message before it looks for abandoned ones.
READ_BLOCK_MS = 1000


class TransientTaskError(Exception):
    """Raised by a task for a failure worth trying again later (a dependency unavailable).
    Any other exception is a bug: the task is logged as failed and not retried."""


def stream_key(settings: Settings) -> str:
    return f"{settings.redis_key_prefix}tasks"


def group_name(settings: Settings) -> str:
    return f"{settings.redis_key_prefix}workers"


class StreamBroker(RedisStreamBroker):
    """taskiq-redis's stream broker, reading the same way but claiming the messages of dead
    workers on every pass: the original claims them only after a read returned new
    messages, so on a quiet queue a dead worker's task would wait for the next enqueue."""

    async def listen(self) -> AsyncGenerator[AckableMessage]:
        async with Redis(connection_pool=self.connection_pool) as redis:
            while True:
                fetched = cast(
                    "list[tuple[bytes, list[Entry]]] | None",
                    await redis.xreadgroup(
                        self.consumer_group_name,
                        self.consumer_name,
                        {self.queue_name: ">"},
                        block=self.block,
                        count=self.count,
                    ),
                )
                for _stream, messages in fetched or []:
                    for message_id, fields in messages:
                        yield self._ackable(message_id, fields)
                # XAUTOCLAIM is atomic: two workers never claim the same message.
                claim: list[Any] = await redis.xautoclaim(
                    self.queue_name,
                    self.consumer_group_name,
                    self.consumer_name,
                    min_idle_time=self.idle_timeout,
                    count=self.unacknowledged_batch_size,
                )
                claimed: list[Entry] = claim[1]  # [next cursor, entries, deleted ids]
                for message_id, fields in claimed:
                    yield self._ackable(message_id, fields)

    def _ackable(self, message_id: bytes, fields: dict[bytes, bytes]) -> AckableMessage:
        async def ack() -> None:
            async with Redis(connection_pool=self.connection_pool) as redis:
                await redis.xack(self.queue_name, self.consumer_group_name, message_id)

        return AckableMessage(data=fields[b"data"], ack=ack)


class BackoffRetryMiddleware(SmartRetryMiddleware):
    """taskiq's retry middleware with its delay honoured: the stream broker ignores the
    `delay` label the middleware sets, so the worker waits here, then sends the retry. The
    failed message is acknowledged only after that (a worker dying meanwhile loses nothing)."""

    async def on_send(
        self, kicker: AsyncKicker[Any, Any], message: TaskiqMessage, delay: float
    ) -> None:
        await asyncio.sleep(delay)
        await kicker.kiq(*message.args, **message.kwargs)


def build_broker(settings: Settings) -> StreamBroker:
    broker = StreamBroker(
        url=settings.redis_url.get_secret_value(),
        queue_name=stream_key(settings),
        consumer_group_name=group_name(settings),
        # A group created after messages were enqueued still reads them.
        consumer_id="0",
        idle_timeout=int(settings.task_redelivery_seconds * 1000),
        xread_block=READ_BLOCK_MS,
        # An enqueue while Redis hangs fails within REDIS_TIMEOUT_SECONDS (then a 503).
        **connection_options(settings, read_wait_seconds=READ_BLOCK_MS / 1000),
    )
    return broker.with_middlewares(
        TaskContextMiddleware(),
        BackoffRetryMiddleware(
            default_retry_count=settings.task_max_attempts,
            default_retry_label=True,
            no_result_on_retry=False,  # keep the error: the run is logged as failed
            default_delay=settings.task_retry_delay_seconds,
            use_jitter=True,
            use_delay_exponent=True,
            max_delay_exponent=MAX_RETRY_DELAY_SECONDS,
            types_of_exceptions=(TransientTaskError,),
        ),
    )


@asynccontextmanager
async def tasks_lifespan(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    """The broker: tasks are sent through it (API) or received from it (worker)."""
    broker = build_broker(settings)
    broker.state.app = app  # what a task reaches its process's resources through
    app.state.broker = broker
    async_shared_broker.default_broker(broker)
    await broker.startup()
    try:
        yield
    finally:
        await broker.shutdown()


def install_queue_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SendTaskError, _queue_unavailable)


async def _queue_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The queue could not take a task because Redis is down or too slow: a 503, as for any
    other use of Redis. Any other reason is a bug, and stays a 500."""
    if isinstance(exc.__cause__, REDIS_UNAVAILABLE_ERRORS):
        return await handle_redis_unavailable(request, exc.__cause__)
    raise exc


def task_app(context: Context) -> FastAPI:
    """The application whose features (database engine, ...) the worker has entered."""
    app: FastAPI = context.broker.state.app
    return app
{%- if cookiecutter.database != "none" %}


@asynccontextmanager
async def task_session(context: Context) -> AsyncIterator[AsyncSession]:
    """A session on the worker's engine, committed when the block ends without an error;
    then what was registered with `after_commit` runs, as after a request."""
    sessionmaker: async_sessionmaker[AsyncSession] = task_app(context).state.sessionmaker
    async with sessionmaker() as session:
        async with session.begin():
            yield session
        await run_after_commit(session)


def enqueue_after_commit[**P](
    session: AsyncSession,
    task: AsyncTaskiqDecoratedTask[P, Any],
    *args: P.args,
    **kwargs: P.kwargs,
) -> None:
    """Send `task` once the request's transaction has committed, never before: a task sent
    earlier could run before its rows exist, or for rows that are then rolled back."""

    async def send() -> None:
        await task.kiq(*args, **kwargs)

    after_commit(session, send)
{%- endif %}
