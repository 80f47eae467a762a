from __future__ import annotations

from collections.abc import AsyncIterator{% if cookiecutter.database != "none" %}, Iterator{% endif %}

import httpx
import pytest
from fastapi import FastAPI
{%- if cookiecutter.database != "none" %}
from sqlalchemy.ext.asyncio import async_sessionmaker
{%- endif %}

from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings
from tests.support import make_settings{% if cookiecutter.database != "none" %}, throwaway_database{% endif %}
{%- if cookiecutter.database != "none" %}


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with throwaway_database(tmp_path_factory.mktemp("db")) as url:
        yield url
{%- endif %}


@pytest.fixture(scope="session")
def settings({% if cookiecutter.database != "none" %}database_url: str{% endif %}) -> Settings:
    return make_settings({% if cookiecutter.database != "none" %}database_url=database_url{% endif %})


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The application with its lifespan running{% if cookiecutter.database != "none" %}; every test runs in a transaction that is
    rolled back, and the endpoints' own commits and rollbacks become savepoints inside it{% endif %}."""
    app = create_app(settings)
{%- if cookiecutter.database != "none" %}
    async with app.router.lifespan_context(app), app.state.engine.connect() as connection:
        transaction = await connection.begin()
        app.state.sessionmaker = async_sessionmaker(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        try:
            yield app
        finally:
            await transaction.rollback()
{%- else %}
    async with app.router.lifespan_context(app):
        yield app
{%- endif %}


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
