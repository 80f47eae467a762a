"""Pure ASGI middleware: request id, access log, last-resort error handling, request body
size limit, security headers.

Pure ASGI (not BaseHTTPMiddleware) keeps throughput and lets the request id, bound in a
context variable here, reach every log line written while the request is handled.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from {{ cookiecutter.project_slug }}.errors import problem_response
{%- if cookiecutter.sentry %}
from {{ cookiecutter.project_slug }}.sentry import capture_exception
{%- endif %}

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_HEADER_NAME = REQUEST_ID_HEADER.lower().encode("latin-1")
# An incoming id is reused only when it is short and plain, so it cannot forge log lines.
SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

logger = structlog.stdlib.get_logger("access")


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if SAFE_REQUEST_ID.match(candidate) else None
    return None


class RequestContextMiddleware:
    """Gives each request an id, writes one access line, and turns crashes into a 500 problem."""

    def __init__(self, app: ASGIApp, quiet_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.quiet_paths = frozenset(quiet_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        request_id_header = (REQUEST_ID_HEADER_NAME, request_id.encode("latin-1"))
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", ()), request_id_header]
            await send(message)

        # bind/reset rather than `bound_contextvars`: the same, without a generator per request.
        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            try:
                await self.app(scope, receive, send_with_request_id)
            except Exception:
                logger.exception("unhandled_error", method=scope["method"], path=scope["path"])
{%- if cookiecutter.sentry %}
                capture_exception()  # no-op while SENTRY_DSN is empty
{%- endif %}
                if response_started:
                    raise  # too late for a clean answer; let the server drop the connection
                response = problem_response(
                    500,
                    "An unexpected error occurred.",
                    instance=scope["path"],
                    request_id=request_id,
                )
                await response(scope, receive, send_with_request_id)
            finally:
                if scope["path"] not in self.quiet_paths:
                    logger.info(
                        "request",
                        method=scope["method"],
                        path=scope["path"],
                        status=status,
                        duration_ms=round((time.perf_counter() - started) * 1000, 2),
                        client=scope["client"][0] if scope.get("client") else None,
                    )
        finally:
            structlog.contextvars.reset_contextvars(**tokens)


class RequestTooLargeError(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes.")


class RequestSizeLimitMiddleware:
    """Refuses request bodies over `max_body_bytes` (413) and headers over `max_header_bytes`
    (431), before the application reads them.

    A declared Content-Length over the limit is answered at once, unread (the server checks
    that a body matches its Content-Length). A body without one (chunked) is counted as it
    arrives and cut off as soon as it crosses the limit. The server has buffered the headers
    by now; a proxy in front bounds that (see the README).
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_header_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header_bytes = 0
        declared: int | None = None
        for name, value in scope["headers"]:
            header_bytes += len(name) + len(value)
            if name == b"content-length" and value.isdigit():
                declared = int(value)
        if header_bytes > self.max_header_bytes:
            detail = f"The request headers exceed {self.max_header_bytes} bytes."
            await _refuse(scope, receive, send, 431, detail)
        elif declared is not None and declared > self.max_body_bytes:
            error = RequestTooLargeError(self.max_body_bytes)
            await _refuse(scope, receive, send, error.status_code, error.detail)
        elif declared is not None:
            await self.app(scope, receive, send)
        else:
            await self._count_body(scope, receive, send)

    async def _count_body(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # The application's error handler renders it (413 problem); should it
                    # escape, it is answered below.
                    raise RequestTooLargeError(self.max_body_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started |= message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except RequestTooLargeError as error:
            if response_started:
                raise
            await _refuse(scope, receive, send, error.status_code, error.detail)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    request_id = scope.get("state", {}).get("request_id")
    response = problem_response(status, detail, instance=scope["path"], request_id=request_id)
    await response(scope, receive, send)


# Nothing may load or run; a page that needs more (the docs) sets its own policy.
STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"


class SecurityHeadersMiddleware:
    """Headers every response carries unless the route set its own.

    `Cache-Control: no-store` (and `Pragma: no-cache`, RFC 6749 section 5.1) by default:
    responses carry tokens and user data, which no browser or shared cache may keep. A route
    whose answer may be cached sets its own Cache-Control. `hsts` is the
    Strict-Transport-Security value, or None to send none (outside production).

    The headers are encoded once, here; a response gets the ones it lacks in one pass.
    """

    def __init__(self, app: ASGIApp, hsts: str | None = None) -> None:
        self.app = app
        defaults = {
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "strict-origin-when-cross-origin",
        }
        if hsts is not None:
            defaults["Strict-Transport-Security"] = hsts
        self.defaults = _raw_headers(defaults | {"Content-Security-Policy": STRICT_CSP})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_defaults(message.get("headers", ()), self.defaults)
            await send(message)

        await self.app(scope, receive, send_with_headers)


RawHeaders = list[tuple[bytes, bytes]]
NO_STORE: RawHeaders = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]


def _raw_headers(headers: dict[str, str]) -> RawHeaders:
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
    ]


def _with_defaults(headers: Iterable[tuple[bytes, bytes]], defaults: RawHeaders) -> RawHeaders:
    """`headers`, plus each default they do not set; and unless they set a Cache-Control,
    `no-store` with `Pragma: no-cache` (in place of a Pragma of their own)."""
    merged = list(headers)
    present = {name.lower() for name, _ in merged}
    merged += [header for header in defaults if header[0] not in present]
    if b"cache-control" not in present:
        if b"pragma" in present:
            merged = [header for header in merged if header[0].lower() != b"pragma"]
        merged += NO_STORE
    return merged
