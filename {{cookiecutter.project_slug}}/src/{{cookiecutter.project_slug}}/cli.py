"""Command line: `{{ cookiecutter.project_slug }} serve` runs the production server, `{{ cookiecutter.project_slug }} dev` the
development one{% if cookiecutter.auth == "jwt" %};
`{{ cookiecutter.project_slug }} create-superuser --email ...` creates the first administrator{% endif %}{% if cookiecutter.tasks != "none" %};
`{{ cookiecutter.project_slug }} worker` runs background tasks, `{{ cookiecutter.project_slug }} scheduler` sends the periodic ones{% endif %}."""

from __future__ import annotations

import argparse
{%- if cookiecutter.auth == "jwt" or cookiecutter.database == "postgresql" %}
import asyncio
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}
import getpass
{%- endif %}
{%- if cookiecutter.metrics %}
import os
{%- endif %}
import signal
import sys
{%- if cookiecutter.metrics %}
import tempfile
{%- endif %}
from types import FrameType

import uvicorn
{%- if cookiecutter.auth == "jwt" %}
from pydantic import TypeAdapter, ValidationError
{%- endif %}
{%- if cookiecutter.auth == "jwt" or cookiecutter.database == "postgresql" %}
from sqlalchemy.exc import DBAPIError
{%- endif %}

{% if cookiecutter.auth == "jwt" -%}
from {{ cookiecutter.project_slug }}.auth.passwords import (
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    WeakPasswordError,
    check_password_strength,
)
from {{ cookiecutter.project_slug }}.db import (
    DATABASE_UNAVAILABLE_ERRORS,
{%- if cookiecutter.database == "postgresql" %}
    create_database,
{%- endif %}
    database_setup_problem,
    standalone_session,
{%- if cookiecutter.database == "postgresql" %}
    unreachable_server,
{%- endif %}
)
{% elif cookiecutter.database == "postgresql" -%}
from {{ cookiecutter.project_slug }}.db import create_database, unreachable_server
{% endif -%}
{% if cookiecutter.auth == "jwt" -%}
from {{ cookiecutter.project_slug }}.errors import ConflictError
{% endif -%}
from {{ cookiecutter.project_slug }}.logging import configure_logging
from {{ cookiecutter.project_slug }}.settings import Settings, get_settings
{%- if cookiecutter.auth == "jwt" %}
from {{ cookiecutter.project_slug }}.users import service as users
from {{ cookiecutter.project_slug }}.users.schemas import Email, UserCreate
{%- endif %}


{%- if cookiecutter.auth == "jwt" %}

# Not answering (OSError: a failed connect), or answering that the database or its tables
# do not exist yet.
DATABASE_ERRORS: tuple[type[Exception], ...] = (*DATABASE_UNAVAILABLE_ERRORS, DBAPIError, OSError)
{%- endif %}


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve() -> int:
    """uvicorn with explicit production flags, all taken from settings{% if cookiecutter.metrics %}, and the metrics
    on their own port{% endif %}."""
    settings = get_settings()
    configure_logging(settings)
    # uvicorn drains in-flight requests on SIGTERM, then re-raises the signal; this handler
    # turns that into exit code 0, which orchestrators read as a clean stop.
    signal.signal(signal.SIGTERM, _exit_cleanly)
{%- if cookiecutter.metrics %}
    with tempfile.TemporaryDirectory(prefix="prometheus-") as directory:
        # Always multiprocess mode, in a fresh directory removed on exit. Set before
        # prometheus-client is first imported (it picks its storage then): here, where a
        # single worker runs, and in every worker process uvicorn starts.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        from {{ cookiecutter.project_slug }}.metrics import metrics_server  # noqa: PLC0415 - see above

        with metrics_server(settings.host, settings.metrics_port):
            _run_uvicorn(settings)
{%- else %}
    _run_uvicorn(settings)
{%- endif %}
    return 0


def _run_uvicorn(settings: Settings) -> None:
    uvicorn.run(
        "{{ cookiecutter.project_slug }}.main:app",
        host=settings.host,
        port=settings.port,
        workers=settings.web_concurrency,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=settings.graceful_shutdown_timeout,
        # With WEB_CONCURRENCY > 1 the supervisor kills a worker that has not answered its
        # health check in time; importing the app can take longer than uvicorn's 5 s on a
        # busy or CPU-limited host, which would kill and restart workers without end.
        timeout_worker_healthcheck=30,
        access_log=False,  # the application writes its own access line
        log_config=None,  # keep the structlog configuration
        server_header=False,
    )


def dev() -> int:
    """uvicorn with reload, on the settings' HOST and PORT. Logging is configured here, in
    the reloader process, so that its lines have the same format as the server's."""
    settings = get_settings()
    configure_logging(settings)
    uvicorn.run(
        "{{ cookiecutter.project_slug }}.main:app",
        host=settings.host,
        port=settings.port,
        reload=True,
        reload_dirs=["src"],
        access_log=False,  # the application writes its own access line
        log_config=None,  # keep the structlog configuration
    )
    return 0


{%- if cookiecutter.auth == "jwt" %}


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{error['loc'][0]}: {error['msg']}" for error in exc.errors())


def ask_for_superuser(email: str) -> UserCreate:
    """On a terminal: the password rules first, then the password twice, asked again until
    it is accepted. Otherwise the first line of stdin, once (for scripts). Raises
    ValidationError for an answer that cannot be asked again (the email, or stdin's line)."""
    if not sys.stdin.isatty():
        return UserCreate(email=email, password=sys.stdin.readline().rstrip("\n"))
    TypeAdapter(Email).validate_python(email)  # before asking anything
    print(  # noqa: T201
        f"Choose a password of {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters "
        "(a few words make a good one). It is not shown as you type."
    )
    while True:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password (again): ") != password:
            print("The passwords differ. Try again.", file=sys.stderr)  # noqa: T201
            continue
        try:
            data = UserCreate(email=email, password=password)
            asyncio.run(check_password_strength(data.password, email=data.email))
        except ValidationError as exc:
            print(f"Refused: {_problems(exc)}. Try again.", file=sys.stderr)  # noqa: T201
        except WeakPasswordError as exc:
            print(f"Refused: {exc.detail} Try again.", file=sys.stderr)  # noqa: T201
        else:
            return data


async def _create_superuser(settings: Settings, data: UserCreate) -> None:
    async with standalone_session(settings) as session, session.begin():
        # Created by the operator, who vouches for the address: verified.
        await users.create_user(
            session, data.email, data.password, is_superuser=True, is_verified=True
        )


def create_superuser(email: str) -> int:
    settings = get_settings()
    try:
        data = ask_for_superuser(email)
    except ValidationError as exc:
        print(f"Not created: {_problems(exc)}", file=sys.stderr)  # noqa: T201
        return 1
    try:
        asyncio.run(_create_superuser(settings, data))
    except (ConflictError, WeakPasswordError) as exc:
        print(f"Not created: {exc.detail}", file=sys.stderr)  # noqa: T201
        return 1
    except DATABASE_ERRORS as exc:
        # Not created yet, not migrated yet, or not answering: one line that says which.
        problem = database_setup_problem(exc, settings.database_url)
        if problem is None and not isinstance(exc, DATABASE_UNAVAILABLE_ERRORS):
            raise
        print(  # noqa: T201
            f"Not created: {problem or f'the database is unavailable ({exc!r}).'}",
            file=sys.stderr,
        )
        return 1
    print(f"Superuser {data.email} created.")  # noqa: T201
    return 0
{%- endif %}


{%- if cookiecutter.database == "postgresql" %}


def create_database_command() -> int:
    """Create the database DATABASE_URL names (for local development; in production the
    database comes with the server you are given)."""
    settings = get_settings()
    name = settings.database_url.rsplit("/", 1)[-1].split("?", 1)[0]
    try:
        created = asyncio.run(create_database(settings.database_url))
    except (DBAPIError, OSError) as exc:
        if (problem := unreachable_server(exc, settings.database_url)) is None:
            raise
        print(f"Not created: {problem}", file=sys.stderr)  # noqa: T201
        return 1
    print(f"Database {name!r} {'created' if created else 'exists already'}.")  # noqa: T201
    return 0
{%- endif %}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="{{ cookiecutter.project_slug }}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the production server (settings from the environment)")
    commands.add_parser("dev", help="run the development server with reload (HOST, PORT)")
{%- if cookiecutter.auth == "jwt" %}
    superuser = commands.add_parser(
        "create-superuser",
        help="create an administrator account (password asked for until accepted, or read "
        "from the first line of stdin)",
    )
    superuser.add_argument("--email", required=True)
{%- endif %}
{%- if cookiecutter.database == "postgresql" %}
    commands.add_parser("create-database", help="create the database DATABASE_URL names")
{%- endif %}
{%- if cookiecutter.tasks != "none" %}
    commands.add_parser("worker", help="run background tasks until SIGTERM")
    commands.add_parser("scheduler", help="send the periodic tasks at their times (run one)")
{%- endif %}
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve()
    if args.command == "dev":
        return dev()
{%- if cookiecutter.tasks != "none" %}
    if args.command in {"worker", "scheduler"}:
        # Imported here: the worker imports the application, which `serve` must not do
        # before it has prepared the metrics directory.
        from {{ cookiecutter.project_slug }}.tasks.worker import run_scheduler, run_worker  # noqa: PLC0415

        return run_worker() if args.command == "worker" else run_scheduler()
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}
    if args.command == "create-superuser":
        return create_superuser(args.email)
{%- endif %}
{%- if cookiecutter.database == "postgresql" %}
    if args.command == "create-database":
        return create_database_command()
{%- endif %}
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
