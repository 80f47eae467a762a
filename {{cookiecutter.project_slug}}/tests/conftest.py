from __future__ import annotations

from collections.abc import AsyncIterator{% if cookiecutter.database != "none" or cookiecutter.redis %}, Iterator{% endif %}
from contextlib import AsyncExitStack

import httpx
import pytest
from fastapi import FastAPI
{%- if cookiecutter.database != "none" %}
from sqlalchemy.ext.asyncio import async_sessionmaker
{%- endif %}

{% if cookiecutter.auth == "oidc" -%}
from {{ cookiecutter.project_slug }}.auth.oidc import OIDCVerifier
{% endif -%}
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings
{%- if cookiecutter.auth == "jwt" %}
from {{ cookiecutter.project_slug }}.users.models import User
from tests.auth_support import access_headers, add_user
{%- elif cookiecutter.auth == "oidc" %}
from tests.auth_support import FakeIssuer
{%- endif %}
{%- if cookiecutter.redis %}
from tests.redis_support import delete_prefixed, redis_url, throwaway_key_prefix
{%- endif %}
from tests.support import make_client, make_settings{% if cookiecutter.database != "none" %}, throwaway_database{% endif %}
{%- if cookiecutter.database != "none" %}


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with throwaway_database(tmp_path_factory.mktemp("db")) as url:
        yield url
{%- endif %}


{%- if cookiecutter.redis %}


@pytest.fixture(scope="session", autouse=True)
def redis_key_prefix() -> Iterator[str]:
    """This run's keys on the real Redis (make_settings uses the prefix); deleted at the end."""
    with throwaway_key_prefix() as prefix:
        yield prefix
{%- endif %}


@pytest.fixture(scope="session")
def settings({% if cookiecutter.database != "none" %}database_url: str{% endif %}) -> Settings:
    return make_settings({% if cookiecutter.database != "none" %}database_url=database_url{% endif %})


{%- if cookiecutter.auth == "oidc" %}


@pytest.fixture
def issuer() -> FakeIssuer:
    return FakeIssuer()
{%- endif %}


@pytest.fixture
async def app(settings: Settings{% if cookiecutter.auth == "oidc" %}, issuer: FakeIssuer{% endif %}) -> AsyncIterator[FastAPI]:
    """The application with its lifespan running{% if cookiecutter.database != "none" %}; every test runs in a transaction that is
    rolled back, and the endpoints' own commits and rollbacks become savepoints inside it{% endif %}{% if cookiecutter.auth == "oidc" %}.
    Tokens are verified for real, against the in-process fake identity provider{% endif %}."""
    app = create_app(settings)
    async with AsyncExitStack() as stack:
{%- if cookiecutter.redis %}
        # Every test starts with no keys (no cached rows, no counted failures) of this run.
        stack.push_async_callback(delete_prefixed, redis_url(), settings.redis_key_prefix)
{%- endif %}
        await stack.enter_async_context(app.router.lifespan_context(app))
{%- if cookiecutter.auth == "oidc" %}
        http = await stack.enter_async_context(httpx.AsyncClient(transport=issuer.transport))
        app.state.oidc_verifier = OIDCVerifier.from_settings(settings, http)
{%- endif %}
{%- if cookiecutter.database != "none" %}
        connection = await stack.enter_async_context(app.state.engine.connect())
        transaction = await connection.begin()
        stack.push_async_callback(transaction.rollback)
        app.state.sessionmaker = app.state.read_sessionmaker = async_sessionmaker(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
{%- endif %}
        yield app


{%- if cookiecutter.auth == "none" %}


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(app) as client:
        yield client
{%- else %}


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client without credentials."""
    async with make_client(app) as client:
        yield client
{%- if cookiecutter.auth == "jwt" %}


@pytest.fixture
async def user(app: FastAPI) -> User:
    return await add_user(app, "user@example.com")


@pytest.fixture
async def client(app: FastAPI, settings: Settings, user: User) -> AsyncIterator[httpx.AsyncClient]:
    """A client signed in as `user`."""
    async with make_client(app, access_headers(settings, user.id)) as client:
        yield client
{%- else %}


@pytest.fixture
async def client(app: FastAPI, issuer: FakeIssuer) -> AsyncIterator[httpx.AsyncClient]:
    """A client with a valid access token for the subject "user-1"."""
    async with make_client(app, issuer.bearer()) as client:
        yield client
{%- endif %}
{%- endif %}
