from __future__ import annotations

import os
import tempfile
{%- if cookiecutter.database != "none" %}
import uuid
{%- endif %}
from pathlib import Path
from unittest import mock

import httpx
import pytest

from {{ cookiecutter.project_slug }} import cli
from {{ cookiecutter.project_slug }}.settings import get_settings


async def test_requests_are_counted_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/info")
    await client.get("/api/v1/info")
{%- if cookiecutter.database != "none" %}
    item_id = uuid.uuid4()
    await client.get(f"/api/v1/items/{item_id}")
{%- endif %}
    await client.get("/wp-login.php")  # an unknown path must not create a series

    response = await client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    assert 'http_requests_total{method="GET",route="/api/v1/info",status="200"} 2.0' in text
{%- if cookiecutter.database != "none" %}
    assert 'http_requests_total{method="GET",route="/api/v1/items/{item_id}",status="404"}' in text
    assert str(item_id) not in text
{%- endif %}
    assert 'http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert "wp-login" not in text
    assert 'bucket{le="0.005",method="GET",route="/api/v1/info"}' in text
    assert 'http_requests_in_progress{method="GET"} 0.0' in text


async def test_unknown_methods_share_one_label(client: httpx.AsyncClient) -> None:
    await client.request("BREW", "/api/v1/info")
    text = (await client.get("/metrics")).text
    assert 'method="OTHER"' in text
    assert "BREW" not in text


async def test_metrics_stay_out_of_the_schema_and_their_own_counts(
    client: httpx.AsyncClient,
) -> None:
    await client.get("/metrics")
    text = (await client.get("/metrics")).text
    assert 'route="/metrics"' not in text
    assert "/metrics" not in (await client.get("/openapi.json")).json()["paths"]


def test_serve_prepares_multiprocess_metrics_for_several_workers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WEB_CONCURRENCY", "2")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # keep /tmp clean
    monkeypatch.setattr("uvicorn.run", lambda *_args, **_kwargs: None)
    monkeypatch.setattr("signal.signal", lambda *_args: None)
    get_settings.cache_clear()
    try:
        with mock.patch.dict(os.environ):  # restores the environment serve changes
            cli.main(["serve"])
            directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    finally:
        get_settings.cache_clear()
    assert directory.is_dir()
    assert directory.parent == tmp_path
    assert not any(directory.iterdir())
