"""Structured logging: JSON lines in production, readable lines in development.

structlog renders every record, including those of uvicorn and other libraries that use
the standard `logging` module, so one line format reaches the log collector. Context
bound with `structlog.contextvars` (the request id) appears on every line of a request.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog
from structlog.types import EventDict, Processor

from {{ cookiecutter.project_slug }}.settings import Settings
{%- if cookiecutter.tracing %}
from {{ cookiecutter.project_slug }}.tracing import add_trace_context
{%- endif %}

HANDLER_NAME = "structlog"
# Libraries that log query parameters or task arguments at DEBUG (addresses, password
# hashes, links with tokens): they stay at INFO or above, whatever LOG_LEVEL says.
# (SQLAlchemy keeps its own loggers at WARNING; INFO there would log every statement.)
LOUD_AT_DEBUG = ("aiosqlite", "asyncpg", "taskiq")
{%- if cookiecutter.database != "none" %}
# Alembic narrates at INFO each look at the schema's revision, which the service takes at
# startup and on every readiness probe ("Context impl PostgresqlImpl.", "Will assume
# transactional DDL.": two lines per probe, per replica). `make migrate` keeps its lines:
# the alembic command logs through alembic.ini, not through this module.
QUIET_IN_THE_SERVICE = ("alembic",)
{%- endif %}

# Keys whose values must never reach a log line or an error report (sentry.py uses it too).
REDACTED_KEYS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "set_cookie",
        "password",
        "new_password",
        "current_password",
        "hashed_password",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "secret",
        "secret_key",
        "client_secret",
        "api_key",
        "apikey",
        "x-api-key",
        "database_url",
        "sentry_dsn",
        "dsn",
    }
)
REDACTED = "[REDACTED]"
# Secrets that hide inside free text (an error message, a URL): a URL's password, an argon2
# hash, a JWT, a bearer token.
SECRET_IN_TEXT = re.compile(
    r"(?P<url_user>\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s]+@"
    r"|\$argon2(?:id|i|d)\$[\w$=,+/.-]+"
    r"|\beyJ[\w-]*\.[\w-]*\.[\w-]*"
    r"|(?i:bearer)\s+[\w.~+/-]+=*"
)


def _replace_secret(match: re.Match[str]) -> str:
    return f"{match['url_user']}{REDACTED}@" if match["url_user"] else REDACTED


def redact_text(text: str) -> str:
    """`text` with every secret that SECRET_IN_TEXT recognises replaced."""
    return SECRET_IN_TEXT.sub(_replace_secret, text)


def redact_secrets(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    # Copies of the message that some libraries attach to records are noise in logs.
    event_dict.pop("color_message", None)
    if event_dict.get("message") == event_dict.get("event"):
        del event_dict["message"]
    for key, value in event_dict.items():
        if key.lower() in REDACTED_KEYS:
            event_dict[key] = REDACTED
        elif isinstance(value, str):
            event_dict[key] = redact_text(value)
    return event_dict


def configure_logging(settings: Settings) -> None:
    """Configure structlog and route the standard library's loggers through it. Idempotent."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
{%- if cookiecutter.tracing %}
        add_trace_context,
{%- endif %}
    ]
    # Tracebacks become plain text before redaction, in both formats: redaction then sees
    # them, and the console never prints a frame's local variables (a password, say).
    shared += [structlog.processors.format_exc_info, redact_secrets]
    renderer: Processor
    if settings.resolved_log_format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer()

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    # No record attribute that no line shows: the caller's file and line (a walk up the
    # stack), thread and process names cost CPU on every line, the access line of
    # every request included (the logging HOWTO's "Optimization" section).
    logging._srcfile = None  # the documented switch, private name and all
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    # Replace only our own handler, so repeated calls (one app per test) and pytest's
    # log capture keep working.
    root.handlers = [h for h in root.handlers if h.get_name() != HANDLER_NAME] + [handler]
    root.setLevel(settings.log_level)
    for name in LOUD_AT_DEBUG:
        # Never lower a level a library set for itself.
        library_logger = logging.getLogger(name)
        library_logger.setLevel(logging.NOTSET)
        library_logger.setLevel(max(logging.INFO, library_logger.getEffectiveLevel()))
{%- if cookiecutter.database != "none" %}
    for name in QUIET_IN_THE_SERVICE:
        logging.getLogger(name).setLevel(logging.WARNING)
{%- endif %}

    # uvicorn's own handlers would print a second, differently formatted line; its access
    # log is replaced by the application's access line (see middleware.py).
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers = []
        uvicorn_logger.propagate = True
    access_logger = logging.getLogger("uvicorn.access")
    access_logger.handlers = []
    access_logger.propagate = False
