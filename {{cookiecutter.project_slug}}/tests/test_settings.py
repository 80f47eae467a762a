from __future__ import annotations

import re
{% if cookiecutter.auth == "jwt" -%}
import secrets
from collections.abc import Callable
{% endif -%}
from pathlib import Path

import pytest
{%- if cookiecutter.auth != "none" or cookiecutter.database != "none" or cookiecutter.metrics %}
from pydantic import ValidationError
{%- endif %}

from {{ cookiecutter.project_slug }}.settings import (
{%- if cookiecutter.auth == "jwt" %}
    EXAMPLE_SECRET_KEY,
{%- endif %}
    ConfigurationError,
    Settings,
    load_settings,
)
from tests.support import {% if cookiecutter.auth == "jwt" %}PRODUCTION_MAIL, TEST_SECRET_KEY, {% endif %}make_settings


def test_without_an_environment_a_process_is_production(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.delenv("ENVIRONMENT")
{%- if cookiecutter.auth == "jwt" %}
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("SMTP_HOST", PRODUCTION_MAIL["smtp_host"])
    monkeypatch.setenv("PUBLIC_BASE_URL", PRODUCTION_MAIL["public_base_url"])
{%- elif cookiecutter.auth == "oidc" %}
    monkeypatch.setenv("OIDC_ISSUER", "https://sso.example.com")
    monkeypatch.setenv("OIDC_AUDIENCE", "api")
{%- endif %}
    settings = Settings()
    assert settings.environment == "production"
    assert settings.resolved_log_format == "json"
{%- if cookiecutter.auth == "oidc" %}


@pytest.mark.parametrize(
    "issuer", ["https://", "https:///", "https://:443", "https://[::1", "http://sso.example.test"]
)
def test_production_needs_an_https_issuer_with_a_host(issuer: str) -> None:
    expected = "OIDC_ISSUER must be an https:// URL with a host in production"
    with pytest.raises(ValidationError, match=re.escape(expected)):
        make_settings(environment="production", oidc_issuer=issuer, oidc_audience="api")
    for good in ("https://sso.example.test", "https://sso.example.test/realms/main"):
        assert make_settings(environment="production", oidc_issuer=good, oidc_audience="api")
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}


def test_without_settings_startup_refuses_the_example_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env, no ENVIRONMENT, no SECRET_KEY: production
    monkeypatch.delenv("ENVIRONMENT")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    message = str(raised.value.code)
    assert message.startswith("Invalid configuration:")
    assert "SECRET_KEY is the public example value" in message
    assert "secrets.token_urlsafe(48)" in message


@pytest.mark.parametrize("environment", ["production", "development"])
def test_the_example_key_is_refused_outside_tests(environment: str) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY is the public example value"):
        make_settings(environment=environment, secret_key=EXAMPLE_SECRET_KEY)


def test_tests_may_use_the_example_key() -> None:
    assert make_settings(environment="test", secret_key=EXAMPLE_SECRET_KEY).environment == "test"


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("too-short", "is 9 characters; at least 32"),
        ("x" * 64, "repeats one character"),
        (" " * 40, "whitespace only"),
        ("\t \n" * 20, "whitespace only"),
        ("ab" * 32, "too predictable"),
        ("0123456789" * 3 + "01", "too predictable"),
        ("password" * 5, "too predictable"),
        # Varied enough characters, but runs a guesser tries first:
        ("abcdefghijklmnopqrstuvwxyz012345", "too predictable"),
        ("qwertyuiopasdfghjklzxcvbnm123456", "too predictable"),
        ("0123456789abcdef0123456789abcdef", "too predictable"),
        ("ZYXWVUTSRQPONMLKJIHGFEDCBA987654", "too predictable"),
        # Made-up phrases, however long:
        ("change-me-to-a-long-random-string-please", "is words joined by"),
        ("my-super-secret-key-for-production-2024", "is words joined by"),
        ("My_Super_Secret_Key_For_PRODUCTION_2024", "is words joined by"),
        ("correct horse battery staple and more", "is words joined by"),
    ],
)
@pytest.mark.parametrize("environment", ["production", "development"])
def test_weak_keys_are_refused_with_how_to_make_a_good_one(
    environment: str, secret: str, reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason) as raised:
        make_settings(environment=environment, secret_key=secret)
    assert "python -c 'import secrets; print(secrets.token_urlsafe(48))'" in str(raised.value)


# The documented command, and hex from the same module (openssl rand -hex 32 is alike).
GENERATED_KEYS: dict[str, Callable[[], str]] = {
    "token_urlsafe(48)": lambda: secrets.token_urlsafe(48),
    "token_hex(32)": lambda: secrets.token_hex(32),
}


@pytest.mark.parametrize("generator", GENERATED_KEYS)
@pytest.mark.parametrize("environment", ["production", "development"])
def test_a_strong_key_is_accepted(environment: str, generator: str) -> None:
    for _ in range(200):  # the estimate holds for every fresh key, not just a lucky one
        key = GENERATED_KEYS[generator]()
        settings = make_settings(environment=environment, secret_key=key)
        assert settings.secret_key.get_secret_value() == key
    assert make_settings(environment=environment, secret_key=TEST_SECRET_KEY)


@pytest.mark.parametrize(
    "url",
    ["https://", "https:///", "https://:443", "https://?next=x", "https://[::1", "http://app.test"],
)
def test_production_mail_links_need_an_https_url_with_a_host(url: str) -> None:
    # https:// alone would make links such as https:///reset-password.
    expected = "PUBLIC_BASE_URL must be an https:// URL with a host in production"
    with pytest.raises(ValidationError, match=re.escape(expected)):
        make_settings(environment="production", public_base_url=url)
    for good in ("https://app.example.test", "https://example.test:8443/app/"):
        assert make_settings(environment="production", public_base_url=good)


@pytest.mark.parametrize("host", ["", " ", "\t \n"])
def test_a_blank_smtp_host_is_no_mail_server(host: str) -> None:
    assert make_settings(environment="development", smtp_host=host).smtp_host == ""
    with pytest.raises(ValidationError, match="SMTP_HOST must be set in production"):
        make_settings(environment="production", smtp_host=host)
    assert make_settings(smtp_host=" smtp.example.test ").smtp_host == "smtp.example.test"
{%- else %}


def test_no_secret_key_is_needed_where_nothing_signs_with_one() -> None:
    assert "secret_key" not in Settings.model_fields
{%- endif %}


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


@pytest.mark.parametrize(
    ("allowed", "shown"),
    [
        ("*", "*"),
        ("10.0.0.1, *", "*"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("::/0", "::/0"),
        ("10.0.0.1, 0.0.0.0/0", "0.0.0.0/0"),
        ("10.1.2.3/0", "10.1.2.3/0"),
        ("0.0.0.0/0.0.0.0", "0.0.0.0/0.0.0.0"),
        ("0.0.0.0/1, 128.0.0.0/1", "0.0.0.0/1, 128.0.0.0/1"),
    ],
)
def test_production_refuses_to_trust_forwarded_headers_from_anyone(
    allowed: str, shown: str
) -> None:
    # Each would let any client claim any address in X-Forwarded-For.
    expected = f"FORWARDED_ALLOW_IPS must not be {shown} in production: it trusts every address"
    with pytest.raises(ValueError, match=re.escape(expected)):
        make_settings(environment="production", forwarded_allow_ips=allowed)
    assert make_settings(environment="development", forwarded_allow_ips=allowed)


@pytest.mark.parametrize(
    "allowed",
    [
        "127.0.0.1",
        "10.0.0.0/8, 127.0.0.1",  # uvicorn reads CIDR notation
        "0.0.0.0/1",  # half of everything is not everything
        "fd00::/8, ::1",
        "/run/proxy.sock, proxy.internal",  # matched literally by uvicorn
        "",
    ],
)
def test_production_accepts_proxies_that_are_not_everyone(allowed: str) -> None:
    settings = make_settings(environment="production", forwarded_allow_ips=allowed)
    assert settings.forwarded_allow_ips == allowed


def test_production_reports_every_problem_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
{%- if cookiecutter.auth == "jwt" %}
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("SMTP_HOST", "")
    monkeypatch.setenv("PUBLIC_BASE_URL", "http://app.example.test")
{%- elif cookiecutter.auth == "oidc" %}
    monkeypatch.delenv("OIDC_ISSUER", raising=False)
{%- endif %}
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    lines = str(raised.value.code).splitlines()
    expected = [
        "  - settings: FORWARDED_ALLOW_IPS must not be * in production",
{%- if cookiecutter.auth == "jwt" %}
        "  - settings: SMTP_HOST must be set in production",
        "  - settings: PUBLIC_BASE_URL must be an https:// URL with a host in production",
{%- elif cookiecutter.auth == "oidc" %}
        "  - settings: OIDC_ISSUER and OIDC_AUDIENCE must be set in production",
{%- endif %}
    ]
    assert lines[0] == "Invalid configuration:"
    assert [line[: len(start)] for line, start in zip(lines[1:], expected, strict=True)] == expected
