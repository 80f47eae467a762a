from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Query
from pydantic import BaseModel, ConfigDict

from {{ cookiecutter.project_slug }}.errors import MAX_FIELD_ERRORS


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


async def test_a_trailing_slash_is_a_404_not_a_redirect_to_the_host_header(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/v1/info/", headers={"Host": "attacker.example"})
    assert response.status_code == 404
    assert "location" not in response.headers
    assert response.headers["content-type"] == "application/problem+json"


async def test_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/v1/info")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert "GET" in response.headers["allow"]


async def test_a_405_allows_every_method_of_the_path(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    # One route a method, in a router of its own, as the service declares them: the app's
    # router picks the first route whose path matches, and a 405 must still name the others.
    things = APIRouter(prefix="/test/things")

    @things.get("/{thing_id}")
    async def read_thing(thing_id: int) -> None: ...

    @things.patch("/{thing_id}")
    async def update_thing(thing_id: int) -> None: ...

    @things.delete("/{thing_id}")
    async def delete_thing(thing_id: int) -> None: ...

    @things.post("")  # another path: not allowed on /test/things/1
    async def create_thing() -> None: ...

    app.include_router(things)
    for method in ("PUT", "POST", "OPTIONS"):
        response = await client.request(method, "/test/things/1")
        assert response.status_code == 405
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["allow"] == "DELETE, GET, HEAD, PATCH"  # HEAD: as the GET


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


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


async def test_a_422_lists_the_first_few_field_errors_only(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A body of unknown keys (each one an error) must not buy a huge answer."""

    @app.post("/test/strict")
    async def strict(data: Strict) -> str:
        return data.name

    body = {"name": "x"} | {f"unknown{number}": 0 for number in range(500)}
    response = await client.post("/test/strict", json=body)
    assert response.status_code == 422
    problem = response.json()
    assert len(problem["errors"]) == MAX_FIELD_ERRORS
    assert problem["errors"][0]["type"] == "extra_forbidden"
    assert "500 places" in problem["detail"]
    assert len(response.content) < 5_000


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
            responses = operation["responses"]
            # Each operation lists its own errors: a catch-all would let the fuzz test
            # accept any status.
            assert "default" not in responses, operation["operationId"]
            for code, response in responses.items():
                if int(code) >= 400:
                    assert list(response["content"]) == ["application/problem+json"], code
            if "requestBody" in operation:
                assert {"400", "413"} <= set(responses), operation["operationId"]


async def test_operations_have_short_ids_and_summaries_for_client_generators(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/openapi.json")).json()
    operations = [op for path in schema["paths"].values() for op in path.values()]
    ids = [operation["operationId"] for operation in operations]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-z]+-[a-z_]+", operation_id) for operation_id in ids), ids
    assert all(operation.get("summary") for operation in operations)
    info = schema["paths"]["/api/v1/info"]["get"]
    assert info["operationId"] == "service-info"
    assert info["tags"] == ["service"]
{%- if cookiecutter.database != "none" %}
    item = schema["paths"]["/api/v1/items/{item_id}"]
    assert item["get"]["operationId"] == "items-get_item"
    assert {"404", "422", "503"} <= set(item["get"]["responses"])
    assert {"400", "404", "409", "413", "422", "503"} <= set(item["patch"]["responses"])
{%- endif %}


def _patterned_properties(node: Any) -> Iterator[dict[str, Any]]:
    """Every property whose value (or one of its alternatives) must match a pattern."""
    if isinstance(node, dict):
        for prop in node.get("properties", {}).values():
            if any("pattern" in choice for choice in [prop, *prop.get("anyOf", [])]):
                yield prop
        for value in node.values():
            yield from _patterned_properties(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patterned_properties(value)


async def test_fields_with_a_pattern_have_an_example_for_try_it_out(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/openapi.json")).json()
    fields = list(_patterned_properties(schema))
{%- if cookiecutter.database != "none" %}
    assert fields  # the items' name and description at least
{%- endif %}
    for field in fields:
        choices = [field, *field.get("anyOf", [])]
        patterns = [choice["pattern"] for choice in choices if "pattern" in choice]
        examples = [example for choice in choices for example in choice.get("examples", [])]
        assert examples, field
        assert all(re.fullmatch(pattern, example) for pattern in patterns for example in examples)
