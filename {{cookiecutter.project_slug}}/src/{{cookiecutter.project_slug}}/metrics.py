"""Prometheus metrics at /metrics: request count, latency histogram and in-flight requests.

Labels are the route template (`/api/v1/items/{item_id}`, never the raw path), a known
method and the status, so the number of series stays bounded whatever clients send.
Several worker processes (WEB_CONCURRENCY > 1) share their metrics through
prometheus-client's multiprocess mode: `serve` points PROMETHEUS_MULTIPROC_DIR at a fresh
directory before the workers start, and /metrics aggregates every worker's values.
"""

from __future__ import annotations

import os
import time

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METRICS_PATH = "/metrics"
UNMATCHED_ROUTE = "unmatched"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Paths probed by machines, not used by clients.
UNMEASURED_PATHS = frozenset({METRICS_PATH, "/health/live", "/health/ready"})


class PrometheusMiddleware:
    """Pure ASGI middleware recording every request in `registry`."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request duration by method and route template.",
            ["method", "route"],
            registry=registry,
        )
        self.in_progress = Gauge(
            "http_requests_in_progress",
            "HTTP requests being handled.",
            ["method"],
            registry=registry,
            multiprocess_mode="livesum",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNMEASURED_PATHS:
            await self.app(scope, receive, send)
            return

        method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
        status = 500  # what the client gets if the app raises before answering

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        in_progress = self.in_progress.labels(method)
        in_progress.inc()
        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            in_progress.dec()
            # Set by the router once a route matched; its path is the full template because
            # routers carry their own prefix (settings.API_PREFIX).
            route = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
            self.requests.labels(method, route, str(status)).inc()
            self.duration.labels(method, route).observe(time.perf_counter() - started)


def install_metrics(app: FastAPI) -> None:
    # One registry per app, so tests (one app each) never collide.
    registry = CollectorRegistry()
    app.add_middleware(PrometheusMiddleware, registry=registry)

    def metrics() -> Response:
        exposed = registry
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            exposed = CollectorRegistry()
            multiprocess.MultiProcessCollector(exposed)  # type: ignore[no-untyped-call]
        return Response(generate_latest(exposed), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route(METRICS_PATH, metrics, methods=["GET"], include_in_schema=False)
