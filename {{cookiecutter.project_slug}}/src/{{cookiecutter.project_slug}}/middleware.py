"""The edge: one pure ASGI layer that every request meets first.

It gives each request an id, refuses oversized headers (431), request targets (414) and
bodies (413) and a second Authorization header (400), answers the liveness probe, adds the
security headers, writes one access line and turns a crash into a 500 problem. One layer
rather than one per concern: each layer costs a call and a wrapped `send` on every request.
Pure ASGI (not BaseHTTPMiddleware) keeps throughput and lets the request id, bound in a
context variable here, reach every log line of the request.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterable

import structlog
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from {{ cookiecutter.project_slug }}.errors import problem_response
from {{ cookiecutter.project_slug }}.health import LIVE_BODY, LIVE_PATH, PROBE_PATHS
{%- if cookiecutter.sentry %}
from {{ cookiecutter.project_slug }}.sentry import capture_exception
{%- endif %}

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_HEADER_NAME = REQUEST_ID_HEADER.lower().encode("latin-1")
# An incoming id is reused only when it is short and plain, so it cannot forge log lines.
SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
LIVE_METHODS = frozenset({"GET", "HEAD"})
LIVE_ALLOW = ", ".join(sorted(LIVE_METHODS))
# The longest path and query string served (414 beyond): the 8 KiB request line that common
# proxies accept by default (nginx's large_client_header_buffers). A URL is logged, parsed
# and matched against every route; the server would otherwise take any length it buffered.
MAX_TARGET_BYTES = 8 * 1024

logger = structlog.stdlib.get_logger("access")


class RequestTooLargeError(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes.")


class EdgeMiddleware:
    """Request id, size limits, one credential, liveness, security headers, access line,
    last-resort 500.

    Sizes: a declared Content-Length over `max_body_bytes` is answered at once, unread (the
    server checks that a body matches its Content-Length); a body without one (chunked) is
    counted as it arrives and cut off as soon as it crosses the limit. The server has
    buffered the headers by now; a proxy in front bounds that (see the README).

    Headers: `Cache-Control: no-store` (and `Pragma: no-cache`, RFC 6749 section 5.1) unless
    the route set its own Cache-Control: responses carry tokens and user data, which no
    browser or shared cache may keep. `hsts` is the Strict-Transport-Security value, or None
    to send none (outside production). They are encoded once, here.

    Liveness (`GET /health/live`) is answered here, after the size checks: it checks nothing,
    so it needs no routing, no metrics and no access line (see health.py). Other methods get
    the 405 a route would give, with `Allow: GET, HEAD`.

    HEAD is GET without the body (RFC 9110 section 9.3.2), on every route: the application
    sees a GET, and the body it answers is not sent. Routes declare GET only.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_header_bytes: int,
        hsts: str | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        defaults = {
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "strict-origin-when-cross-origin",
        }
        if hsts is not None:
            defaults["Strict-Transport-Security"] = hsts
        self.defaults = _raw_headers(defaults | {"Content-Security-Policy": STRICT_CSP})
        live_headers = {"content-type": "application/json", "content-length": str(len(LIVE_BODY))}
        self.live_headers = _raw_headers(live_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
        elif scope["method"] == "HEAD":
            await self._head(scope, receive, send)
        else:
            await self._handle(scope, receive, send)

    async def _head(self, scope: Scope, receive: Receive, send: Send) -> None:
        """HEAD is handled as the GET it mirrors. The server's scope keeps HEAD (so it sends
        no body) and gets what routing found (the route: metrics' label)."""
        as_get = {**scope, "method": "GET"}
        try:
            await self._handle(as_get, receive, send, head=True)
        finally:
            scope.update({key: value for key, value in as_get.items() if key != "method"})

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, *, head: bool = False
    ) -> None:
        method = "HEAD" if head else scope["method"]
        incoming_id, header_bytes, declared, credentials = _scan_headers(scope)
        exchange = _Exchange(scope, receive, send, self.defaults, incoming_id, head=head)
        started = time.perf_counter()
        # bind/reset rather than `bound_contextvars`: the same, without a generator per request.
        tokens = structlog.contextvars.bind_contextvars(request_id=exchange.request_id)
        try:
            if oversized := self._oversized_head(scope, header_bytes):
                await exchange.refuse(*oversized)
            elif credentials > 1:  # which one counts? A proxy may read the other (RFC 9110 5.3)
                await exchange.refuse(400, "A request may carry one Authorization header only.")
            elif declared is not None and declared > self.max_body_bytes:
                await exchange.refuse_too_large(self.max_body_bytes)
            elif scope["path"] == LIVE_PATH:
                await self._answer_liveness(exchange)
            elif declared is not None:  # the server holds the body to its declared length
                await self.app(scope, receive, exchange.send)
            else:
                await self._call_counting_body(exchange)
        except Exception:
            logger.exception("unhandled_error", method=method, path=scope["path"])
{%- if cookiecutter.sentry %}
            capture_exception()  # no-op while SENTRY_DSN is empty
{%- endif %}
            if exchange.response_started:
                raise  # too late for a clean answer; let the server drop the connection
            await exchange.refuse(500, "An unexpected error occurred.")
        finally:
            try:
                if scope["path"] not in PROBE_PATHS:
                    logger.info(
                        "request",
                        method=method,
                        path=scope["path"],
                        status=exchange.status,
                        duration_ms=round((exchange.answered_at() - started) * 1000, 2),
                        client=scope["client"][0] if scope.get("client") else None,
                    )
            finally:
                structlog.contextvars.reset_contextvars(**tokens)

    def _oversized_head(self, scope: Scope, header_bytes: int) -> tuple[int, str] | None:
        """The status and detail for headers (431) or a path and query (414) over the limits."""
        if header_bytes > self.max_header_bytes:
            return 431, f"The request headers exceed {self.max_header_bytes} bytes."
        target_bytes = len(scope.get("raw_path") or scope["path"].encode()) + len(
            scope["query_string"]
        )
        if target_bytes > MAX_TARGET_BYTES:
            return 414, f"The request target exceeds {MAX_TARGET_BYTES} bytes."
        return None

    async def _answer_liveness(self, exchange: _Exchange) -> None:
        if exchange.scope["method"] != "GET":  # the 405 a route would give (HEAD is a GET)
            await exchange.refuse(405, None, headers={"Allow": LIVE_ALLOW})
            return
        await exchange.send(
            {"type": "http.response.start", "status": 200, "headers": self.live_headers}
        )
        await exchange.send({"type": "http.response.body", "body": LIVE_BODY})

    async def _call_counting_body(self, exchange: _Exchange) -> None:
        """A body without Content-Length (chunked): cut off as soon as it crosses the limit."""
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await exchange.receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # The application's error handler renders it (413 problem); should it
                    # escape, it is answered below.
                    raise RequestTooLargeError(self.max_body_bytes)
            return message

        try:
            await self.app(exchange.scope, counting_receive, exchange.send)
        except RequestTooLargeError:
            if exchange.response_started:
                raise
            await exchange.refuse_too_large(self.max_body_bytes)


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS (on when CORS_ORIGINS names origins), whose refusal of a preflight (an
    origin, method or header not allowed) is a 400 problem like every other error, not
    plain text."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        refused = bytes(response.body).decode()  # "Disallowed CORS origin, method"
        dropped = {"content-length", "content-type"}  # the problem sets its own
        headers = {name: value for name, value in response.headers.items() if name not in dropped}
        return problem_response(400, f"{refused}.", headers=headers)


def _scan_headers(scope: Scope) -> tuple[str | None, int, int | None, int]:
    """In one pass: a safe incoming request id, the headers' size, the declared body length
    and how many Authorization headers there are."""
    request_id: str | None = None
    size = 0
    declared: int | None = None
    credentials = 0
    for name, value in scope["headers"]:
        size += len(name) + len(value)
        if name == REQUEST_ID_HEADER_NAME:
            candidate = value.decode("latin-1")
            request_id = candidate if SAFE_REQUEST_ID.match(candidate) else None
        elif name == b"content-length" and value.isdigit():
            declared = int(value)
        elif name == b"authorization":
            credentials += 1
    return request_id, size, declared, credentials


def ends_response(message: Message) -> bool:
    """Whether `message` sends a response's last bytes: what comes after (background tasks)
    is not the client's wait."""
    return message["type"] == "http.response.body" and not message.get("more_body", False)


class _Exchange:
    """One request at the edge: its id, and the response's status once it started."""

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        defaults: RawHeaders,
        incoming_id: str | None,
        *,
        head: bool = False,
    ) -> None:
        self.scope = scope
        self.head = head  # send the headers of the answer, not its body
        self.receive = receive
        self._send = send
        self._defaults = defaults
        self.request_id = incoming_id or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = self.request_id
        self._request_id_header = (REQUEST_ID_HEADER_NAME, self.request_id.encode("latin-1"))
        self.status = 500  # what the access line says if no response starts
        self.response_started = False
        self._answered_at: float | None = None

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.response_started = True
            headers = _with_defaults(message.get("headers", ()), self._defaults)
            headers.append(self._request_id_header)
            message["headers"] = headers
        elif self.head and message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await self._send(message)
        if ends_response(message):
            self._answered_at = time.perf_counter()

    def answered_at(self) -> float:
        """When the response's last byte was sent, or now if it has not been. Work done
        after it (background tasks: mail to send) is not the client's wait; counted in, it
        also told log readers which addresses have accounts (a reset: 3 s or 3 ms)."""
        return self._answered_at or time.perf_counter()

    async def refuse(
        self, status: int, detail: str | None, headers: dict[str, str] | None = None
    ) -> None:
        response = problem_response(
            status, detail, instance=self.scope["path"], request_id=self.request_id, headers=headers
        )
        await response(self.scope, self.receive, self.send)

    async def refuse_too_large(self, limit: int) -> None:
        error = RequestTooLargeError(limit)
        await self.refuse(error.status_code, error.detail)


# Nothing may load or run; a page that needs more (the docs) sets its own policy.
STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"


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
