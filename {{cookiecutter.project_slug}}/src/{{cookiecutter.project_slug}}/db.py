"""Async SQLAlchemy 2: engine, sessions, the declarative base and database error handling.

The engine lives in the application's lifespan (`database_lifespan`); each request gets
one session (`SessionDep`) that commits when the endpoint returns and rolls back on error,
before the response is sent, so a failed commit is never reported as a success.
"""

from __future__ import annotations

import asyncio
{%- if cookiecutter.database == "postgresql" %}
import errno
import os
import socket
{%- endif %}
from collections.abc import AsyncIterator{% if cookiecutter.redis %}, Awaitable, Callable{% endif %}, Sequence
from contextlib import asynccontextmanager{% if cookiecutter.database != "postgresql" %}, nullcontext{% endif %}
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import DateTime, MetaData, Row, Select, bindparam, {% if cookiecutter.database == 'sqlite' %}event, {% endif %}func, select, text
from sqlalchemy.engine import Connection, Dialect{% if cookiecutter.database == "postgresql" %}, make_url{% endif %}
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from {{ cookiecutter.project_slug }}.errors import ConflictError, problem_response
from {{ cookiecutter.project_slug }}.health import add_readiness_check
from {{ cookiecutter.project_slug }}.settings import Settings

logger = structlog.stdlib.get_logger(__name__)

# Deterministic constraint names, so migrations can drop and alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime; use datetime.now(UTC)")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


def build_engine(settings: Settings, *, pooled: bool = True) -> AsyncEngine:
    """The engine for `settings`; `pooled=False` for one-off work such as migrations.

    Bound parameters never appear in error messages or logs (`hide_parameters`): they hold
    passwords' hashes, tokens and personal data."""
    timeout = settings.db_timeout_seconds
{%- if cookiecutter.database == "postgresql" %}
    # The server cancels a statement (lock waits included) after `timeout`; the client gives
    # up a second later, for when the server cannot even say so.
    connect_args = {
        "timeout": timeout,
        "command_timeout": timeout + 1,
        "server_settings": {"statement_timeout": str(round(timeout * 1000))},
    }
    options: dict[str, Any] = {"connect_args": connect_args, "hide_parameters": True}
    if pooled:
        options |= {
            "pool_size": settings.db_pool_size,
            "max_overflow": settings.db_max_overflow,
            "pool_recycle": settings.db_pool_recycle_seconds,
            # No ping per checkout (a round trip per request): a dead connection makes its
            # statement fail (a 503), and SQLAlchemy then replaces every pooled connection.
            "pool_pre_ping": False,
            # Requests wait their turn in ConnectionQueue (below), which sheds them with a
            # 503 after this long; the pool's own wait bounds everything else (readiness).
            "pool_timeout": settings.db_pool_timeout_seconds,
        }
    else:
        options["poolclass"] = NullPool
    return create_async_engine(settings.database_url, **options)
{%- else %}
    options: dict[str, Any] = {"connect_args": {"timeout": timeout}, "hide_parameters": True}
    options |= {"pool_pre_ping": True} if pooled else {"poolclass": NullPool}
    engine = create_async_engine(settings.database_url, **options)
    _configure_sqlite(engine)
    return engine


# An execution option of the engine that GET and HEAD requests use (database_lifespan).
READS_ONLY = "reads_only"


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, foreign keys, and real transactions (pysqlite's implicit BEGIN breaks SAVEPOINTs).

    SQLite lets one transaction write at a time. One that writes takes the write lock at
    BEGIN IMMEDIATE, waiting for it up to the busy timeout (DB_TIMEOUT_SECONDS): begun
    DEFERRED, a transaction that read first could not wait, and failed at once (a 503) when
    another write had committed since its read. Reads begin DEFERRED: in WAL mode they
    never wait for the writer."""

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        reads_only = connection.get_execution_options().get(READS_ONLY, False)
        connection.exec_driver_sql("BEGIN" if reads_only else "BEGIN IMMEDIATE")
{%- endif %}


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


# --- the schema's migration state ------------------------------------------------------

NOT_MIGRATED = "The database schema is not migrated; run `make migrate` (alembic upgrade head)."


class SchemaNotMigratedError(Exception):
    def __init__(self, current: tuple[str, ...], expected: frozenset[str]) -> None:
        super().__init__(
            f"database schema at revision {', '.join(current) or 'none'}, migrations at "
            f"{', '.join(sorted(expected))}; run `make migrate` (alembic upgrade head)"
        )


def migration_heads() -> frozenset[str] | None:
    """The revisions `alembic upgrade head` leads to, from the Alembic scripts next to
    alembic.ini: in the working directory (the container's /app) or the source checkout."""
    # Alembic is imported here, at startup, not with the app: it takes most of a second.
    from alembic.config import Config  # noqa: PLC0415
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    for directory in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (directory / "alembic.ini").is_file() and (directory / "migrations").is_dir():
            config = Config(directory / "alembic.ini")
            return frozenset(ScriptDirectory.from_config(config).get_heads())
    return None


def _current_revisions(connection: Connection) -> tuple[str, ...]:
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415 - see migration_heads

    return MigrationContext.configure(connection).get_current_heads()


async def check_schema(engine: AsyncEngine, expected: frozenset[str]) -> None:
    async with engine.connect() as connection:
        current = await connection.run_sync(_current_revisions)
    if frozenset(current) != expected:
        raise SchemaNotMigratedError(current, expected)


def add_schema_readiness_check(app: FastAPI, engine: AsyncEngine) -> None:
    """Ready only once the schema is at the migrations' head (read once, at startup)."""
    expected = migration_heads()
    if expected is None:
        logger.warning("schema_check_disabled", reason="alembic.ini and migrations/ not found")
        return
    add_readiness_check(app, "schema", lambda: check_schema(engine, expected))


{%- if cookiecutter.database == "postgresql" %}


# --- the database itself (PostgreSQL): say when it is missing, create it locally ----------

MAINTENANCE_DATABASE = "postgres"  # on every PostgreSQL server; used to create the others


def maintenance_url(database_url: str) -> str:
    """The same server and credentials, on the maintenance database."""
    url = make_url(database_url).set(database=MAINTENANCE_DATABASE)
    return url.render_as_string(hide_password=False)


def missing_database(exc: BaseException, database_url: str) -> str | None:
    """One line naming the database and the command that creates it, when `exc` is the
    server saying that the database does not exist; None for any other error."""
    if not (isinstance(exc, DBAPIError) and _sqlstate(exc) == MISSING_DATABASE):
        return None
    url = make_url(database_url)
    return (
        f"Database {url.database!r} does not exist on {url.host}:{url.port or 5432}; "
        "create it with `make db` ({{ cookiecutter.project_slug }} create-database)."
    )


# PostgreSQL's invalid_authorization_specification (no such role, no pg_hba.conf entry) and
# invalid_password.
REFUSED_CREDENTIALS = frozenset({"28000", "28P01"})


def unreachable_server(exc: BaseException, database_url: str) -> str | None:
    """One line naming the server and what to check, when `exc` says that nothing answers at
    DATABASE_URL's address (not running, wrong host or port, too slow to connect) or that the
    server refused its user or password; None for any other error."""
    refused = isinstance(exc, DBAPIError) and _sqlstate(exc) in REFUSED_CREDENTIALS
    # The driver's own error, raised as is by a failed connect or wrapped by SQLAlchemy.
    reason = _connect_failure(exc.orig if isinstance(exc, DBAPIError) else exc)
    if not refused and reason is None:
        return None
    url = make_url(database_url)
    server = f"{url.host or 'localhost'}:{url.port or 5432}"
    if refused:
        return (
            f"The database server at {server} refused the user or password in DATABASE_URL; "
            "correct them (.env, or the environment)."
        )
    return (
        f"Cannot reach the database server at {server} ({reason}); start it, or correct "
        "DATABASE_URL (.env, or the environment)."
    )


NETWORK_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.ECONNRESET, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT}
)


def _connect_failure(error: BaseException | None) -> str | None:
    """Why a connection could not be made, if `error` says so."""
    if isinstance(error, TimeoutError):
        return "no answer in time"
    if isinstance(error, socket.gaierror):
        return f"unknown host: {error.strerror}"
    if not isinstance(error, OSError):
        return None
    if error.errno in NETWORK_ERRNOS:
        return os.strerror(error.errno)  # "Connection refused"
    # A host name with several addresses (localhost: ::1 and 127.0.0.1), all failing.
    return str(error) if str(error).startswith("Multiple exceptions") else None


async def create_database(database_url: str) -> bool:
    """Create the database `database_url` names, through the server's maintenance database;
    False when it exists already."""
    name = make_url(database_url).database
    if not name:
        raise ValueError("DATABASE_URL names no database")
    engine = create_async_engine(
        maintenance_url(database_url), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        async with engine.connect() as connection:
            exists = await connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
            if exists:
                return False
            quoted = connection.dialect.identifier_preparer.quote_identifier(name)
            await connection.execute(text(f"CREATE DATABASE {quoted}"))
            return True
    finally:
        await engine.dispose()
{%- endif %}


@asynccontextmanager
async def database_lifespan(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    engine = build_engine(settings)
    app.state.engine = engine
    app.state.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    # GET and HEAD change nothing (HTTP's safe methods), nor do the readiness checks:
{%- if cookiecutter.database == "postgresql" %}
    # they run each statement on its own, without the BEGIN and COMMIT round trips of a
    # transaction.
    reads = engine.execution_options(isolation_level="AUTOCOMMIT")
{%- else %}
    # they never wait for SQLite's write lock.
    reads = engine.execution_options(**{READS_ONLY: True})
{%- endif %}
    app.state.read_sessionmaker = async_sessionmaker(reads, expire_on_commit=False)
{%- if cookiecutter.database == "postgresql" %}
    app.state.connection_queue = ConnectionQueue(
        settings.db_pool_size + settings.db_max_overflow, settings.db_pool_timeout_seconds
    )
{%- endif %}
    add_readiness_check(app, "database", lambda: ping(reads))
    add_schema_readiness_check(app, reads)
    try:
        yield
    finally:
        await engine.dispose()
{%- if cookiecutter.auth == "jwt" %}


@asynccontextmanager
async def standalone_session(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session outside the application (a command, a script), on an engine of its own that
    is closed afterwards. Nothing is committed unless the caller commits."""
    engine = build_engine(settings, pooled=False)
    try:
        async with async_sessionmaker(engine, expire_on_commit=False)() as session:
            yield session
    finally:
        await engine.dispose()
{%- endif %}


{%- if cookiecutter.database == "postgresql" %}


class ConnectionQueue:
    """Requests take their turn at the pool's connections in arrival order.

    SQLAlchemy's async pool gives a returned connection to whoever asks next, a newcomer
    included, and sends the requests already waiting to the back of the line: under load a
    few waited many times as long as the rest (create at 32 concurrent requests: p99 8x the
    p50, and some 503s). This queue, as long as the pool, is first come first served; a
    request whose turn has not come within DB_POOL_TIMEOUT_SECONDS is shed with a 503."""

    def __init__(self, connections: int, timeout_seconds: float) -> None:
        self._turns = asyncio.Semaphore(connections)  # FIFO: newcomers never overtake
        self._timeout_seconds = timeout_seconds

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        if self._turns.locked():
            try:
                async with asyncio.timeout(self._timeout_seconds):
                    await self._turns.acquire()
            except TimeoutError:
                raise PoolTimeoutError("no database connection was free in time") from None
        else:
            await self._turns.acquire()  # free and nobody waiting: no wait, so no timer
        try:
            yield
        finally:
            self._turns.release()
{%- endif %}


SAFE_METHODS = frozenset({"GET", "HEAD"})


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    state = request.app.state
    reads = request.method in SAFE_METHODS
    sessionmaker: async_sessionmaker[AsyncSession] = (
        state.read_sessionmaker if reads else state.sessionmaker
    )
    # No awaited session call that has nothing to do: each runs in a greenlet of its own,
    # with a fresh frame stack that the kernel maps and unmaps (one call fewer: 2 to 3 %
    # fewer instructions per request). A read has nothing to commit unless the endpoint
    # changed ORM objects; a commit or rollback returns the connection, so only a session
    # still in its transaction has one to close.
{%- if cookiecutter.database == "postgresql" %}
    async with state.connection_queue.turn():
{%- else %}
    async with nullcontext():  # the PostgreSQL variant waits its turn at the pool here
{%- endif %}
        session = sessionmaker()
        try:
            yield session
            if not reads or session.new or session.dirty or session.deleted:
                await session.commit()
        except BaseException:
            await session.rollback()
{%- if cookiecutter.redis %}
            session.info.pop(AFTER_COMMIT, None)  # never run: their changes were rolled back
{%- endif %}
            raise
        finally:
            if session.in_transaction():
                await asyncio.shield(session.close())  # cancelled or not: the connection returns
{%- if cookiecutter.redis %}
        await run_after_commit(session)


# session.info key: what to run once the request's transaction has committed.
AFTER_COMMIT = "after_commit"


def after_commit(session: AsyncSession, action: Callable[[], Awaitable[None]]) -> None:
    """Run `action` once the request's transaction has committed (before the response is
    sent); never if it rolls back. For what must not see uncommitted rows."""
    session.info.setdefault(AFTER_COMMIT, []).append(action)


async def run_after_commit(session: AsyncSession) -> None:
    """Run what `after_commit` registered: for the owner of the session (a request, a task),
    once its transaction has committed."""
    for action in session.info.pop(AFTER_COMMIT, []):
        await action()
{%- endif %}


# scope="function": commit/rollback run before the response is sent, not after.
SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]

# Query parameters of every list endpoint. The offset is bounded so that a huge one is a
# 422, not a database integer overflow.
MAX_PAGE_SIZE = 100
MAX_OFFSET = 2**31 - 1
PageLimit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
PageOffset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


class PagedQuery:
    """A list query's pages, built once (at import) so that a request only binds values:
    building and hashing a statement per request costs more CPU than running it.

    One statement per page: each row carries the total as a window count (its last column,
    `total`). Only a page past the end, which has no row to carry it, costs a second one."""

    def __init__(self, query: Select[Any]) -> None:
        self.page = (
            query.add_columns(func.count().over().label("total"))
            .limit(bindparam("page_limit"))
            .offset(bindparam("page_offset"))
        )
        self.total = select(func.count()).select_from(query.order_by(None).subquery())


async def fetch_page(
    session: AsyncSession,
    paged: PagedQuery,
    params: dict[str, Any] | None = None,
    *,
    limit: int,
    offset: int,
) -> tuple[Sequence[Row[Any]], int]:
    """One page of `paged`'s rows (in the order its query sets) and how many rows it has in
    all; `params` holds the values of the query's own bound parameters."""
    params = params or {}
    page = await session.execute(paged.page, params | {"page_limit": limit, "page_offset": offset})
    rows = page.all()
    if rows:
        return rows, rows[0].total
    if offset == 0:
        return [], 0
    return [], await session.scalar(paged.total, params) or 0


@asynccontextmanager
async def conflict_as_409(session: AsyncSession, conflict: str) -> AsyncIterator[None]:
    """A unique constraint violated in the block is a 409 with `conflict` as its detail
    (and the transaction is rolled back), not a 500."""
    try:
        yield
    except IntegrityError:
        await session.rollback()
        raise ConflictError(conflict) from None


async def flush_or_conflict(session: AsyncSession, conflict: str) -> None:
    """Flush now, so that a unique constraint violated by the pending changes is a 409
    (with `conflict` as its detail) here, not a failed commit later."""
    async with conflict_as_409(session, conflict):
        await session.flush()


# Errors that mean "the database did not answer", as opposed to a bug in a query.
DATABASE_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
    ConnectionError,
    asyncio.TimeoutError,
)
# Driver error codes that mean "unavailable or too slow, retry later", as opposed to a bug.
# PostgreSQL SQLSTATEs (or their classes): connection exceptions, insufficient resources
# (too many connections), operator intervention (query canceled by statement_timeout,
# shutdown), lock not available, serialization failure and deadlock (not retried here).
# SQLite result codes: busy or locked past the timeout, cannot open, I/O error, disk full,
# and a file that cannot be written (read-only, moved, no permission) or read (corrupt, not
# a database): the operator's to fix, not a bug in the request.
UNAVAILABLE_CODES = (
    *("08", "53", "57", "55P03", "40001", "40P01"),
    *("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_FULL"),
    *("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_CORRUPT", "SQLITE_NOTADB"),
)


def error_code(error: BaseException) -> str | None:
    """The driver's code for a database error raised through SQLAlchemy, if it gives one."""
    original = getattr(error, "orig", None)
    code = getattr(original, "sqlstate", None) or getattr(original, "sqlite_errorname", None)
    return code if isinstance(code, str) else None


def is_database_unavailable(error: BaseException) -> bool:
    code = error_code(error)
    if code is not None:
        return code.startswith(UNAVAILABLE_CODES)
    # No code: a lost connection, a pool or driver timeout.
    return isinstance(error, DATABASE_UNAVAILABLE_ERRORS)


# --- errors that name their cause: a schema not migrated, a row still referenced --------

MISSING_DATABASE = "3D000"  # PostgreSQL's invalid_catalog_name


def _sqlstate(exc: DBAPIError) -> str | None:
    state = getattr(exc.orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def is_not_migrated(exc: DBAPIError) -> bool:
    """A table or a column that the models have and the database lacks: PostgreSQL's
    undefined_table (42P01) and undefined_column (42703), SQLite's "no such table" and "no
    such column"."""
    message = str(exc.orig)
    return _sqlstate(exc) in {"42P01", "42703"} or any(
        missing in message for missing in ("no such table", "no such column")
    )


def database_setup_problem(exc: BaseException, database_url: str) -> str | None:
    """What to do when `exc` says that the database is not set up yet (not created, not
    migrated{% if cookiecutter.database == "postgresql" %}, its server not running or refusing the credentials{% endif %}); None for any other error."""
{%- if cookiecutter.database == "postgresql" %}
    if (problem := unreachable_server(exc, database_url)) is not None:
        return problem
{%- endif %}
    if not isinstance(exc, DBAPIError):
        return None
    if is_not_migrated(exc):
        return NOT_MIGRATED
{%- if cookiecutter.database == "postgresql" %}
    return missing_database(exc, database_url)
{%- else %}
    del database_url  # a SQLite file is created on first use
    return None
{%- endif %}


def is_conflict(exc: IntegrityError) -> bool:
    """A unique (23505) or foreign key (23503) violation, on PostgreSQL or SQLite."""
    message = str(exc.orig)
    return _sqlstate(exc) in {"23503", "23505"} or (
        "FOREIGN KEY constraint failed" in message or "UNIQUE constraint failed" in message
    )


async def handle_database_error(request: Request, exc: Exception) -> JSONResponse:
    """A missing table or column is a 503 that says how to fix it; a violated unique or
    foreign key constraint (deleting a row that another one refers to) is a 409; an
    unavailable, too slow or missing database is a 503; anything else is a bug, answered
    500 by the request middleware. Logs carry the error class and code only: messages can
    quote data."""
    request_id = getattr(request.state, "request_id", None)
    code = error_code(exc)
    if isinstance(exc, DBAPIError) and is_not_migrated(exc):
        logger.error("schema_not_migrated", error=type(exc).__name__, code=code)
        return problem_response(
            503,
            NOT_MIGRATED,
            instance=request.url.path,
            request_id=request_id,
            headers={"Retry-After": "5"},  # a deploy's migration job is about to run
        )
    if isinstance(exc, IntegrityError) and is_conflict(exc):
        logger.info("integrity_conflict", error=type(exc).__name__, code=code)
        return problem_response(
            409,
            "The change conflicts with other data (a duplicate, or a row still referenced).",
            instance=request.url.path,
            request_id=request_id,
        )
    if not (is_database_unavailable(exc) or code == MISSING_DATABASE):
        raise exc  # a bug: the request middleware answers 500 and reports it
    logger.warning("database_unavailable", error=type(exc).__name__, code=code)
    return problem_response(
        503,
        "The database is unavailable; retry later.",
        instance=request.url.path,
        request_id=request_id,
        headers={"Retry-After": "5"},
    )


def install_database_error_handlers(app: FastAPI) -> None:
    # Every DBAPIError, to look at its SQLSTATE (a canceled statement is neither of the others).
    errors: tuple[type[Exception], ...] = (DBAPIError, *DATABASE_UNAVAILABLE_ERRORS)
    for error in errors:
        app.add_exception_handler(error, handle_database_error)
