"""Item use cases. Endpoints stay thin; the session is committed by `SessionDep`.{% if cookiecutter.redis %}

Single items are read through a cache in Redis (`read_item`); a change drops the cached
copy before the commit (Redis down: 503, nothing changes) and again after it (a read in
between may have cached the old row).{% endif %}"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
{%- if cookiecutter.auth != "none" %}
from dataclasses import dataclass
{%- endif %}
from typing import Any, cast

from sqlalchemy import Row, {% if cookiecutter.auth != "none" %}Select, {% endif %}Table, {% if cookiecutter.auth != "none" %}bindparam, {% endif %}insert, select{% if cookiecutter.tasks != "none" %}, update{% endif %}
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.db import (
    PagedQuery,
{%- if cookiecutter.redis %}
    after_commit,
{%- endif %}
    conflict_as_409,
    fetch_page,
    flush_or_conflict,
{%- if cookiecutter.tasks != "none" %}
    utcnow,
{%- endif %}
)
from {{ cookiecutter.project_slug }}.errors import NotFoundError
from {{ cookiecutter.project_slug }}.items.models import Item{% if cookiecutter.auth != "none" %}, OwnerId{% endif %}
{%- if cookiecutter.redis %}
from {{ cookiecutter.project_slug }}.items.schemas import {% if cookiecutter.auth != "none" %}CachedItem, {% endif %}ItemCreate, ItemRead, ItemUpdate
from {{ cookiecutter.project_slug }}.redis import Cache, RedisStore
from {{ cookiecutter.project_slug }}.settings import Settings

ItemCache = Cache[{{ "CachedItem" if cookiecutter.auth != "none" else "ItemRead" }}]


def item_cache(store: RedisStore, settings: Settings) -> ItemCache:
    model = {{ "CachedItem" if cookiecutter.auth != "none" else "ItemRead" }}
    return ItemCache(store, "items", model, settings.cache_ttl_seconds)
{%- else %}
from {{ cookiecutter.project_slug }}.items.schemas import ItemCreate, ItemUpdate
{%- endif %}
{% if cookiecutter.redis %}
{% endif %}
# The two busiest operations, listing and creating, are Core statements on the table: rows
# rather than ORM objects to track, at a fraction of the CPU per request. Reading, changing
# and deleting one item use the ORM, simpler where an object is changed.
ITEMS = cast("Table", Item.__table__)
# Built once, so a request only binds values (see db.PagedQuery). The id and timestamps of a
# new item are the columns' defaults, returned with the row.
INSERT_ITEM = insert(ITEMS).returning(*ITEMS.c)
# Newest first, with the id as a tie-breaker so pages never overlap or skip.
NEWEST_FIRST = (ITEMS.c.created_at.desc(), ITEMS.c.id)
ALL_ITEMS = PagedQuery(select(ITEMS).order_by(*NEWEST_FIRST))
{%- if cookiecutter.auth != "none" %}
OWN_ITEMS = PagedQuery(
    select(ITEMS).where(ITEMS.c.owner_id == bindparam("owner_id")).order_by(*NEWEST_FIRST)
)
{%- endif %}
{%- if cookiecutter.auth != "none" %}


@dataclass(frozen=True)
class Caller:
    """Who is asking: items belong to their owner; `sees_all` (superusers) sees every item."""

    owner_id: OwnerId
    sees_all: bool = False


def _visible[Selected: Select[Any]](query: Selected, caller: Caller) -> Selected:
    return query if caller.sees_all else query.where(ITEMS.c.owner_id == caller.owner_id)
{%- endif %}


def _name_taken(name: str) -> str:
    return f"An item named {name!r} already exists."
{%- set caller_param = "caller: Caller, " if cookiecutter.auth != "none" else "" %}
{%- set caller_arg = "caller, " if cookiecutter.auth != "none" else "" %}
{%- set cache_param = "cache: ItemCache, " if cookiecutter.redis else "" %}
{%- set cache_arg = "cache, " if cookiecutter.redis else "" %}


async def create_item(session: AsyncSession, {{ caller_param }}data: ItemCreate) -> Row[Any]:
{%- if cookiecutter.auth != "none" %}
    values = data.model_dump() | {"owner_id": caller.owner_id}
{%- else %}
    values = data.model_dump()
{%- endif %}
    async with conflict_as_409(session, _name_taken(data.name)):
        return (await session.execute(INSERT_ITEM, values)).one()


{% if cookiecutter.auth != "none" -%}
async def list_items(
    session: AsyncSession, caller: Caller, *, limit: int, offset: int
) -> tuple[Sequence[Row[Any]], int]:
{%- else -%}
async def list_items(
    session: AsyncSession, *, limit: int, offset: int
) -> tuple[Sequence[Row[Any]], int]:
{%- endif %}
{%- if cookiecutter.auth != "none" %}
    if caller.sees_all:
        return await fetch_page(session, ALL_ITEMS, limit=limit, offset=offset)
    owner = {"owner_id": caller.owner_id}
    return await fetch_page(session, OWN_ITEMS, owner, limit=limit, offset=offset)
{%- else %}
    return await fetch_page(session, ALL_ITEMS, limit=limit, offset=offset)
{%- endif %}


async def get_item(session: AsyncSession, {{ caller_param }}item_id: uuid.UUID) -> Item:
{%- if cookiecutter.auth != "none" %}
    # Someone else's item is "not found" too: its existence is not the caller's business.
    item = await session.scalar(_visible(select(Item).where(Item.id == item_id), caller))
{%- else %}
    item = await session.get(Item, item_id)
{%- endif %}
    if item is None:
        raise NotFoundError(f"Item {item_id} does not exist.")
    return item
{%- if cookiecutter.redis %}
{%- if cookiecutter.auth != "none" %}


async def read_item(
    session: AsyncSession, cache: ItemCache, caller: Caller, item_id: uuid.UUID
) -> ItemRead:
{%- else %}


async def read_item(session: AsyncSession, cache: ItemCache, item_id: uuid.UUID) -> ItemRead:
{%- endif %}
    """`get_item` through the cache."""
{%- if cookiecutter.auth != "none" %}

    async def load() -> CachedItem | None:
        item = await session.get(Item, item_id)
        return None if item is None else CachedItem.model_validate(item)

    cached = await cache.get_or_load(str(item_id), load)
    # Someone else's item is "not found" too, cached or not.
    if cached is None or not (caller.sees_all or cached.owner_id == caller.owner_id):
        raise NotFoundError(f"Item {item_id} does not exist.")
    return ItemRead.model_validate(cached.model_dump(exclude={"owner_id"}))
{%- else %}

    async def load() -> ItemRead | None:
        item = await session.get(Item, item_id)
        return None if item is None else ItemRead.model_validate(item)

    cached = await cache.get_or_load(str(item_id), load)
    if cached is None:
        raise NotFoundError(f"Item {item_id} does not exist.")
    return cached
{%- endif %}


async def _forget(session: AsyncSession, cache: ItemCache, item_id: uuid.UUID) -> None:
    await cache.invalidate(str(item_id))
    after_commit(session, lambda: cache.invalidate_quietly(str(item_id)))
{%- endif %}


{% if cookiecutter.auth != "none" or cookiecutter.redis -%}
async def update_item(
    session: AsyncSession, {{ cache_param }}{{ caller_param }}item_id: uuid.UUID, data: ItemUpdate
) -> Item:
{%- else -%}
async def update_item(session: AsyncSession, item_id: uuid.UUID, data: ItemUpdate) -> Item:
{%- endif %}
    item = await get_item(session, {{ caller_arg }}item_id)
    changes = data.model_dump(exclude_unset=True)
    for field, value in changes.items():
        setattr(item, field, value)
    if changes:
        await flush_or_conflict(session, _name_taken(item.name))
        await session.refresh(item)
{%- if cookiecutter.redis %}
        await _forget(session, cache, item_id)
{%- endif %}
    return item


{% if cookiecutter.redis and cookiecutter.auth != "none" -%}
async def delete_item(
    session: AsyncSession, cache: ItemCache, caller: Caller, item_id: uuid.UUID
) -> None:
{%- else -%}
async def delete_item(session: AsyncSession, {{ cache_param }}{{ caller_param }}item_id: uuid.UUID) -> None:
{%- endif %}
    item = await get_item(session, {{ caller_arg }}item_id)
    await session.delete(item)
    # A table of yours that refers to items makes this a 409 while references remain.
    await flush_or_conflict(session, f"Item {item_id} is still referenced by other data.")
{%- if cookiecutter.redis %}
    await _forget(session, cache, item_id)
{%- endif %}
{%- if cookiecutter.tasks != "none" %}


async def archive_item(session: AsyncSession, cache: ItemCache, item_id: uuid.UUID) -> bool:
    """Mark the item archived, unless it is already (or gone): True when this call did.
    One conditional statement, so two runs at once still archive it once."""
    archived = await session.execute(
        update(Item)
        .where(Item.id == item_id, Item.archived_at.is_(None))
        .values(archived_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if not archived.rowcount:  # type: ignore[attr-defined]
        return False
    await _forget(session, cache, item_id)
    return True
{%- endif %}
