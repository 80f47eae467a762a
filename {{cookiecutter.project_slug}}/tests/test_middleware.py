from __future__ import annotations

import logging

import httpx
import pytest


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
