"""What every task run gets: the request id (and trace) of the request that enqueued it,
one log line when it starts and one when it ends{% if cookiecutter.metrics %}, and metrics (in the worker){% endif %}.

Each run is its own asyncio task with its own context, so what is bound here reaches every
line the task logs and never leaks into another run.
"""

from __future__ import annotations

import time
from contextvars import ContextVar{% if cookiecutter.tracing %}, Token{% endif %}
from typing import Any

import structlog
{%- if cookiecutter.tracing %}
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context as TraceContext
from opentelemetry.propagate import extract, inject
{%- endif %}
{%- if cookiecutter.metrics %}
from prometheus_client import CollectorRegistry, Counter, Histogram
{%- endif %}
from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult

REQUEST_ID_LABEL = "request_id"
RETRIES_LABEL = "_retries"  # set by taskiq's retry middleware on each retry

logger = structlog.stdlib.get_logger("tasks")
_started_at: ContextVar[float] = ContextVar("task_started_at")
{%- if cookiecutter.tracing %}
_span: ContextVar[tuple[trace.Span, Token[TraceContext]]] = ContextVar("task_span")
{%- endif %}


def attempt(message: TaskiqMessage) -> int:
    return int(message.labels.get(RETRIES_LABEL, 0)) + 1


class TaskContextMiddleware(TaskiqMiddleware):
    def pre_send(self, message: TaskiqMessage) -> TaskiqMessage:
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id is not None:
            message.labels[REQUEST_ID_LABEL] = request_id
{%- if cookiecutter.tracing %}
        inject(message.labels)  # W3C traceparent of the current span (the request's)
{%- endif %}
        return message

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        bound = {"task": message.task_name, "task_id": message.task_id, "attempt": attempt(message)}
        if (request_id := message.labels.get(REQUEST_ID_LABEL)) is not None:
            bound["request_id"] = request_id
        structlog.contextvars.bind_contextvars(**bound)
{%- if cookiecutter.tracing %}
        # Set by tracing.py when spans have somewhere to go (an OTLP endpoint); else none.
        provider: trace.TracerProvider | None = getattr(
            self.broker.state.app.state, "tracer_provider", None
        )
        if provider is not None:
            span = provider.get_tracer(__name__).start_span(
                f"task {message.task_name}",
                context=extract(message.labels),
                kind=trace.SpanKind.CONSUMER,
                attributes={"messaging.system": "redis", "messaging.message.id": message.task_id},
            )
            token = otel_context.attach(trace.set_span_in_context(span))
            _span.set((span, token))
{%- endif %}
        _started_at.set(time.perf_counter())
        logger.info("task_started")
        return message

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        duration_ms = round((time.perf_counter() - _started_at.get()) * 1000, 2)
        if result.is_err:
            logger.error("task_failed", error=type(result.error).__name__, duration_ms=duration_ms)
        else:
            logger.info("task_succeeded", duration_ms=duration_ms)
{%- if cookiecutter.tracing %}
        if (traced := _span.get(None)) is not None:
            span, token = traced
            if result.is_err and result.error is not None:
                span.record_exception(result.error)
                span.set_status(trace.StatusCode.ERROR, type(result.error).__name__)
            span.end()
            otel_context.detach(token)
{%- endif %}
{%- if cookiecutter.metrics %}


class TaskMetricsMiddleware(TaskiqMiddleware):
    """Tasks started, succeeded and failed, and how long they ran, by task name (the worker
    serves them on WORKER_METRICS_PORT)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self.started = Counter(
            "tasks_started_total", "Task runs started, by task.", ["task"], registry=registry
        )
        self.finished = Counter(
            "tasks_finished_total",
            "Task runs finished, by task and outcome (succeeded, failed).",
            ["task", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "task_duration_seconds", "Task run duration, by task.", ["task"], registry=registry
        )

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        self.started.labels(message.task_name).inc()
        return message

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        outcome = "failed" if result.is_err else "succeeded"
        self.finished.labels(message.task_name, outcome).inc()
        self.duration.labels(message.task_name).observe(result.execution_time)
{%- endif %}
