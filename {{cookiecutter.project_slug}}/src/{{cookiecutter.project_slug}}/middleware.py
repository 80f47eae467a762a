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

{% if cookiecutter.sentry -%}
import sentry_sdk
{% endif -%}
import structlog
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from {{ cookiecutter.project_slug }}.errors import problem_response

REQUEST_ID_HEADER = "X-Request-ID"
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
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_request_id)
            except Exception:
                logger.exception("unhandled_error", method=scope["method"], path=scope["path"])
{%- if cookiecutter.sentry %}
                sentry_sdk.capture_exception()  # no-op while SENTRY_DSN is empty
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
    """

    def __init__(self, app: ASGIApp, hsts: str | None = None) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
                headers.setdefault("Content-Security-Policy", STRICT_CSP)
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
                    headers["Pragma"] = "no-cache"
                if self.hsts is not None:
                    headers.setdefault("Strict-Transport-Security", self.hsts)
            await send(message)

        await self.app(scope, receive, send_with_headers)
