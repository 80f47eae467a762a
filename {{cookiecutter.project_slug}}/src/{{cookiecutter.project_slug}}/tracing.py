"""OpenTelemetry tracing, configured by the standard OTEL_* environment variables.

Spans are exported over OTLP only when an endpoint is configured
(OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); without one, spans are
still created, so trace ids appear on log lines, but nothing is sent anywhere.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
{%- if cookiecutter.database != "none" %}
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
{%- endif %}
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from structlog.types import EventDict

from {{ cookiecutter.project_slug }}.settings import Settings

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def exporting_enabled() -> bool:
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


def install_tracing(app: FastAPI, settings: Settings) -> TracerProvider:
    """Instrument the app (middleware must be added before it starts); one provider per app."""
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, when set, override these defaults.
    resource = Resource.create(
        {
            "service.name": "{{ cookiecutter.project_slug | replace('_', '-') }}",
            "deployment.environment.name": settings.environment,
        }
    )
    provider = TracerProvider(resource=resource)
    if exporting_enabled():
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls="/health/live,/health/ready"
    )
    app.state.tracer_provider = provider
    return provider


@asynccontextmanager
async def tracing_lifespan(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    provider: TracerProvider = app.state.tracer_provider
{%- if cookiecutter.database != "none" %}
    # Runs after the database feature (see main.FEATURES), so the engine exists.
    instrumentor = SQLAlchemyInstrumentor()
    # The instrumentation declares SQLAlchemy < 2.1 but works with 2.1's engine events
    # (tests/test_tracing.py checks that queries produce spans).
    instrumentor.instrument(
        engine=app.state.engine.sync_engine, tracer_provider=provider, skip_dep_check=True
    )
{%- endif %}
    try:
        yield
    finally:
{%- if cookiecutter.database != "none" %}
        instrumentor.uninstrument()
{%- endif %}
        provider.shutdown()  # flushes spans still queued for export


def add_trace_context(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the current trace and span ids, for log-trace correlation."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict
