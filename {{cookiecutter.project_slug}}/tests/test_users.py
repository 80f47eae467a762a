"""The signed-in user's own account, the superusers' list, and `create-superuser`."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from {{ cookiecutter.project_slug }} import cli
from {{ cookiecutter.project_slug }}.db import standalone_session
from {{ cookiecutter.project_slug }}.settings import Settings, get_settings
from {{ cookiecutter.project_slug }}.users.models import User
from tests.auth_support import (
    INVALID_TOKEN_CHALLENGE,
    SIGNED_IN,
    TEST_PASSWORD,
    access_headers,
    add_user,
    bearer,
)
from tests.support import make_settings, throwaway_database

ME = "/api/v1/users/me"
USERS = "/api/v1/users"
NEW_PASSWORD = "an entirely new passphrase"


async def test_me_is_the_signed_in_user(client: httpx.AsyncClient, user: User) -> None:
    body = (await client.get(ME)).json()
    assert body["id"] == str(user.id)
    assert (body["email"], body["is_superuser"]) == ("user@example.com", False)
    assert "hashed_password" not in body


async def test_changing_the_password_needs_the_current_one(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    wrong = await client.patch(ME, json={"current_password": "nope", "password": NEW_PASSWORD})
    assert wrong.status_code == 403
    missing = await client.patch(ME, json={"password": NEW_PASSWORD})
    assert missing.status_code == 422

    before = (
        await anonymous.post(
            "/api/v1/auth/token", data={"username": "user@example.com", "password": TEST_PASSWORD}
        )
    ).json()
    changed = await client.patch(
        ME, json={"current_password": TEST_PASSWORD, "password": NEW_PASSWORD}
    )
    assert changed.status_code == 200
    # Sessions opened with the old password end; the new password works.
    old_session = {"refresh_token": before["refresh_token"]}
    assert (await anonymous.post("/api/v1/auth/refresh", json=old_session)).status_code == 401
    login = {"username": "user@example.com", "password": NEW_PASSWORD}
    assert (await anonymous.post("/api/v1/auth/token", data=login)).status_code == 200


async def sign_in(client: httpx.AsyncClient, password: str) -> str:
    """A new session's access token."""
    login = {"username": "user@example.com", "password": password}
    response = await client.post("/api/v1/auth/token", data=login)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def test_a_new_password_refuses_every_access_token_issued_before_it(
    anonymous: httpx.AsyncClient, user: User
) -> None:
    this, other = [await sign_in(anonymous, TEST_PASSWORD) for _ in range(2)]
    for path in SIGNED_IN:  # both in use before the change
        assert (await anonymous.get(path, headers=bearer(other))).status_code == 200, path
    change = {"current_password": TEST_PASSWORD, "password": NEW_PASSWORD}
    assert (await anonymous.patch(ME, headers=bearer(this), json=change)).status_code == 200

    # The other session and the one that changed it: refused, not once they expire.
    for token in (other, this):
        for path in SIGNED_IN:
            refused = await anonymous.get(path, headers=bearer(token))
            assert refused.status_code == 401, path
            assert refused.headers["www-authenticate"] == INVALID_TOKEN_CHALLENGE
    after = await sign_in(anonymous, NEW_PASSWORD)
    for path in SIGNED_IN:
        assert (await anonymous.get(path, headers=bearer(after))).status_code == 200, path

    # And again: each new password ends the tokens of the one before.
    change = {"current_password": NEW_PASSWORD, "password": "yet another new passphrase"}
    assert (await anonymous.patch(ME, headers=bearer(after), json=change)).status_code == 200
    assert (await anonymous.get(ME, headers=bearer(after))).status_code == 401


@pytest.mark.parametrize("weak", ["passwordpassword", " " * 20])
async def test_a_new_password_must_not_be_easy_to_guess(
    client: httpx.AsyncClient, weak: str
) -> None:
    response = await client.patch(ME, json={"current_password": TEST_PASSWORD, "password": weak})
    assert response.status_code == 422, response.text
    assert weak not in response.text


async def test_a_null_email_is_refused(client: httpx.AsyncClient) -> None:
    null = await client.patch(ME, json={"current_password": TEST_PASSWORD, "email": None})
    assert null.status_code == 422


async def test_guessing_the_current_password_is_limited(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    for _ in range(app.state.settings.login_max_failures):
        guess = await client.patch(ME, json={"current_password": "guess", "email": "x@example.com"})
        assert guess.status_code == 403
    locked = await client.patch(
        ME, json={"current_password": TEST_PASSWORD, "email": "x@example.com"}
    )
    assert locked.status_code == 429


async def test_only_superusers_list_users(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    assert (await client.get(USERS)).status_code == 403
    admin = await add_user(app, "admin@example.com", is_superuser=True)
    listing = await anonymous.get(USERS, headers=access_headers(settings, admin.id))
    assert listing.status_code == 200
    assert {u["email"] for u in listing.json()["users"]} == {
        "user@example.com",
        "admin@example.com",
    }


def run_create_superuser(
    monkeypatch: pytest.MonkeyPatch, database_url: str, email: str, password: str
) -> int:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{password}\n"))
    get_settings.cache_clear()
    try:
        return cli.main(["create-superuser", "--email", email])
    finally:
        get_settings.cache_clear()


async def superusers(database_url: str) -> list[str]:
    async with standalone_session(make_settings(database_url=database_url)) as session:
        query = select(User.email).where(User.is_superuser)
        return list((await session.scalars(query)).all())


def test_create_superuser_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A plain function: the command runs its own event loop, as it does from a shell.
    with throwaway_database(tmp_path) as url:
        assert run_create_superuser(monkeypatch, url, "Root@Example.com", NEW_PASSWORD) == 0
        assert "root@example.com created" in capsys.readouterr().out
        assert asyncio.run(superusers(url)) == ["root@example.com"]

        assert run_create_superuser(monkeypatch, url, "root@example.com", NEW_PASSWORD) == 1
        assert "already exists" in capsys.readouterr().err
        assert run_create_superuser(monkeypatch, url, "other@example.com", "short") == 1
        assert "password" in capsys.readouterr().err
        assert run_create_superuser(monkeypatch, url, "other@example.com", "passwordpassword") == 1
        assert "too easy to guess" in capsys.readouterr().err
        assert asyncio.run(superusers(url)) == ["root@example.com"]


def test_create_superuser_says_when_the_database_is_down(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
{%- if cookiecutter.database == "sqlite" %}
    unreachable = "sqlite+aiosqlite:////nonexistent-dir/db.sqlite"
{%- else %}
    unreachable = "postgresql+asyncpg://postgres@127.0.0.1:1/none"
{%- endif %}
    assert run_create_superuser(monkeypatch, unreachable, "root@example.com", NEW_PASSWORD) == 1
{%- if cookiecutter.database == "sqlite" %}
    assert "the database is unavailable" in capsys.readouterr().err
{%- else %}
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("Not created: Cannot reach the database server at 127.0.0.1:1 ")
{%- endif %}
