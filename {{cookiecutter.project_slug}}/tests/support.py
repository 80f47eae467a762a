"""Test helpers: settings for tests{% if cookiecutter.database != "none" %} and throwaway, migrated databases{% endif %}."""

from __future__ import annotations

{% if cookiecutter.database == "postgresql" -%}
import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.config import Config
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
{% elif cookiecutter.database == "sqlite" -%}
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from alembic import command
from alembic.config import Config
from fastapi import FastAPI
{% else -%}
from typing import Any

import httpx
from fastapi import FastAPI
{% endif %}
{% if cookiecutter.auth == "oidc" and cookiecutter.database != "none" -%}
from {{ cookiecutter.project_slug }}.auth.dependencies import current_principal
from {{ cookiecutter.project_slug }}.auth.oidc import Principal
{% endif -%}
{% if cookiecutter.database == "postgresql" -%}
from {{ cookiecutter.project_slug }}.db import maintenance_url
{% endif -%}
{% if cookiecutter.auth != "none" and cookiecutter.database != "none" -%}
from {{ cookiecutter.project_slug }}.items.router import caller
from {{ cookiecutter.project_slug }}.items.service import Caller
{% endif -%}
from {{ cookiecutter.project_slug }}.settings import Settings
{%- if cookiecutter.auth == "oidc" %}
from tests.auth_support import AUDIENCE, ISSUER_URL
{%- endif %}
{%- if cookiecutter.redis %}
from tests.redis_support import KEY_PREFIX
{%- endif %}
{%- if cookiecutter.auth == "jwt" or cookiecutter.database != "none" %}
{# a blank line after the imports #}
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}
# Random, like a real key: production and development refuse made-up ones (settings.py).
TEST_SECRET_KEY = "WO8ClAHdVem6u85fiqPDbQCX1PHTfb6A2IaEB_Xy9WU"
# What production requires besides SECRET_KEY: a mail server and https links (settings.py).
PRODUCTION_MAIL = {"smtp_host": "smtp.example.test", "public_base_url": "https://app.example.test"}
{%- endif %}
{%- if cookiecutter.database != "none" %}
PROJECT_ROOT = Path(__file__).resolve().parents[1]
{%- endif %}


def make_client(app: FastAPI, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    """A client that calls `app` in-process."""
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers)


def make_settings(**overrides: Any) -> Settings:
    """Settings for tests: `.env` is ignored so a developer's local file cannot leak in."""
    values: dict[str, Any] = {"environment": "test"}
{%- if cookiecutter.redis %}
    values["redis_key_prefix"] = KEY_PREFIX
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}
    values["secret_key"] = TEST_SECRET_KEY
    if overrides.get("environment") == "production":
        values |= PRODUCTION_MAIL  # production refuses to start without them (settings.py)
{%- elif cookiecutter.auth == "oidc" %}
    values |= {"oidc_issuer": ISSUER_URL, "oidc_audience": AUDIENCE}
{%- endif %}
    return Settings(_env_file=None, **(values | overrides))
{%- if cookiecutter.auth != "none" and cookiecutter.database != "none" %}


async def _fixed_caller() -> Caller:
    return Caller(owner_id={{ "uuid.UUID(int=1)" if cookiecutter.auth == "jwt" else '"user-1"' }})


{%- if cookiecutter.auth == "oidc" %}


async def _item_scopes_principal() -> Principal:
    scopes = frozenset({"items:read", "items:write"})
    return Principal(subject="user-1", scopes=scopes, roles=frozenset(), claims={})
{%- endif %}


def items_without_login(app: FastAPI) -> FastAPI:
    """For tests about the database, not about auth: /api/v1/items answers without a token."""
    app.dependency_overrides[caller] = _fixed_caller
{%- if cookiecutter.auth == "oidc" %}
    app.dependency_overrides[current_principal] = _item_scopes_principal  # the scope checks'
{%- endif %}
    return app
{%- endif %}
{%- if cookiecutter.database != "none" %}


def migrate(database_url: str) -> None:
    config = Config(PROJECT_ROOT / "alembic.ini")
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
{%- if cookiecutter.database == "sqlite" %}


@contextmanager
def throwaway_database(directory: Path, *, migrated: bool = True) -> Iterator[str]:
    """A SQLite file of its own, migrated unless asked not to; nothing to clean up beyond
    pytest's tmp dir."""
    url = f"sqlite+aiosqlite:///{directory / f'test_{uuid.uuid4().hex}.db'}"
    if migrated:
        migrate(url)
    yield url
{%- else %}


SERVER_HINT = (
    "The tests need the PostgreSQL server named by DATABASE_URL (its database need not\n"
    "exist: test databases are created through the server's `postgres` database), e.g.\n"
    "  DATABASE_URL=postgresql+asyncpg://postgres:postgres@127.0.0.1:5432/postgres\n"
    "Start one with `docker compose up -d db`, or point DATABASE_URL at an existing server."
)


def _server_url() -> str:
    return os.environ.get("DATABASE_URL") or Settings().database_url


async def _admin(server_url: str, statement: str) -> None:
    engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@contextmanager
def throwaway_database(directory: Path, *, migrated: bool = True) -> Iterator[str]:
    """Create a database (migrated unless asked not to) on the server named by DATABASE_URL,
    through its maintenance database, so the database DATABASE_URL names need not exist;
    drop it afterwards."""
    del directory  # the database lives on the server
    server_url = maintenance_url(_server_url())
    name = f"test_{{ cookiecutter.project_slug }}_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # any failure here: say how to fix it
        pytest.fail(f"Cannot create a test database: {exc!r}\n{SERVER_HINT}", pytrace=False)
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        if migrated:
            migrate(url)
        yield url
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
{%- endif %}
{%- endif %}
