from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from {{ cookiecutter.project_slug }}.settings import (
    EXAMPLE_SECRET_KEY,
    ConfigurationError,
    Settings,
    load_settings,
)
from tests.support import TEST_SECRET_KEY, make_settings


def test_production_refuses_the_example_secret() -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY is the example value"):
        make_settings(environment="production", secret_key=EXAMPLE_SECRET_KEY)


def test_production_refuses_a_short_secret() -> None:
    with pytest.raises(ValidationError, match="production needs at least 32"):
        make_settings(environment="production", secret_key="too-short")


def test_production_accepts_a_long_random_secret() -> None:
    settings = make_settings(environment="production", secret_key=TEST_SECRET_KEY)
    assert settings.resolved_log_format == "json"


def test_development_tolerates_the_example_secret() -> None:
    settings = make_settings(environment="development", secret_key=EXAMPLE_SECRET_KEY)
    assert settings.resolved_log_format == "console"


def test_log_format_can_be_forced() -> None:
    assert make_settings(environment="production", log_format="console").resolved_log_format == (
        "console"
    )


def test_cors_origins_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    assert make_settings().cors_origins == ["https://a.example", "https://b.example"]


def test_invalid_configuration_stops_startup_with_a_readable_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", EXAMPLE_SECRET_KEY)
    monkeypatch.setenv("PORT", "not-a-port")
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    message = str(raised.value.code)
    assert message.startswith("Invalid configuration:")
    assert "PORT:" in message
    assert "Traceback" not in message


def test_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    settings = Settings()
    assert (settings.web_concurrency, settings.log_level) == (4, "WARNING")
{%- if cookiecutter.database != "none" %}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "is not a database URL"),
        ("mysql+aiomysql://db/app", "driver"),
    ],
)
def test_a_bad_database_url_is_refused(url: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make_settings(database_url=url)
{%- endif %}


@pytest.mark.parametrize(
    ("environment", "docs_enabled", "expected"),
    [
        ("production", None, False),
        ("development", None, True),
        ("test", None, True),
        ("production", True, True),
        ("development", False, False),
    ],
)
def test_docs_are_decided_by_the_environment_unless_set(
    environment: str, docs_enabled: bool | None, expected: bool
) -> None:
    settings = make_settings().model_copy(
        update={"environment": environment, "docs_enabled": docs_enabled}
    )
    assert settings.resolved_docs_enabled is expected
{%- if cookiecutter.metrics %}


def test_metrics_port_must_differ_from_the_service_port() -> None:
    with pytest.raises(ValidationError, match="METRICS_PORT must differ from PORT"):
        make_settings(port=9100, metrics_port=9100)
{%- endif %}
