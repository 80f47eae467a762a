"""Item tasks, run by the worker. Each is safe to run twice (delivery is at least once)."""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy.exc import DBAPIError
from taskiq import Context, TaskiqDepends
from taskiq.brokers.shared_broker import shared_task

from {{ cookiecutter.project_slug }}.db import DATABASE_UNAVAILABLE_ERRORS, is_database_unavailable
from {{ cookiecutter.project_slug }}.items import service
from {{ cookiecutter.project_slug }}.tasks.broker import TransientTaskError, task_app, task_session

logger = structlog.stdlib.get_logger("items")
DATABASE_ERRORS: tuple[type[Exception], ...] = (DBAPIError, *DATABASE_UNAVAILABLE_ERRORS)


@shared_task
async def archive_item(item_id: uuid.UUID, context: Context = TaskiqDepends()) -> None:
    """Archive the item (a stand-in for slow work a request should not wait for: an export,
    a call to another service). Archiving an archived or deleted item changes nothing."""
    try:
        app = task_app(context)
        cache = service.item_cache(app.state.redis, app.state.settings)
        async with task_session(context) as session:
            archived = await service.archive_item(session, cache, item_id)
    except DATABASE_ERRORS as exc:
        if is_database_unavailable(exc):
            raise TransientTaskError(type(exc).__name__) from exc
        raise
    logger.info("item_archived" if archived else "item_archive_unchanged", item_id=str(item_id))
