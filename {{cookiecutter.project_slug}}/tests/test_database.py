from __future__ import annotations

import argparse
import asyncio
{% if cookiecutter.database == "postgresql" -%}
import importlib
{% endif -%}
{% if cookiecutter.auth == "jwt" -%}
import io
{% endif -%}
import logging
import shutil
{% if cookiecutter.database == "postgresql" -%}
import socket
import time
{% endif -%}
import uuid
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from alembic import command
from alembic.config import Config
from fastapi import FastAPI
from sqlalchemy import Uuid, column, {% if cookiecutter.database == "postgresql" %}make_url, {% endif %}table, text
from sqlalchemy.exc import {% if cookiecutter.database == "postgresql" %}DBAPIError, {% endif %}IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession{% if cookiecutter.database == "postgresql" %}, create_async_engine{% endif %}
from starlette.requests import Request

{% if cookiecutter.auth == "jwt" or cookiecutter.database == "postgresql" -%}
from {{ cookiecutter.project_slug }} import cli
{% endif -%}
from {{ cookiecutter.project_slug }}.db import (
    NOT_MIGRATED,
{%- if cookiecutter.database == "postgresql" %}
    ConnectionQueue,
{%- endif %}
    SessionDep,
    UTCDateTime,
    database_setup_problem,
    handle_database_error,
{%- if cookiecutter.database == "postgresql" %}
    maintenance_url,
{%- endif %}
)
from {{ cookiecutter.project_slug }}.errors import NotFoundError
from {{ cookiecutter.project_slug }}.items.models import Item
from {{ cookiecutter.project_slug }}.main import create_app
{%- if cookiecutter.auth == "jwt" or cookiecutter.database == "postgresql" %}
from {{ cookiecutter.project_slug }}.settings import get_settings
{%- endif %}
{%- if cookiecutter.database == "sqlite" and cookiecutter.auth == "jwt" %}
from tests.auth_support import add_user
{%- endif %}
from tests.support import (
    PROJECT_ROOT,
{%- if cookiecutter.auth != "none" %}
    items_without_login,
{%- endif %}
    make_client,
    make_settings,
    migrate,
    throwaway_database,
)


async def test_a_failing_commit_is_a_503_not_a_success(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing_commit(self: AsyncSession) -> None:
        raise OperationalError("COMMIT", {}, ConnectionError("connection reset"))

    with monkeypatch.context() as patch:
        patch.setattr(AsyncSession, "commit", failing_commit)
        response = await client.post("/api/v1/items", json={"name": "lost write"})

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    assert (await client.get("/api/v1/items")).json()["total"] == 0


async def test_no_request_keeps_a_database_connection(database_url: str) -> None:
    """Reads skip the commit and writes the close (see db._session): whichever way a request
    leaves its session, read or write, answered or failed, the connection is back in the pool."""
    app = create_app(make_settings(database_url=database_url))

    async def one_query(session: AsyncSession, fail: bool) -> None:
        await session.execute(text("SELECT 1"))
        if fail:
            raise NotFoundError("failed on purpose")

    @app.get("/test/read")
    async def read(session: SessionDep, fail: bool = False) -> None:
        await one_query(session, fail)

    @app.post("/test/write")
    async def write(session: SessionDep, fail: bool = False) -> None:
        await one_query(session, fail)

    async with app.router.lifespan_context(app), make_client(app) as client:
        pool = app.state.engine.pool
        for method, path in (("GET", "/test/read"), ("POST", "/test/write")):
            for fail, status in ((False, 200), (True, 404)):
                response = await client.request(method, path, params={"fail": fail})
                assert response.status_code == status
                assert pool.checkedout() == 0, (method, fail)


{%- if cookiecutter.database == "sqlite" %}


async def test_concurrent_writes_wait_for_each_other_instead_of_failing(
    database_url: str,
) -> None:
    """Each request reads, then writes, while the others do the same: none fails (SQLite's
    write lock is waited for, not refused) and no update is lost."""
    app = create_app(make_settings(database_url=database_url))

    @app.post("/test/increment")
    async def increment(session: SessionDep) -> None:
        count = await session.scalar(text("SELECT n FROM test_counter"))
        await asyncio.sleep(0.02)  # the others read meanwhile
        await session.execute(text("UPDATE test_counter SET n = :n"), {"n": count + 1})

    async with app.router.lifespan_context(app), make_client(app) as client:
        async with app.state.engine.begin() as connection:
            await connection.execute(text("CREATE TABLE test_counter (n INTEGER NOT NULL)"))
            await connection.execute(text("INSERT INTO test_counter VALUES (0)"))
        statuses = await asyncio.gather(*(client.post("/test/increment") for _ in range(8)))
        async with app.state.engine.connect() as connection:
            final = await connection.scalar(text("SELECT n FROM test_counter"))
    assert [response.status_code for response in statuses] == [200] * 8
    assert final == 8
{%- endif %}


{%- if cookiecutter.database == "sqlite" %}


async def test_a_database_file_that_cannot_be_written_or_read_is_a_503(
    database_url: str, tmp_path: Path
) -> None:
    """Read-only (or moved, or not permitted) and corrupt files are the operator's to fix:
    503 problems, not 500s."""
    path = Path(database_url.removeprefix("sqlite+aiosqlite:///"))
    read_only = f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true"
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"not a database" * 1024)
    for url, method in ((read_only, "POST"), (f"sqlite+aiosqlite:///{corrupt}", "GET")):
        app = create_app(make_settings(database_url=url))
{%- if cookiecutter.auth != "none" %}
        items_without_login(app)
{%- endif %}
        async with app.router.lifespan_context(app), make_client(app) as client:
            response = await client.request(method, "/api/v1/items", json={"name": "kept?"})
        assert response.status_code == 503, (url, response.text)
        assert response.headers["content-type"] == "application/problem+json"
{%- endif %}


async def test_a_read_that_changed_orm_objects_commits_them(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """GET sessions commit only when there is something to commit: an endpoint's changes to
    ORM objects still are."""
    created = await client.post("/api/v1/items", json={"name": "before"})
    item_id = created.json()["id"]

    @app.get("/test/rename/{item_id}")
    async def rename(item_id: uuid.UUID, session: SessionDep) -> None:
        item = await session.get(Item, item_id)
        assert item is not None
        item.name = "renamed by a GET"

    assert (await client.get(f"/test/rename/{item_id}")).status_code == 200
    read = await client.get(f"/api/v1/items/{item_id}")
    assert read.json()["name"] == "renamed by a GET"


async def test_readiness_fails_when_the_database_does_not_answer() -> None:
{%- if cookiecutter.database == "sqlite" %}
    unreachable = "sqlite+aiosqlite:////nonexistent-dir/db.sqlite"
{%- else %}
    unreachable = "postgresql+asyncpg://postgres@127.0.0.1:1/none"
{%- endif %}
    broken = create_app(make_settings(database_url=unreachable, db_timeout_seconds=1))
{%- if cookiecutter.auth != "none" %}
    items_without_login(broken)
{%- endif %}
    async with broken.router.lifespan_context(broken):
        transport = httpx.ASGITransport(app=broken)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            ready = await client.get("/health/ready")
            items = await client.get("/api/v1/items")
    assert ready.status_code == 503
    assert items.status_code == 503
    assert items.headers["content-type"] == "application/problem+json"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1), dialect=None)  # type: ignore[arg-type]


async def test_a_broken_query_is_a_500_that_logs_no_parameter_values(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "parameter-value-never-logged"

    @app.get("/test/broken-query")
    async def broken_query(session: SessionDep) -> None:
        await session.execute(text("SELEC :value"), {"value": secret})

    with caplog.at_level(logging.INFO):
        response = await client.get("/test/broken-query")

    assert response.status_code == 500  # a bug, not an outage
    assert response.headers["content-type"] == "application/problem+json"
    assert "SELEC" in caplog.text  # the statement is logged, with its traceback
    assert secret not in caplog.text
    assert secret not in response.text


async def _ready_and_items_then_ready_after_migrating(url: str) -> list[httpx.Response]:
    app = create_app(make_settings(database_url=url))
{%- if cookiecutter.auth != "none" %}
    items_without_login(app)
{%- endif %}
    async with app.router.lifespan_context(app), make_client(app) as client:
        not_ready = await client.get("/health/ready")
        items = await client.get("/api/v1/items")
        await asyncio.to_thread(migrate, url)  # alembic runs its own event loop
        return [not_ready, items, await client.get("/health/ready")]


def test_an_unmigrated_schema_is_not_ready_and_says_how_to_fix_it(tmp_path: Path) -> None:
    # A plain function: the throwaway database is created and dropped outside any event loop.
    with throwaway_database(tmp_path, migrated=False) as url:
        not_ready, items, ready = asyncio.run(_ready_and_items_then_ready_after_migrating(url))

    assert not_ready.status_code == 503
    assert items.status_code == 503
    assert items.headers["content-type"] == "application/problem+json"
    assert items.json()["detail"] == NOT_MIGRATED
    assert items.headers["retry-after"] == "5"
    assert "make migrate" in NOT_MIGRATED
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "schema": "ok"{% if cookiecutter.redis %}, "redis": "ok"{% endif %}}


def test_a_migration_of_unchanged_models_is_not_written_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `make migration m="..."` with no model change: an empty migration would be applied as if
    # it did something, so none is written. A copy of migrations/ keeps a failure's file out
    # of the project.
    scripts = tmp_path / "migrations"
    shutil.copytree(
        PROJECT_ROOT / "migrations", scripts, ignore=shutil.ignore_patterns("__pycache__")
    )
    shipped = sorted(path.name for path in (scripts / "versions").glob("*.py"))
    config = Config(PROJECT_ROOT / "alembic.ini")
    config.set_main_option("script_location", str(scripts))
    config.attributes["configure_logger"] = False
    config.cmd_opts = argparse.Namespace(autogenerate=True)  # as `alembic revision` sets it
    with throwaway_database(tmp_path) as url:
        config.attributes["database_url"] = url
        capsys.readouterr()
        command.revision(config, message="add price to items", autogenerate=True)

    assert sorted(path.name for path in (scripts / "versions").glob("*.py")) == shipped
    [line] = capsys.readouterr().out.splitlines()
    assert "the models match the database" in line
    assert 'uv run alembic revision -m "..."' in line


# A table of the user's own that refers to items (created inside the test's transaction).
ITEM_NOTES_DDL = "CREATE TABLE item_notes (item_id {{ 'uuid' if cookiecutter.database == 'postgresql' else 'CHAR(32)' }} NOT NULL REFERENCES items (id))"
item_notes = table("item_notes", column("item_id", Uuid()))


async def test_deleting_a_referenced_item_is_a_409(app: FastAPI, client: httpx.AsyncClient) -> None:
    created = await client.post("/api/v1/items", json={"name": "referenced"})
    item_id = created.json()["id"]
    async with app.state.sessionmaker() as session:
        await session.execute(text(ITEM_NOTES_DDL))
        await session.execute(item_notes.insert().values(item_id=uuid.UUID(item_id)))
        await session.commit()

    response = await client.delete(f"/api/v1/items/{item_id}")

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "still referenced" in response.json()["detail"]
    assert (await client.get(f"/api/v1/items/{item_id}")).status_code == 200


def scope(path: str) -> Request:
    return Request({"type": "http", "method": "DELETE", "path": path, "headers": []})


async def test_any_foreign_key_or_unique_violation_is_a_409() -> None:
    """For the user's own resources, without a try/except in their service."""
    messages = ["FOREIGN KEY constraint failed", "UNIQUE constraint failed: notes.name"]
    for message in messages:
        error = IntegrityError("DELETE", {}, Exception(message))
        response = await handle_database_error(scope("/api/v1/notes/1"), error)
        assert response.status_code == 409


async def test_a_column_the_database_lacks_is_a_503_that_says_to_migrate(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A model ahead of the database (a column added, not migrated yet) is the same setup
    step as a missing table, not a 500 with a traceback."""

    @app.get("/test/new-column")
    async def new_column(session: SessionDep) -> None:
        await session.execute(text("SELECT added_later FROM items"))

    response = await client.get("/test/new-column")
    assert response.status_code == 503
    assert response.json()["detail"] == NOT_MIGRATED


async def test_other_database_errors_stay_errors() -> None:
    bug = ProgrammingError("SELECT", {}, Exception("syntax error at or near"))
    with pytest.raises(ProgrammingError):
        await handle_database_error(scope("/api/v1/items"), bug)
    null = IntegrityError("INSERT", {}, Exception("NOT NULL constraint failed: items.name"))
    with pytest.raises(IntegrityError):
        await handle_database_error(scope("/api/v1/items"), null)
    assert database_setup_problem(bug, "unused") is None
    assert database_setup_problem(ValueError("no such table"), "unused") is None
{%- if cookiecutter.auth == "jwt" %}


def test_create_superuser_says_the_schema_is_not_migrated(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with throwaway_database(tmp_path, migrated=False) as url:
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("ENVIRONMENT", "test")
        monkeypatch.setattr("sys.stdin", io.StringIO("a long enough passphrase\n"))
        get_settings.cache_clear()
        try:
            assert cli.main(["create-superuser", "--email", "root@example.com"]) == 1
        finally:
            get_settings.cache_clear()
    [line] = capsys.readouterr().err.splitlines()
    assert line == f"Not created: {NOT_MIGRATED}"
{%- endif %}
{%- if cookiecutter.database == "postgresql" %}


async def _drop(database_url: str, name: str) -> None:
    engine = create_async_engine(maintenance_url(database_url), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await engine.dispose()


async def _connect(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect():
            pass
    finally:
        await engine.dispose()


def test_a_missing_database_is_named_and_create_database_creates_it(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"test_missing_{uuid.uuid4().hex[:12]}"
    url = database_url.rsplit("/", 1)[0] + f"/{name}"
    with pytest.raises(Exception) as missing:  # noqa: PT011 - any error; its message matters
        asyncio.run(_connect(url))
    problem = database_setup_problem(missing.value, url)
    assert problem is not None
    assert repr(name) in problem
    assert "make db" in problem

    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        assert cli.main(["create-database"]) == 0
        assert f"{name!r} created" in capsys.readouterr().out
        asyncio.run(_connect(url))
        assert cli.main(["create-database"]) == 0
        assert "exists already" in capsys.readouterr().out
    finally:
        get_settings.cache_clear()
        asyncio.run(_drop(database_url, name))


def test_a_server_that_refuses_the_connection_or_the_user_is_one_line(database_url: str) -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = make_url(database_url)
    closed = url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    with pytest.raises(ConnectionRefusedError) as refused:
        asyncio.run(_connect(closed))
    problem = database_setup_problem(refused.value, closed)
    assert problem is not None
    assert problem.startswith(f"Cannot reach the database server at 127.0.0.1:{port} ")
    assert "(Connection refused)" in problem

    stranger = url.set(username=f"nobody_{uuid.uuid4().hex[:12]}")
    stranger_url = stranger.render_as_string(hide_password=False)
    with pytest.raises(DBAPIError) as unknown_role:
        asyncio.run(_connect(stranger_url))
    problem = database_setup_problem(unknown_role.value, stranger_url)
    assert problem is not None
    assert f"server at {url.host}:{url.port or 5432} refused the user or password" in problem
{%- endif %}
{%- if cookiecutter.database == "postgresql" %}


async def test_reads_run_without_a_transaction_and_writes_in_one(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GET saves the BEGIN and COMMIT round trips; anything else still runs in one
    transaction. (asyncpg's Transaction.start sends BEGIN.)"""
    transaction_class = importlib.import_module("asyncpg.transaction").Transaction  # untyped
    started: list[object] = []
    start = transaction_class.start

    async def counted_start(transaction: object) -> None:
        started.append(transaction)
        await start(transaction)

    monkeypatch.setattr(transaction_class, "start", counted_start)
    app = create_app(make_settings(database_url=database_url))
{%- if cookiecutter.auth != "none" %}
    items_without_login(app)
{%- endif %}
    async with app.router.lifespan_context(app), make_client(app) as client:
        await client.get("/api/v1/items")  # a first connection: SQLAlchemy reads the server
        started.clear()
        assert (await client.get("/api/v1/items")).status_code == 200
        assert started == []
        assert (await client.delete(f"/api/v1/items/{uuid.uuid4()}")).status_code == 404
        assert len(started) == 1


async def test_requests_take_the_pool_s_connections_in_arrival_order() -> None:
    """A newcomer that asks just as a connection comes back does not overtake the requests
    already waiting (SQLAlchemy's async pool lets it)."""
    queue = ConnectionQueue(1, timeout_seconds=5)
    served: list[str] = []

    async def request(name: str) -> None:
        async with queue.turn():
            served.append(name)
            await asyncio.sleep(0)

    async with queue.turn():
        waiting = [asyncio.create_task(request(name)) for name in ("first", "second")]
        await asyncio.sleep(0.05)  # both are waiting now
    newcomer = asyncio.create_task(request("newcomer"))  # arrives as the connection returns
    await asyncio.gather(*waiting, newcomer)
    assert served == ["first", "second", "newcomer"]


async def test_a_request_that_gets_no_connection_in_time_is_shed_with_a_503(
    database_url: str,
) -> None:
    settings = make_settings(database_url=database_url, db_pool_size=1, db_pool_timeout_seconds=0.2)
    app = create_app(settings)
{%- if cookiecutter.auth != "none" %}
    items_without_login(app)
{%- endif %}
    async with app.router.lifespan_context(app), make_client(app) as client:
        async with app.state.connection_queue.turn():  # the only connection is busy
            started = time.monotonic()
            response = await client.get("/api/v1/items")
            waited = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"] == "5"
        assert 0.2 <= waited < 2
        assert (await client.get("/api/v1/items")).status_code == 200  # and served again
{%- endif %}
{%- if cookiecutter.database == "sqlite" and cookiecutter.auth == "jwt" %}


async def _add_an_owned_item(database_url: str) -> None:
    app = create_app(make_settings(database_url=database_url))
    async with app.router.lifespan_context(app):
        owner = await add_user(app, "owner@example.com")
        async with app.state.sessionmaker() as session:
            session.add(Item(owner_id=owner.id, name="kept"))
            await session.commit()


async def _item_names(database_url: str) -> list[str]:
    app = create_app(make_settings(database_url=database_url))
    async with app.router.lifespan_context(app), app.state.engine.connect() as connection:
        return list((await connection.scalars(text("SELECT name FROM items"))).all())


def test_a_migration_that_rebuilds_a_table_keeps_the_rows_that_refer_to_it(
    tmp_path: Path,
) -> None:
    """SQLite's batch mode drops and recreates a table; with foreign keys on, the drop
    deleted every row that refers to it (0004's downgrade rebuilds users: their items went)."""
    with throwaway_database(tmp_path) as url:
        asyncio.run(_add_an_owned_item(url))
        config = Config(PROJECT_ROOT / "alembic.ini")
        config.attributes["database_url"] = url
        config.attributes["configure_logger"] = False
        command.downgrade(config, "-1")
        command.upgrade(config, "head")
        assert asyncio.run(_item_names(url)) == ["kept"]
{%- endif %}
