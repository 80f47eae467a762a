from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.middleware import SecurityHeadersMiddleware
from {{ cookiecutter.project_slug }}.settings import Settings
from tests.support import make_client


async def test_request_id_is_generated_and_echoed(client: httpx.AsyncClient) -> None:
    first = await client.get("/health/live")
    second = await client.get("/health/live")
    assert len(first.headers["x-request-id"]) == 32
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_a_sane_incoming_request_id_is_kept(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live", headers={"X-Request-ID": "edge-1234.abc_Z"})
    assert response.headers["x-request-id"] == "edge-1234.abc_Z"


@pytest.mark.parametrize("bad_id", ["a" * 65, "spaces are not allowed", 'quote"s', ""])
async def test_an_unsafe_incoming_request_id_is_replaced(
    client: httpx.AsyncClient, bad_id: str
) -> None:
    response = await client.get("/health/live", headers={"X-Request-ID": bad_id})
    assert response.headers["x-request-id"] != bad_id
    assert len(response.headers["x-request-id"]) == 32


async def test_security_headers_on_api_responses(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/info")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")


async def test_docs_get_a_policy_that_lets_swagger_load(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "cdn.jsdelivr.net" in response.headers["content-security-policy"]


async def test_one_access_line_per_request_with_the_request_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        response = await client.get("/api/v1/info", headers={"X-Request-ID": "trace-me"})
        await client.get("/health/live")  # health probes are not access-logged

    access = [
        r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg["event"] == "request"
    ]
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == "trace-me" == response.headers["x-request-id"]
    assert (line["method"], line["path"], line["status"]) == ("GET", "/api/v1/info", 200)
    assert line["duration_ms"] >= 0


def production_app(settings: Settings, **changes: object) -> FastAPI:
    """The app as production builds it (the settings copied as they are, not re-validated)."""
    return create_app(settings.model_copy(update={"environment": "production", **changes}))


@pytest.fixture
async def production(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(production_app(settings)) as client:
        yield client


DOCS_ROUTES = ["/docs", "/redoc", "/docs/oauth2-redirect", "/openapi.json"]


@pytest.mark.parametrize("path", DOCS_ROUTES)
async def test_docs_and_schema_are_not_public_in_production(
    production: httpx.AsyncClient, path: str
) -> None:
    response = await production.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("path", DOCS_ROUTES)
async def test_docs_enabled_turns_them_on_in_production(settings: Settings, path: str) -> None:
    async with make_client(production_app(settings, docs_enabled=True)) as client:
        assert (await client.get(path)).status_code == 200


async def test_docs_enabled_false_turns_them_off_elsewhere(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"docs_enabled": False}))
    async with make_client(app) as client:
        assert (await client.get("/openapi.json")).status_code == 404


async def test_hsts_in_production_for_a_year_by_default(production: httpx.AsyncClient) -> None:
    response = await production.get("/api/v1/info")
    assert response.headers["strict-transport-security"] == "max-age=31536000"


async def test_no_hsts_outside_production_or_when_zero(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    assert "strict-transport-security" not in (await client.get("/api/v1/info")).headers
    async with make_client(production_app(settings, hsts_max_age_seconds=0)) as off:
        assert "strict-transport-security" not in (await off.get("/api/v1/info")).headers


@pytest.mark.parametrize("path", ["/api/v1/info", "/api/v1/nowhere", "/health/live", "/docs"])
async def test_responses_are_not_stored_by_caches(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


async def test_a_route_s_own_cache_control_is_kept() -> None:
    async def cacheable(scope: Scope, receive: Receive, send: Send) -> None:
        response = PlainTextResponse("public", headers={"Cache-Control": "max-age=60"})
        await response(scope, receive, send)

    transport = httpx.ASGITransport(app=SecurityHeadersMiddleware(cacheable))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/anything")
    assert response.headers["cache-control"] == "max-age=60"
    assert "pragma" not in response.headers
