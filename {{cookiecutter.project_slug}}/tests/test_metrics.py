from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
{%- if cookiecutter.database != "none" %}
import uuid
{%- endif %}
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key

from {{ cookiecutter.project_slug }} import cli
from {{ cookiecutter.project_slug }}.metrics import WorkersCollector
from {{ cookiecutter.project_slug }}.settings import get_settings


def exposition(app: FastAPI) -> str:
    """What the scraper would read from this app's registry."""
    return generate_latest(app.state.metrics_registry).decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_requests_are_counted_by_route_template(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await client.get("/api/v1/info")
    await client.get("/api/v1/info")
{%- if cookiecutter.database != "none" %}
    item_id = uuid.uuid4()
    await client.get(f"/api/v1/items/{item_id}")
{%- endif %}
    await client.get("/wp-login.php")  # an unknown path must not create a series

    text = exposition(app)
    assert 'http_requests_total{method="GET",route="/api/v1/info",status="200"} 2.0' in text
{%- if cookiecutter.database != "none" %}
    assert 'http_requests_total{method="GET",route="/api/v1/items/{item_id}",status="404"}' in text
    assert str(item_id) not in text
{%- endif %}
    assert 'http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert "wp-login" not in text
    assert 'bucket{le="0.005",method="GET",route="/api/v1/info"}' in text
    assert 'http_requests_in_progress{method="GET"} 0.0' in text


async def test_requests_the_edge_refuses_are_counted(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await client.get("/api/v1/info", headers={"X-Padding": "x" * 20_000})
    text = exposition(app)
    assert 'http_requests_total{method="GET",route="unmatched",status="431"} 1.0' in text


async def test_unknown_methods_share_one_label(app: FastAPI, client: httpx.AsyncClient) -> None:
    await client.request("BREW", "/api/v1/info")
    text = exposition(app)
    assert 'method="OTHER"' in text
    assert "BREW" not in text


async def test_metrics_are_not_served_on_the_service_port(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "/metrics" not in (await client.get("/openapi.json")).json()["paths"]


def test_serve_exposes_metrics_on_their_own_port_and_cleans_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    port = free_port()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOST", "127.0.0.1")
    monkeypatch.setenv("METRICS_PORT", str(port))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # keep /tmp clean
    monkeypatch.setattr("signal.signal", lambda *_args: None)
    seen: dict[str, Any] = {}

    def run_while_serving(*_args: Any, **_kwargs: Any) -> None:
        seen["directory"] = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        seen["exists"] = seen["directory"].is_dir()
        seen["status"] = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code

    monkeypatch.setattr("uvicorn.run", run_while_serving)
    get_settings.cache_clear()
    try:
        with mock.patch.dict(os.environ):  # restores the environment serve changes
            assert cli.main(["serve"]) == 0
    finally:
        get_settings.cache_clear()
    assert seen["status"] == 200
    assert seen["exists"]
    assert seen["directory"].parent == tmp_path
    assert not seen["directory"].exists()  # removed on exit
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)


def test_serve_refuses_a_metrics_port_in_use(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr("signal.signal", lambda *_args: None)
    monkeypatch.setattr("uvicorn.run", lambda *_args, **_kwargs: pytest.fail("must not start"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("HOST", "127.0.0.1")
        monkeypatch.setenv("METRICS_PORT", str(taken.getsockname()[1]))
        get_settings.cache_clear()
        try:
            with mock.patch.dict(os.environ), pytest.raises(SystemExit) as raised:
                cli.main(["serve"])
        finally:
            get_settings.cache_clear()
    assert "METRICS_PORT" in str(raised.value.code)
    assert not list(tmp_path.iterdir())  # the directory is gone too


def write_value(file: Path, name: str, labels: dict[str, str], value: float) -> None:
    """What a worker process writes in multiprocess mode (one file per kind and process)."""
    values = MmapedDict(str(file))  # type: ignore[no-untyped-call]
    key = mmap_key(name, name, list(labels), list(labels.values()), "help")
    values.write_value(key, value, 0.0)  # type: ignore[no-untyped-call]
    values.close()  # type: ignore[no-untyped-call]


def test_the_endpoint_adds_up_every_worker_and_forgets_dead_ones(tmp_path: Path) -> None:
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead, alive = int(finished.stdout), os.getpid()
    requests = {"method": "GET", "route": "/api/v1/info", "status": "200"}
    for pid, count in ((alive, 3.0), (dead, 4.0)):
        write_value(tmp_path / f"counter_{pid}.db", "http_requests_total", requests, count)
        gauge = tmp_path / f"gauge_livesum_{pid}.db"
        write_value(gauge, "http_requests_in_progress", {"method": "GET"}, 1)

    registry = CollectorRegistry()
    registry.register(WorkersCollector(str(tmp_path)))
    text = generate_latest(registry).decode()

    assert 'http_requests_total{method="GET",route="/api/v1/info",status="200"} 7.0' in text
    assert 'http_requests_in_progress{method="GET"} 1.0' in text  # the dead worker's is gone
    assert not (tmp_path / f"gauge_livesum_{dead}.db").exists()
    assert (tmp_path / f"counter_{dead}.db").exists()
