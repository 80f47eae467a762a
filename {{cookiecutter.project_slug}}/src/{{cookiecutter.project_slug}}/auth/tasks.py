"""Periodic clean-up of refresh tokens, sent by the scheduler and run by the worker."""

from __future__ import annotations

import structlog
from sqlalchemy import delete, or_
from taskiq import Context, TaskiqDepends
from taskiq.brokers.shared_broker import shared_task

from {{ cookiecutter.project_slug }}.auth.models import RefreshToken
from {{ cookiecutter.project_slug }}.db import utcnow
from {{ cookiecutter.project_slug }}.tasks.broker import task_session

logger = structlog.stdlib.get_logger("auth")


@shared_task(schedule=[{"cron": "17 * * * *"}])  # hourly
async def purge_refresh_tokens(context: Context = TaskiqDepends()) -> int:
    """Delete refresh tokens that can never be used again: expired or revoked ones (a revoked
    token presented later is unknown, still a 401). Spent tokens stay until they expire: they
    are how a replayed token is recognised, and its session revoked. Idempotent."""
    async with task_session(context) as session:
        deleted = await session.execute(
            delete(RefreshToken).where(
                or_(RefreshToken.expires_at < utcnow(), RefreshToken.revoked_at.is_not(None))
            )
        )
    count = int(deleted.rowcount)  # type: ignore[attr-defined]
    logger.info("refresh_tokens_purged", count=count)
    return count
