"""Alembic environment: async engine, URL from the application's settings."""

from __future__ import annotations

import asyncio
import sys
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from alembic.operations.ops import MigrationScript
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
{%- if cookiecutter.database == "postgresql" %}
from sqlalchemy.exc import DBAPIError
{%- endif %}

{% if cookiecutter.auth == "jwt" -%}
from {{ cookiecutter.project_slug }}.accounts import models as _accounts_models  # noqa: F401 - registers tables
from {{ cookiecutter.project_slug }}.auth import models as _auth_models  # noqa: F401
{% endif -%}
from {{ cookiecutter.project_slug }}.db import (
    Base,
    UTCDateTime,
    build_engine,
{%- if cookiecutter.database == "postgresql" %}
    missing_database,
    unreachable_server,
{%- endif %}
)
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


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Write the project's own column types as the plain SQLAlchemy types they store, so a
    generated migration needs no import from the application (and never changes with it)."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False  # the default rendering


# What `make migration` says instead of writing an empty migration when nothing changed.
NO_CHANGES = (
    "No changes: the models match the database, so no migration was written; "
    'for a hand-made one (data, SQL) run: uv run alembic revision -m "..."'
)


def process_revision_directives(
    _context: MigrationContext, _revision: Any, directives: list[MigrationScript]
) -> None:
    """Write no migration when autogenerate finds no change (an empty one would run as if it
    did something); number new revisions after the shipped ones (0001, 0002, ...), so that
    file names (`file_template` in alembic.ini) sort in the order the migrations run."""
    if not directives:
        return
    if getattr(config.cmd_opts, "autogenerate", False) and all(
        ops.is_empty() for ops in directives[0].upgrade_ops_list
    ):
        directives.clear()
        sys.stdout.write(f"{NO_CHANGES}\n")  # one line, where alembic writes its own
        return
    heads = ScriptDirectory.from_config(config).get_heads()
    if all(head.isdigit() for head in heads):
        directives[0].rev_id = f"{max((int(head) for head in heads), default=0) + 1:04d}"


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
        render_item=render_item,
        process_revision_directives=process_revision_directives,
        literal_binds=connection is None,
    )


def run_migrations_offline() -> None:
    _configure(url=_settings().database_url)
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
{%- if cookiecutter.database == "sqlite" %}
    # Batch mode rebuilds a table by dropping it: with foreign keys on, that drop deletes
    # every row that refers to the table (ON DELETE CASCADE). So they are off while the
    # migrations run (SQLite takes the switch only outside a transaction, hence the driver's
    # connection) and checked before the commit. This engine is the migrations' own.
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute("PRAGMA foreign_keys=OFF")
    cursor.close()
{%- endif %}
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
{%- if cookiecutter.database == "sqlite" %}
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:  # raised inside the transaction: nothing is committed
            raise RuntimeError(f"rows whose foreign key points nowhere: {broken[:5]}")
{%- endif %}


async def run_migrations_online(settings: Settings) -> None:
    engine = build_engine(settings, pooled=False)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
{%- if cookiecutter.database == "postgresql" %}
    settings = _settings()
    try:
        asyncio.run(run_migrations_online(settings))
    except (DBAPIError, OSError) as exc:
        # A database not created yet, a server not running: setup steps, not crashes; one
        # line that says what to do, not a traceback.
        url = settings.database_url
        if (problem := missing_database(exc, url) or unreachable_server(exc, url)) is None:
            raise
        raise SystemExit(problem) from None
{%- else %}
    asyncio.run(run_migrations_online(_settings()))
{%- endif %}
