from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
{%- if cookiecutter.auth == "jwt" %}
from pydantic import ValidationError
{%- endif %}

from {{ cookiecutter.project_slug }} import cli
from {{ cookiecutter.project_slug }}.settings import get_settings
{%- if cookiecutter.metrics %}
from tests.test_metrics import free_port
{%- endif %}

UvicornCalls = list[tuple[Any, dict[str, Any]]]
PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> UvicornCalls:
    """What `uvicorn.run` is called with; no server starts."""
    calls: UvicornCalls = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: calls.append((app, kw)))
    return calls


def test_serve_runs_uvicorn_with_the_production_flags_from_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, uvicorn_calls: UvicornCalls
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PORT", "9123")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.1")
    monkeypatch.setenv("GRACEFUL_SHUTDOWN_TIMEOUT", "7")
{%- if cookiecutter.metrics %}
    monkeypatch.setenv("HOST", "127.0.0.1")
    monkeypatch.setenv("METRICS_PORT", str(free_port()))
{%- endif %}
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # anything serve creates stays here
    get_settings.cache_clear()
    previous = signal.getsignal(signal.SIGTERM)
    try:
        with mock.patch.dict(os.environ):  # serve may add variables for its workers
            assert cli.main(["serve"]) == 0
        assert signal.getsignal(signal.SIGTERM) is cli._exit_cleanly
    finally:
        signal.signal(signal.SIGTERM, previous)
        get_settings.cache_clear()

    [(app, flags)] = uvicorn_calls
    assert app == "{{ cookiecutter.project_slug }}.main:app"
    assert flags["port"] == 9123
    assert flags["workers"] == 3
    assert flags["forwarded_allow_ips"] == "10.0.0.1"
    assert flags["proxy_headers"] is True
    assert flags["timeout_graceful_shutdown"] == 7
    assert flags["access_log"] is False
    assert flags["log_config"] is None


def test_dev_runs_uvicorn_with_reload_on_the_settings_host_and_port(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, uvicorn_calls: UvicornCalls
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOST", "127.0.0.2")
    monkeypatch.setenv("PORT", "9124")
    get_settings.cache_clear()
    try:
        assert cli.main(["dev"]) == 0
    finally:
        get_settings.cache_clear()

    [(app, flags)] = uvicorn_calls
    assert app == "{{ cookiecutter.project_slug }}.main:app"
    assert (flags["host"], flags["port"]) == ("127.0.0.2", 9124)
    assert flags["reload"] is True
    assert flags["log_config"] is None  # the reloader's lines use the app's log format


def test_the_default_host_is_loopback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.delenv("HOST", raising=False)
    get_settings.cache_clear()
    try:
        assert get_settings().host == "127.0.0.1"
    finally:
        get_settings.cache_clear()


def test_sigterm_after_the_drain_exits_with_code_zero() -> None:
    with pytest.raises(SystemExit) as raised:
        cli._exit_cleanly(signal.SIGTERM, None)
    assert raised.value.code == 0


def test_an_unknown_command_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        cli.main(["fly"])
    assert raised.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
{%- if cookiecutter.auth == "jwt" %}


def test_on_a_terminal_the_rules_come_first_and_a_refused_password_is_asked_again(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    accepted = "a long enough passphrase"
    # too short (twice, the same), then differing, then accepted
    answers = iter(["short", "short", accepted, "a different one", accepted, accepted])
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda _prompt: next(answers))

    data = cli.ask_for_superuser("Root@Example.com")

    assert (data.email, data.password) == ("root@example.com", accepted)
    assert next(answers, None) is None  # asked until accepted, and no further
    out, err = capsys.readouterr()
    assert "15 to 128 characters" in out
    assert "Refused: password:" in err
    assert "The passwords differ. Try again." in err
    assert "short" not in out + err  # never echoed


def test_on_a_terminal_a_bad_email_is_refused_before_any_password_is_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", mock.Mock(side_effect=AssertionError("asked")))
    with pytest.raises(ValidationError):
        cli.ask_for_superuser("not an email")
{%- endif %}


def test_importing_the_app_loads_no_integration_that_is_not_configured() -> None:
    """Every worker imports the app: Alembic (used once, at startup), OpenTelemetry's SDK and
    instrumentations (without an OTLP endpoint) and the Sentry SDK (without a DSN) are not
    part of that import. (FastAPI itself loads OpenTelemetry's API when it is installed.)"""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env["SENTRY_DSN"] = ""  # over a developer's .env
    code = "import importlib, sys; importlib.import_module(sys.argv[1]); print(*sys.modules)"
{%- if cookiecutter.redis and cookiecutter.tracing %}
    # Not the OpenTelemetry SDK: redis-py imports its metrics part whenever it is installed.
    optional = {"alembic", "opentelemetry.instrumentation", "sentry_sdk"}
{%- else %}
    optional = {"alembic", "opentelemetry.sdk", "opentelemetry.instrumentation", "sentry_sdk"}
{%- endif %}
    result = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-c", code, "{{ cookiecutter.project_slug }}.main"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = set(result.stdout.split())
    assert "{{ cookiecutter.project_slug }}.main" in loaded
    assert not loaded & optional
