from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from {{ cookiecutter.project_slug }} import cli
from {{ cookiecutter.project_slug }}.settings import get_settings
{%- if cookiecutter.metrics %}
from tests.test_metrics import free_port
{%- endif %}


def test_serve_runs_uvicorn_with_the_production_flags_from_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
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
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: calls.append((app, kw)))
    get_settings.cache_clear()
    previous = signal.getsignal(signal.SIGTERM)
    try:
        with mock.patch.dict(os.environ):  # serve may add variables for its workers
            assert cli.main(["serve"]) == 0
        assert signal.getsignal(signal.SIGTERM) is cli._exit_cleanly
    finally:
        signal.signal(signal.SIGTERM, previous)
        get_settings.cache_clear()

    [(app, flags)] = calls
    assert app == "{{ cookiecutter.project_slug }}.main:app"
    assert flags["port"] == 9123
    assert flags["workers"] == 3
    assert flags["forwarded_allow_ips"] == "10.0.0.1"
    assert flags["proxy_headers"] is True
    assert flags["timeout_graceful_shutdown"] == 7
    assert flags["access_log"] is False
    assert flags["log_config"] is None


def test_sigterm_after_the_drain_exits_with_code_zero() -> None:
    with pytest.raises(SystemExit) as raised:
        cli._exit_cleanly(signal.SIGTERM, None)
    assert raised.value.code == 0


def test_an_unknown_command_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        cli.main(["fly"])
    assert raised.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
