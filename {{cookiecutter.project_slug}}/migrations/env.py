"""Alembic environment: async engine, URL from the application's settings."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

{% if cookiecutter.auth == "jwt" -%}
from {{ cookiecutter.project_slug }}.auth import models as _auth_models  # noqa: F401 - registers tables
{% endif -%}
from {{ cookiecutter.project_slug }}.db import Base, build_engine
from {{ cookiecutter.project_slug }}.items import models as _items_models  # noqa: F401
from {{ cookiecutter.project_slug }}.settings import Settings
{%- if cookiecutter.auth == "jwt" %}
from {{ cookiecutter.project_slug }}.users import models as _users_models  # noqa: F401
{%- endif %}

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _settings() -> Settings:
    # Tests pass a URL through the config; otherwise DATABASE_URL from the environment/.env.
    url = config.attributes.get("database_url")
    return Settings(database_url=url) if url else Settings()


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode recreates the table instead.
        render_as_batch=(connection.dialect.name if connection else (url or "")).startswith(
            "sqlite"
        ),
        compare_type=True,
        literal_binds=connection is None,
    )


def run_migrations_offline() -> None:
    _configure(url=_settings().database_url)
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = build_engine(_settings(), pooled=False)
    async with engine.connect() as connection:
        await connection.run_sync(_run_sync)
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
