from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from {{ cookiecutter.project_slug }}.db import SessionDep
from {{ cookiecutter.project_slug }}.items import service
from {{ cookiecutter.project_slug }}.items.schemas import ItemCreate, ItemPage, ItemRead, ItemUpdate
from {{ cookiecutter.project_slug }}.settings import API_PREFIX

MAX_PAGE_SIZE = 100
# Bounded so a huge offset is a 422, not a database integer overflow.
MAX_OFFSET = 2**31 - 1

router = APIRouter(prefix=f"{API_PREFIX}/items", tags=["items"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_item(data: ItemCreate, session: SessionDep) -> ItemRead:
    return ItemRead.model_validate(await service.create_item(session, data))


@router.get("")
async def list_items(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> ItemPage:
    items, total = await service.list_items(session, limit=limit, offset=offset)
    return ItemPage(
        items=[ItemRead.model_validate(item) for item in items],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{item_id}")
async def get_item(item_id: uuid.UUID, session: SessionDep) -> ItemRead:
    return ItemRead.model_validate(await service.get_item(session, item_id))


@router.patch("/{item_id}")
async def update_item(item_id: uuid.UUID, data: ItemUpdate, session: SessionDep) -> ItemRead:
    return ItemRead.model_validate(await service.update_item(session, item_id, data))


@router.delete("/{item_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_item(item_id: uuid.UUID, session: SessionDep) -> None:
    await service.delete_item(session, item_id)
