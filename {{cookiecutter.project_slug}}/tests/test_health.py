from __future__ import annotations

import asyncio
import logging
import time

import httpx
import pytest
from fastapi import FastAPI

from {{ cookiecutter.project_slug }} import health
from {{ cookiecutter.project_slug }}.health import add_readiness_check


async def test_live_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["status"] == "ok"


async def test_live_answers_head_without_a_body(client: httpx.AsyncClient) -> None:
    response = await client.head("/health/live")
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) == len(health.LIVE_BODY)


@pytest.mark.parametrize("path", ["/health/ready", "/api/v1/info"])
async def test_head_is_a_get_without_the_body_on_every_route(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    """Monitors and `curl -I` ask with HEAD; routes declare GET only (RFC 9110 9.3.2)."""
    with caplog.at_level(logging.INFO):
        got = await client.get(path)
        head = await client.head(path)
    assert head.status_code == got.status_code == 200
    assert head.content == b""
    for header in ("content-type", "content-length", "cache-control"):
        assert head.headers[header] == got.headers[header]
    access = [r.msg for r in caplog.records if isinstance(r.msg, dict)]
    assert [line["method"] for line in access if line["event"] == "request"] == (
        [] if path.startswith("/health/") else ["GET", "HEAD"]  # probes are not logged
    )
{%- if cookiecutter.metrics %}
    labels = {"method": "HEAD", "route": path, "status": "200"}
    counted = app.state.metrics_registry.get_sample_value("http_requests_total", labels)
    assert counted == (None if path.startswith("/health/") else 1)  # probes are not counted
{%- else %}
    del app
{%- endif %}


@pytest.mark.parametrize("method", ["POST", "DELETE", "OPTIONS"])
async def test_live_refuses_other_methods_as_readiness_does(
    client: httpx.AsyncClient, method: str
) -> None:
    response = await client.request(method, "/health/live")  # answered by the edge
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["allow"] == "GET, HEAD"
    assert response.json()["instance"] == "/health/live"
    readiness = await client.delete("/health/ready")  # answered by its route
    assert readiness.status_code == 405
    assert readiness.headers["allow"] == "GET, HEAD"


async def test_ready_reports_every_check(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
{%- set checks = (["database", "schema"] if cookiecutter.database != "none" else []) + (["redis"] if cookiecutter.redis else []) %}
    assert response.json()["checks"] == {{ '{' }}{% for check in checks %}"{{ check }}": "ok"{{ ", " if not loop.last }}{% endfor %}{{ '}' }}
{%- if cookiecutter.database != "none" %}


async def test_readiness_probes_add_no_lines_from_alembic(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The schema check reads the revision through Alembic on every probe."""
    caplog.set_level(logging.INFO)
    for _ in range(2):
        assert (await client.get("/health/ready")).status_code == 200
    from_alembic = [record for record in caplog.records if record.name.startswith("alembic")]
    assert [record.getMessage() for record in from_alembic] == []
{%- endif %}


async def test_ready_is_503_problem_when_a_dependency_fails(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async def broken() -> None:
        raise ConnectionError("no route to the cache")

    add_readiness_check(app, "cache", broken)
    response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "cache" in response.json()["detail"]
    assert "no route" not in response.text  # the cause is logged, not shown


async def test_ready_is_503_when_a_check_hangs_past_its_timeout(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "READINESS_TIMEOUT_SECONDS", 0.2)

    async def hangs() -> None:
        await asyncio.Event().wait()  # a dependency that never answers

    add_readiness_check(app, "search", hangs)
    started = time.monotonic()
    async with asyncio.timeout(10):  # without the service's own timeout: fail here, not hang
        response = await client.get("/health/ready")
    assert time.monotonic() - started < 2
    assert response.status_code == 503
    assert "search" in response.json()["detail"]


async def test_health_stays_out_of_the_schema(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith("/health")]


async def test_info_names_the_running_service(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/info")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "{{ cookiecutter.project_slug | replace('_', '-') }}"
    assert body["version"]
    assert set(body) == {"name", "version"}  # not the environment: strangers call this
