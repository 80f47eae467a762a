from __future__ import annotations

import json
import logging

import pytest
import structlog

from {{ cookiecutter.project_slug }}.logging import LOUD_AT_DEBUG, configure_logging
from tests.support import make_settings


def test_production_logs_are_json_lines_with_context(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(make_settings(log_format="json"))
    with structlog.contextvars.bound_contextvars(request_id="abc123"):
        structlog.stdlib.get_logger("test").info("order_placed", order=7)
        logging.getLogger("uvicorn.error").info("from the standard library")

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    ours = next(line for line in lines if line["event"] == "order_placed")
    assert ours["request_id"] == "abc123"
    assert ours["order"] == 7
    assert ours["level"] == "info"
    assert "timestamp" in ours
    foreign = next(line for line in lines if line["event"] == "from the standard library")
    assert foreign["logger"] == "uvicorn.error"
    assert foreign["request_id"] == "abc123"


def test_debug_level_keeps_query_parameters_and_task_arguments_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(make_settings(log_format="json", log_level="DEBUG"))
    structlog.stdlib.get_logger("test").debug("ours_at_debug")
    for name in LOUD_AT_DEBUG:  # each would print parameters such as an email address
        logging.getLogger(name).debug("parameters ('someone@example.com',)")
    out = capsys.readouterr().out
    assert "ours_at_debug" in out
    assert "someone@example.com" not in out
{%- if cookiecutter.database != "none" %}


@pytest.mark.parametrize("level", ["DEBUG", "INFO", "WARNING"])
def test_sql_statements_are_not_logged_at_any_level(level: str) -> None:
    """SQLAlchemy logs every statement when its engine logger allows INFO (echo)."""
    configure_logging(make_settings(log_level=level))
    assert not logging.getLogger("sqlalchemy.engine.Engine").isEnabledFor(logging.INFO)
{%- endif %}


def test_a_library_logger_follows_a_raised_level(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(make_settings(log_format="json", log_level="DEBUG"))
    configure_logging(make_settings(log_format="json", log_level="WARNING"))  # idempotent
    logging.getLogger("aiosqlite").info("below the configured level")
    assert "below the configured level" not in capsys.readouterr().out


def test_secrets_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(make_settings(log_format="json"))
    structlog.stdlib.get_logger("test").info(
        "login", password="hunter2", Authorization="Bearer abc", user="ann"
    )
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert line["password"] == line["Authorization"] == "[REDACTED]"
    assert line["user"] == "ann"


def test_secrets_inside_text_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(make_settings(log_format="json"))
    structlog.stdlib.get_logger("test").warning(
        "query failed",
        error="[parameters: ('ann@example.com', '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA')]",
        url="postgresql+asyncpg://app:db-password@db:5432/app",
        header="Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
    )
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert line["error"] == "[parameters: ('ann@example.com', '[REDACTED]')]"
    assert line["url"] == "postgresql+asyncpg://app:[REDACTED]@db:5432/app"
    assert line["header"] == "[REDACTED]"


def test_development_logs_are_readable(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(make_settings(log_format="console"))
    structlog.stdlib.get_logger("test").warning("disk_low", free_mb=12)
    out = capsys.readouterr().out
    assert "disk_low" in out
    assert "free_mb" in out
    assert not out.lstrip().startswith("{")


def test_development_tracebacks_show_no_local_variables_and_no_secrets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(make_settings(log_format="console"))
    password = "local-variable-never-printed"
    try:
        raise RuntimeError("postgresql+asyncpg://app:db-password@db:5432/app unreachable")
    except RuntimeError:
        structlog.stdlib.get_logger("test").exception("crashed", attempt=password[:0])
    out = capsys.readouterr().out
    assert "RuntimeError" in out
    assert "test_development_tracebacks_show_no_local_variables" in out  # the frame is there
    assert password not in out
    assert "db-password" not in out
