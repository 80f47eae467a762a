"""The task queue's own housekeeping, sent by the scheduler and run by the worker."""

from __future__ import annotations

import structlog
from redis.asyncio import Redis
from taskiq import Context, TaskiqDepends
from taskiq.brokers.shared_broker import shared_task

from {{ cookiecutter.project_slug }}.tasks.broker import StreamBroker

logger = structlog.stdlib.get_logger("tasks")


def _as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@shared_task(schedule=[{"cron": "*/10 * * * *"}])
async def trim_task_stream(context: Context = TaskiqDepends()) -> int:
    """Remove the messages every worker is done with. A Redis stream keeps acknowledged
    messages until trimmed, so without this the queue's memory only grows. Everything from
    the oldest unacknowledged message on (or from the last one handed out) stays.
    Idempotent."""
    broker = context.broker
    if not isinstance(broker, StreamBroker):
        raise TypeError(f"expected the stream broker, got {type(broker).__name__}")
    async with Redis(connection_pool=broker.connection_pool) as redis:
        pending = await redis.xpending(broker.queue_name, broker.consumer_group_name)
        if pending["pending"]:
            keep_from = _as_text(pending["min"])
        else:
            groups = await redis.xinfo_groups(broker.queue_name)
            ours = [g for g in groups if _as_text(g["name"]) == broker.consumer_group_name]
            keep_from = _as_text(ours[0]["last-delivered-id"]) if ours else "0-0"
        removed = int(await redis.xtrim(broker.queue_name, minid=keep_from, approximate=False))
    logger.info("task_stream_trimmed", removed=removed)
    return removed
