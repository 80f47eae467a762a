"""Prometheus metrics: request count, latency histogram and in-flight requests.

Labels are the route template (`/api/v1/items/{item_id}`, never the raw path), a known
method and the status, so the number of series stays bounded whatever clients send. What
matched no route, or was refused before routing (431, 413: see middleware.py), is counted
under the route `unmatched`.

The metrics are not on the service's port. `serve` exposes them on their own,
METRICS_PORT (bound to HOST), for the scraper alone: keep that port off the public network
(the Kubernetes NetworkPolicy admits only the scraper to it). A separate port rather than
an address filter on /metrics because behind a proxy every request comes from the proxy's
address: a filter would have to trust forwarded headers, or let the whole internet in.

Under `serve`, prometheus-client always runs in multiprocess mode: each worker writes its
values to files in a fresh directory, and the metrics endpoint, served by the main process
(uvicorn's supervisor, or the single worker itself), adds them up.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.exposition import start_http_server
from prometheus_client.metrics_core import Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from {{ cookiecutter.project_slug }}.health import PROBE_PATHS
from {{ cookiecutter.project_slug }}.middleware import ends_response

UNMATCHED_ROUTE = "unmatched"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


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
        if scope["type"] != "http" or scope["path"] in PROBE_PATHS:
            await self.app(scope, receive, send)
            return

        method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
        status = 500  # what the client gets if the app raises before answering
        answered: float | None = None  # the last byte's time: background work is not latency

        async def send_recording_status(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
            if ends_response(message):
                answered = time.perf_counter()

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
            finished = answered or time.perf_counter()
            self.duration.labels(method, route).observe(finished - started)


def install_metrics(app: FastAPI) -> None:
    # One registry per app, so tests (one app each) never collide; they read it directly.
    registry = CollectorRegistry()
    app.state.metrics_registry = registry
    app.add_middleware(PrometheusMiddleware, registry=registry)


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        return True
    # A killed worker stays a zombie until uvicorn reaps it (up to its health-check timeout):
    # it answers signals but runs no more.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc: trust the signal
    return state != "Z"


def forget_dead_workers(directory: str) -> None:
    """Drop the in-progress gauges of workers that died (their counters stay counted)."""
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        if not _is_running(pid):
            multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


class WorkersCollector:
    """Every worker's values, from prometheus-client's multiprocess directory."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.files = multiprocess.MultiProcessCollector(None, path=directory)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        forget_dead_workers(self.directory)
        metrics: Iterable[Metric] = self.files.collect()  # type: ignore[no-untyped-call]
        return metrics


@contextmanager
def metrics_server(host: str, port: int) -> Iterator[None]:
    """Serve the workers' metrics on host:port (every path) while the block runs.

    PROMETHEUS_MULTIPROC_DIR must be set before prometheus-client is first imported, in this
    process and in the workers: `serve` sets it before it imports this module.
    """
    registry = CollectorRegistry()
    registry.register(WorkersCollector(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
    with serve_registry(host, port, registry):
        yield


@contextmanager
def serve_registry(
    host: str, port: int, registry: CollectorRegistry, setting: str = "METRICS_PORT"
) -> Iterator[None]:
    """Serve `registry` on host:port (every path) while the block runs; `setting` names the
    port in the error that says it is taken."""
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise SystemExit(
            f"Cannot serve metrics on {host}:{port} ({setting}): {exc.strerror}"
        ) from None
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
