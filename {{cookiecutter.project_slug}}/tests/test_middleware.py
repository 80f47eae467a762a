from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import BackgroundTasks, FastAPI, Request
from starlette.responses import PlainTextResponse
from starlette.types import Message, Receive, Scope, Send

from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.middleware import MAX_TARGET_BYTES, EdgeMiddleware
from {{ cookiecutter.project_slug }}.settings import Settings
from tests.support import make_client, make_settings

MIB = 1024 * 1024  # MAX_REQUEST_BODY_BYTES's default


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


async def test_work_after_the_response_is_not_counted_in_its_duration(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Background tasks (mail to send) run after the last byte: not the client's wait, and
    counted in, they told log readers which addresses have accounts."""

    @app.get("/test/then-work")
    async def then_work(background: BackgroundTasks) -> str:
        background.add_task(asyncio.sleep, 0.5)
        return "answered"

    with caplog.at_level(logging.INFO):
        assert (await client.get("/test/then-work")).status_code == 200
    [line] = [
        r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg["event"] == "request"
    ]
    assert line["duration_ms"] < 400
{%- if cookiecutter.metrics %}
    labels = {"method": "GET", "route": "/test/then-work"}
    registry = app.state.metrics_registry
    assert registry.get_sample_value("http_request_duration_seconds_sum", labels) < 0.4
{%- endif %}


def production_app(settings: Settings, **changes: object) -> FastAPI:
    """The app as production builds it (the settings copied as they are, not re-validated)."""
    return create_app(settings.model_copy(update={"environment": "production", **changes}))


@pytest.fixture
async def production(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(production_app(settings)) as client:
        yield client


DOCS_ROUTES = [
    "/docs",
    "/redoc",
    "/docs/oauth2-redirect",
    "/openapi.json",
    "/docs/assets/swagger-ui-bundle.js",
]


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


@pytest.mark.parametrize("path", DOCS_ROUTES)
async def test_docs_enabled_false_turns_them_off_elsewhere(settings: Settings, path: str) -> None:
    app = create_app(settings.model_copy(update={"docs_enabled": False}))
    async with make_client(app) as client:
        assert (await client.get(path)).status_code == 404


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

    edge = EdgeMiddleware(cacheable, max_body_bytes=MIB, max_header_bytes=8192)
    transport = httpx.ASGITransport(app=edge)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/anything")
    assert response.headers["cache-control"] == "max-age=60"
    assert "pragma" not in response.headers


def add_echo_route(app: FastAPI) -> None:
    @app.post("/test/echo")
    async def echo(request: Request) -> int:
        return len(await request.body())


async def chunks(count: int, sent: list[int], size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """A streamed (chunked) body of `count` chunks; `sent` counts those the server pulled."""
    for _ in range(count):
        sent.append(size)
        yield b"x" * size


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status
    assert response.headers["x-request-id"] == response.json()["request_id"]


async def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(app: FastAPI) -> None:
    """Called as the server calls it: reading the body would fail the test."""

    async def receive() -> Message:
        raise AssertionError("the body was read")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/items",
        "raw_path": b"/api/v1/items",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(100 * MIB).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    start = sent[0]
    assert start["status"] == 413
    assert (b"content-type", b"application/problem+json") in start["headers"]
    body = b"".join(message.get("body", b"") for message in sent[1:])
    assert str(MIB).encode() in body


async def test_a_declared_body_over_the_limit_gets_413(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    add_echo_route(app)
    response = await client.post("/test/echo", content=b"x" * (MIB + 1))
    assert_problem(response, 413)
    assert (await client.post("/test/echo", content=b"x" * MIB)).json() == MIB


async def test_a_streamed_body_is_cut_off_as_soon_as_it_crosses_the_limit(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    add_echo_route(app)
    pulled: list[int] = []
    response = await client.post("/test/echo", content=chunks(64, pulled))  # 4 MiB offered
    assert_problem(response, 413)
    assert MIB < sum(pulled) <= MIB + 64 * 1024  # not one chunk more than needed

    under: list[int] = []
    assert (await client.post("/test/echo", content=chunks(16, under))).json() == MIB


async def test_a_streamed_body_is_refused_even_by_a_plain_asgi_app() -> None:
    """Where no exception handler renders the error, the middleware answers itself."""

    async def reads_everything(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"read"})

    limited = EdgeMiddleware(reads_everything, max_body_bytes=100, max_header_bytes=8000)
    transport = httpx.ASGITransport(app=limited)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        refused = await client.post("/", content=chunks(3, [], size=60))
        accepted = await client.post("/", content=chunks(1, [], size=60))
    assert refused.status_code == 413
    assert refused.headers["content-type"] == "application/problem+json"
    assert accepted.text == "read"


async def test_oversized_headers_get_431(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live", headers={"X-Padding": "x" * 20_000})
    assert_problem(response, 431)
    assert (await client.get("/health/live", headers={"X-Padding": "x" * 8_000})).status_code == 200


async def test_two_authorization_headers_get_400(client: httpx.AsyncClient) -> None:
    # The service would read the first; a proxy or a log in front may read the other.
    twice = [("Authorization", "Bearer first"), ("Authorization", "Bearer second")]
    response = await client.get("/api/v1/info", headers=twice)
    assert_problem(response, 400)
    assert "one Authorization header" in response.json()["detail"]


async def test_an_overlong_request_target_gets_414(client: httpx.AsyncClient) -> None:
    # The path and query count together; headers are bounded separately (431).
    response = await client.get("/api/v1/info", params={"q": "x" * 20_000})
    assert_problem(response, 414)
    assert response.json()["detail"] == f"The request target exceeds {MAX_TARGET_BYTES} bytes."
    long_path = await client.get("/api/v1/" + "x" * MAX_TARGET_BYTES)
    assert_problem(long_path, 414)
    within = await client.get("/api/v1/info", params={"q": "x" * (MAX_TARGET_BYTES - 100)})
    assert within.status_code == 200


# --- CORS (CORS_ORIGINS) ------------------------------------------------------------------

FRONT_END = "https://app.example.test"
INFO = "/api/v1/info"


@pytest.fixture
async def cors_client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(create_app(make_settings(cors_origins=[FRONT_END]))) as client:
        yield client


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": method}


async def test_cors_lets_the_configured_origin_in(cors_client: httpx.AsyncClient) -> None:
    allowed = await cors_client.options(INFO, headers=preflight(FRONT_END, "DELETE"))
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == FRONT_END
    assert "DELETE" in allowed.headers["access-control-allow-methods"]
    answered = await cors_client.get(INFO, headers={"Origin": FRONT_END})
    assert answered.status_code == 200
    assert answered.headers["access-control-allow-origin"] == FRONT_END


async def test_cors_refuses_other_origins_with_a_problem(cors_client: httpx.AsyncClient) -> None:
    refused = await cors_client.options(INFO, headers=preflight("https://evil.example.test"))
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["detail"] == "Disallowed CORS origin."
    assert "access-control-allow-origin" not in refused.headers
    assert refused.headers["x-request-id"]  # the edge's headers, as on every answer
    # A simple request from elsewhere is answered, without the header that lets a browser
    # hand the answer to the other origin's page.
    answered = await cors_client.get(INFO, headers={"Origin": "https://evil.example.test"})
    assert "access-control-allow-origin" not in answered.headers


async def test_without_cors_origins_no_origin_is_let_in(client: httpx.AsyncClient) -> None:
    answered = await client.get(INFO, headers={"Origin": FRONT_END})
    assert "access-control-allow-origin" not in answered.headers
    preflighted = await client.options(INFO, headers=preflight(FRONT_END))
    assert preflighted.status_code == 405
    assert "access-control-allow-origin" not in preflighted.headers
