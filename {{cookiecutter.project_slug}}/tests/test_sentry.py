from __future__ import annotations

from typing import Any

import httpx
import pytest
import sentry_sdk
from fastapi import FastAPI

from {{ cookiecutter.project_slug }}.sentry import init_sentry
from tests.support import make_settings


def test_sentry_stays_off_without_a_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(sentry_sdk, "init", lambda **kwargs: calls.append(kwargs))
    assert init_sentry(make_settings(sentry_dsn="")) is False
    assert calls == []


def test_sentry_sends_no_personal_data(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(sentry_sdk, "init", lambda **kwargs: calls.append(kwargs))
    settings = make_settings(
        sentry_dsn="https://key@sentry.invalid/1",
        environment="production",
        sentry_traces_sample_rate=0.05,
    )
    assert init_sentry(settings) is True
    [options] = calls
    assert options["send_default_pii"] is False
    assert options["environment"] == "production"
    assert options["traces_sample_rate"] == 0.05
    assert options["release"]


async def test_unhandled_errors_are_reported(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    reported: list[BaseException | None] = []
    monkeypatch.setattr(sentry_sdk, "capture_exception", lambda error=None: reported.append(error))

    @app.get("/test/crash")
    async def crash() -> None:
        raise RuntimeError("boom")

    assert (await client.get("/test/crash")).status_code == 500
    assert len(reported) == 1
