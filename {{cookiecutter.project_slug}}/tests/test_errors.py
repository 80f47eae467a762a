from __future__ import annotations

import logging
from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI, Query


async def test_unknown_path_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "about:blank"
    assert body["title"] == "Not Found"
    assert body["status"] == 404
    assert body["instance"] == "/api/v1/nothing-here"
    assert body["request_id"] == response.headers["x-request-id"]
    assert type(body["status"]) is int


async def test_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/v1/info")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert "GET" in response.headers["allow"]


async def test_validation_error_is_a_422_problem_with_field_errors(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    @app.get("/test/numbers")
    async def numbers(n: Annotated[int, Query(ge=0)]) -> int:
        return n

    response = await client.get("/test/numbers", params={"n": "secret-value"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 422
    assert body["errors"][0]["loc"] == ["query", "n"]
    assert body["errors"][0]["type"] == "int_parsing"
    assert "secret-value" not in response.text  # inputs are not echoed back


async def test_unhandled_error_is_a_500_problem_without_a_trace(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    @app.get("/test/crash")
    async def crash() -> None:
        raise RuntimeError("database password is hunter2")

    with caplog.at_level(logging.ERROR):
        response = await client.get("/test/crash")

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "An unexpected error occurred."
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    logged = [r.msg for r in caplog.records if isinstance(r.msg, dict)]
    crash_lines = [line for line in logged if line["event"] == "unhandled_error"]
    assert crash_lines, "the crash must be logged"
    assert crash_lines[0]["request_id"] == response.headers["x-request-id"]


async def test_schema_documents_problem_responses(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert "Problem" in schema["components"]["schemas"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path in schema["paths"].values():
        for operation in path.values():
            assert "application/problem+json" in operation["responses"]["default"]["content"]
