from __future__ import annotations

import uuid
{%- if cookiecutter.auth != "none" or cookiecutter.redis %}
from typing import Annotated
{%- endif %}

from fastapi import APIRouter, {% if cookiecutter.auth != "none" or cookiecutter.redis %}Depends, {% endif %}{% if cookiecutter.redis %}Request, {% endif %}Response, status

{% if cookiecutter.auth == "jwt" -%}
from {{ cookiecutter.project_slug }}.auth.dependencies import CurrentAccount
{% elif cookiecutter.auth == "oidc" -%}
from {{ cookiecutter.project_slug }}.auth.dependencies import CurrentPrincipal, require_scope_setting
{% endif -%}
from {{ cookiecutter.project_slug }}.db import PageLimit, PageOffset, SessionDep
from {{ cookiecutter.project_slug }}.errors import problems
from {{ cookiecutter.project_slug }}.items import service
from {{ cookiecutter.project_slug }}.items.schemas import ItemCreate, ItemPage, ItemRead, ItemUpdate
{%- if cookiecutter.tasks != "none" %}
from {{ cookiecutter.project_slug }}.items.tasks import archive_item as archive_item_task
{%- endif %}
{%- if cookiecutter.redis %}
from {{ cookiecutter.project_slug }}.redis import RedisDep
from {{ cookiecutter.project_slug }}.settings import API_PREFIX, Settings
{%- else %}
from {{ cookiecutter.project_slug }}.settings import API_PREFIX
{%- endif %}
{%- if cookiecutter.tasks != "none" %}
from {{ cookiecutter.project_slug }}.tasks.broker import enqueue_after_commit
{%- endif %}

# Every operation uses the database (503 while it is down){% if cookiecutter.auth == "jwt" %} and needs a signed-in
# caller (401){% elif cookiecutter.auth == "oidc" %} and needs a token (401) with the
# required scopes (403); 503 also while the identity provider cannot be reached{% endif %}.
router = APIRouter(
    prefix=f"{API_PREFIX}/items",
    tags=["items"],
    responses=problems({% if cookiecutter.auth == "jwt" %}401, {% elif cookiecutter.auth == "oidc" %}401, 403, {% endif %}503),
)
{%- if cookiecutter.auth == "jwt" %}


async def caller(account: CurrentAccount) -> service.Caller:
    return service.Caller(owner_id=account.id, sees_all=account.is_superuser)
{%- elif cookiecutter.auth == "oidc" %}


async def caller(principal: CurrentPrincipal) -> service.Caller:
    return service.Caller(owner_id=principal.subject)


# Reads need the scope OIDC_ITEMS_READ_SCOPE names, writes OIDC_ITEMS_WRITE_SCOPE.
READS = [Depends(require_scope_setting(lambda settings: settings.oidc_items_read_scope))]
WRITES = [Depends(require_scope_setting(lambda settings: settings.oidc_items_write_scope))]
{%- endif %}
{%- if cookiecutter.auth != "none" %}


Caller = Annotated[service.Caller, Depends(caller)]
{%- endif %}
{%- if cookiecutter.redis %}


def item_cache(request: Request, store: RedisDep) -> service.ItemCache:
    settings: Settings = request.app.state.settings
    return service.item_cache(store, settings)


ItemCache = Annotated[service.ItemCache, Depends(item_cache)]
{%- endif %}
{#- Every endpoint below takes the caller when items have owners. #}
{%- set caller_param = ", caller: Caller" if cookiecutter.auth != "none" else "" %}
{%- set caller_arg = "caller, " if cookiecutter.auth != "none" else "" %}
{%- set reads = ", dependencies=READS" if cookiecutter.auth == "oidc" else "" %}
{%- set writes = ", dependencies=WRITES" if cookiecutter.auth == "oidc" else "" %}
{%- set cache_param = ", cache: ItemCache" if cookiecutter.redis else "" %}
{%- set cache_arg = "cache, " if cookiecutter.redis else "" %}


@router.post("", status_code=status.HTTP_201_CREATED, responses=problems(409){{ writes }})
async def create_item(data: ItemCreate, session: SessionDep{{ caller_param }}) -> ItemRead:
    return ItemRead.model_validate(await service.create_item(session, {{ caller_arg }}data))


@router.get(""{{ reads }})
async def list_items(
    session: SessionDep,
{%- if cookiecutter.auth != "none" %}
    caller: Caller,
{%- endif %}
    limit: PageLimit = 20,
    offset: PageOffset = 0,
) -> ItemPage:
    rows, total = await service.list_items(session, {{ caller_arg }}limit=limit, offset=offset)
    # Validated once, from the rows' attributes (FastAPI passes the model through as is).
    page = {"items": rows, "total": total, "limit": limit, "offset": offset}
    return ItemPage.model_validate(page, from_attributes=True)


@router.get("/{item_id}", responses=problems(404){{ reads }})
{%- if cookiecutter.redis and cookiecutter.auth != "none" %}
async def get_item(
    item_id: uuid.UUID, session: SessionDep, cache: ItemCache, caller: Caller
) -> ItemRead:
{%- else %}
async def get_item(item_id: uuid.UUID, session: SessionDep{{ cache_param }}{{ caller_param }}) -> ItemRead:
{%- endif %}
{%- if cookiecutter.redis %}
    return await service.read_item(session, cache, {{ caller_arg }}item_id)
{%- else %}
    return ItemRead.model_validate(await service.get_item(session, {{ caller_arg }}item_id))
{%- endif %}


@router.patch("/{item_id}", responses=problems(404, 409){{ writes }})
{%- if cookiecutter.auth != "none" or cookiecutter.redis %}
async def update_item(
    item_id: uuid.UUID, data: ItemUpdate, session: SessionDep{{ cache_param }}{{ caller_param }}
) -> ItemRead:
{%- else %}
async def update_item(item_id: uuid.UUID, data: ItemUpdate, session: SessionDep) -> ItemRead:
{%- endif %}
    item = await service.update_item(session, {{ cache_arg }}{{ caller_arg }}item_id, data)
    return ItemRead.model_validate(item)


# 409: a row of another table still refers to the item.
{%- if cookiecutter.auth == "oidc" %}
@router.delete(
    "/{item_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,  # no body, so no Content-Type either
    responses=problems(404, 409),
    dependencies=WRITES,
)
{%- else %}
@router.delete(
    "/{item_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,  # no body, so no Content-Type either
    responses=problems(404, 409),
)
{%- endif %}
{%- if cookiecutter.redis and cookiecutter.auth != "none" %}
async def delete_item(
    item_id: uuid.UUID, session: SessionDep, cache: ItemCache, caller: Caller
) -> None:
{%- else %}
async def delete_item(item_id: uuid.UUID, session: SessionDep{{ cache_param }}{{ caller_param }}) -> None:
{%- endif %}
    await service.delete_item(session, {{ cache_arg }}{{ caller_arg }}item_id)
{%- if cookiecutter.tasks != "none" %}


# 202: the item is archived by a worker (items/tasks.py), once this request has committed;
# asking again is harmless. 503 also while Redis (the queue) is unavailable.
@router.post(
    "/{item_id}/archive",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(404),
{%- if cookiecutter.auth == "oidc" %}
    dependencies=WRITES,
{%- endif %}
)
async def archive_item(item_id: uuid.UUID, session: SessionDep{{ caller_param }}) -> ItemRead:
    item = await service.get_item(session, {{ caller_arg }}item_id)
    enqueue_after_commit(session, archive_item_task, item.id)
    return ItemRead.model_validate(item)
{%- endif %}
