"""Item use cases. Endpoints stay thin; the session is committed by `SessionDep`."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.errors import ConflictError, NotFoundError
from {{ cookiecutter.project_slug }}.items.models import Item
from {{ cookiecutter.project_slug }}.items.schemas import ItemCreate, ItemUpdate


async def _flush_unique_name(session: AsyncSession, name: str) -> None:
    """Flush now so a duplicate name becomes a 409 here, not a failed commit later."""
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise ConflictError(f"An item named {name!r} already exists.") from None


async def create_item(session: AsyncSession, data: ItemCreate) -> Item:
    item = Item(name=data.name, description=data.description)
    session.add(item)
    await _flush_unique_name(session, data.name)
    return item


async def list_items(session: AsyncSession, *, limit: int, offset: int) -> tuple[list[Item], int]:
    total = await session.scalar(select(func.count()).select_from(Item))
    # Newest first, with the id as a tie-breaker so pages never overlap or skip.
    query = select(Item).order_by(Item.created_at.desc(), Item.id).limit(limit).offset(offset)
    items = (await session.scalars(query)).all()
    return list(items), total or 0


async def get_item(session: AsyncSession, item_id: uuid.UUID) -> Item:
    item = await session.get(Item, item_id)
    if item is None:
        raise NotFoundError(f"Item {item_id} does not exist.")
    return item


async def update_item(session: AsyncSession, item_id: uuid.UUID, data: ItemUpdate) -> Item:
    item = await get_item(session, item_id)
    changes = data.model_dump(exclude_unset=True)
    for field, value in changes.items():
        setattr(item, field, value)
    if changes:
        await _flush_unique_name(session, item.name)
        await session.refresh(item)
    return item


async def delete_item(session: AsyncSession, item_id: uuid.UUID) -> None:
    item = await get_item(session, item_id)
    await session.delete(item)
    await session.flush()
