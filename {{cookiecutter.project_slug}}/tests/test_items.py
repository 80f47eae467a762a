from __future__ import annotations

import asyncio
import uuid
{%- if cookiecutter.auth != "none" %}
from collections.abc import AsyncIterator
{%- endif %}
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
{%- if cookiecutter.auth == "jwt" %}
from fastapi import FastAPI

from {{ cookiecutter.project_slug }}.settings import Settings
from tests.auth_support import access_headers, add_user
from tests.support import make_client
{%- elif cookiecutter.auth == "oidc" %}
from fastapi import FastAPI

from tests.auth_support import FakeIssuer
from tests.support import make_client
{%- endif %}

ITEMS = "/api/v1/items"


async def create(client: httpx.AsyncClient, name: str, **fields: Any) -> dict[str, Any]:
    response = await client.post(ITEMS, json={"name": name, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_create_then_read(client: httpx.AsyncClient) -> None:
    created = await create(client, "hammer", description="claw, 16 oz")
    assert uuid.UUID(created["id"])
    assert created["created_at"].endswith(("Z", "+00:00"))

    response = await client.get(f"{ITEMS}/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created


async def test_a_duplicate_name_is_a_409_problem(client: httpx.AsyncClient) -> None:
    await create(client, "saw")
    response = await client.post(ITEMS, json={"name": "saw"})
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "saw" in response.json()["detail"]
    # The failed insert was rolled back cleanly: the session is still usable.
    assert (await client.get(ITEMS)).json()["total"] == 1


async def test_unknown_id_is_a_404_problem(client: httpx.AsyncClient) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        response = await client.request(method, f"{ITEMS}/{uuid.uuid4()}", json={})
        assert response.status_code == 404, method
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("bad_id", ["42", "not-a-uuid", "' OR 1=1 --"])
async def test_a_malformed_id_is_a_422(client: httpx.AsyncClient, bad_id: str) -> None:
    response = await client.get(f"{ITEMS}/{bad_id}")
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["path", "item_id"]


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"name": ""},
        {"name": "x" * 101},
        {"name": "tab\tinside"},
        {"name": "ok", "description": "nul\x00byte"},
        {"name": "ok", "description": "d" * 1001},
        {"name": 12},
        {"name": "ok", "unexpected": True},
    ],
)
async def test_invalid_payloads_are_422(client: httpx.AsyncClient, payload: object) -> None:
    response = await client.post(ITEMS, json=payload)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_list_is_paginated_newest_first_with_a_total(client: httpx.AsyncClient) -> None:
    names = [f"item-{n}" for n in range(5)]
    for name in names:
        await create(client, name)

    first = (await client.get(ITEMS, params={"limit": 2})).json()
    second = (await client.get(ITEMS, params={"limit": 2, "offset": 2})).json()
    last = (await client.get(ITEMS, params={"limit": 2, "offset": 4})).json()
    past_the_end = (await client.get(ITEMS, params={"limit": 2, "offset": 9})).json()

    assert first["total"] == second["total"] == last["total"] == past_the_end["total"] == 5
    assert past_the_end["items"] == []
    assert (first["limit"], first["offset"]) == (2, 0)
    pages = [item["name"] for page in (first, second, last) for item in page["items"]]
    assert pages == list(reversed(names))


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"offset": 2**31}, {"limit": "x"}]
)
async def test_pagination_bounds_are_enforced(
    client: httpx.AsyncClient, params: dict[str, int | str]
) -> None:
    response = await client.get(ITEMS, params=params)
    assert response.status_code == 422


async def test_patch_changes_only_the_fields_sent(client: httpx.AsyncClient) -> None:
    created = await create(client, "drill", description="cordless")
    before = datetime.fromisoformat(created["updated_at"])
    await asyncio.sleep(0.01)
    assert datetime.now(UTC) > before  # the clock has moved on: a new timestamp is later
    response = await client.patch(f"{ITEMS}/{created['id']}", json={"description": None})
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["description"]) == ("drill", None)
    assert datetime.fromisoformat(body["updated_at"]) > before
    assert body["created_at"] == created["created_at"]

    response = await client.patch(f"{ITEMS}/{created['id']}", json={"name": "hammer drill"})
    assert response.json()["name"] == "hammer drill"


async def test_patch_cannot_null_the_name_or_steal_one(client: httpx.AsyncClient) -> None:
    await create(client, "taken")
    mine = await create(client, "mine")
    null_name = await client.patch(f"{ITEMS}/{mine['id']}", json={"name": None})
    assert null_name.status_code == 422
    stolen = await client.patch(f"{ITEMS}/{mine['id']}", json={"name": "taken"})
    assert stolen.status_code == 409


async def test_delete_then_gone(client: httpx.AsyncClient) -> None:
    created = await create(client, "chisel")
    response = await client.delete(f"{ITEMS}/{created['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers  # no body, nothing to describe
    assert (await client.get(f"{ITEMS}/{created['id']}")).status_code == 404


async def test_each_test_starts_with_an_empty_table(client: httpx.AsyncClient) -> None:
    # Other tests create items; isolation rolls every one of them back.
    assert (await client.get(ITEMS)).json()["total"] == 0
{%- if cookiecutter.auth != "none" %}


@pytest.fixture
{%- if cookiecutter.auth == "jwt" %}
async def other(app: FastAPI, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Another signed-in user."""
    someone_else = await add_user(app, "other@example.com")
    async with make_client(app, access_headers(settings, someone_else.id)) as client:
        yield client
{%- else %}
async def other(app: FastAPI, issuer: FakeIssuer) -> AsyncIterator[httpx.AsyncClient]:
    """Another signed-in user."""
    async with make_client(app, issuer.bearer(sub="user-2")) as client:
        yield client
{%- endif %}


async def test_items_need_a_signed_in_caller(anonymous: httpx.AsyncClient) -> None:
    assert (await anonymous.get(ITEMS)).status_code == 401
    assert (await anonymous.post(ITEMS, json={"name": "x"})).status_code == 401


async def test_items_are_private_to_their_owner(
    client: httpx.AsyncClient, other: httpx.AsyncClient
) -> None:
    mine = await create(client, "hammer")
    for method in ("GET", "PATCH", "DELETE"):
        response = await other.request(method, f"{ITEMS}/{mine['id']}", json={})
        assert response.status_code == 404, method  # not even a hint that it exists
    assert (await other.get(ITEMS)).json()["total"] == 0
    # Names are unique per owner only.
    await create(other, "hammer")
    assert (await client.get(ITEMS)).json()["total"] == 1
    assert (await client.get(f"{ITEMS}/{mine['id']}")).status_code == 200
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}


async def test_superusers_see_and_change_every_item(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient
) -> None:
    mine = await create(client, "hammer")
    admin = await add_user(app, "admin@example.com", is_superuser=True)
    async with make_client(app, access_headers(settings, admin.id)) as superuser:
        assert (await superuser.get(ITEMS)).json()["total"] == 1
        renamed = await superuser.patch(f"{ITEMS}/{mine['id']}", json={"name": "mallet"})
        assert renamed.status_code == 200
    assert (await client.get(f"{ITEMS}/{mine['id']}")).json()["name"] == "mallet"
{%- endif %}
