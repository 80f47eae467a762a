"""OpenTelemetry tracing, configured by the standard OTEL_* environment variables.

Tracing is on when an OTLP endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): requests{% if cookiecutter.database != "none" %} and SQL queries{% endif %} get spans, exported over OTLP,
and log lines carry their trace ids. Without an endpoint OpenTelemetry is not even
imported, so no span, middleware or query hook costs anything per request.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from structlog.types import EventDict

from {{ cookiecutter.project_slug }}.health import PROBE_PATHS
from {{ cookiecutter.project_slug }}.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def exporting_enabled() -> bool:
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


def span_exporter() -> SpanExporter | None:
    """The OTLP exporter when an endpoint is configured; None leaves tracing off."""
    if not exporting_enabled():
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415 - only when configured
        OTLPSpanExporter,
    )

    return OTLPSpanExporter()


def install_tracing(app: FastAPI, settings: Settings) -> None:
    """Instrument the app when spans have somewhere to go (before it starts: middleware)."""
    exporter = span_exporter()
    if exporter is not None:
        trace_app(app, settings, exporter)


def trace_app(app: FastAPI, settings: Settings, exporter: SpanExporter) -> TracerProvider:
    """Spans of every request, sent to `exporter`; one provider per app."""
    # Imported here: loading OpenTelemetry costs a service that does not trace.
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor  # noqa: PLC0415
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, when set, override these defaults.
    resource = Resource.create(
        {
            "service.name": "{{ cookiecutter.project_slug | replace('_', '-') }}",
            "deployment.environment.name": settings.environment,
        }
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls=",".join(sorted(PROBE_PATHS))
    )
    app.state.tracer_provider = provider
    return provider


@asynccontextmanager
async def tracing_lifespan(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    provider: TracerProvider | None = getattr(app.state, "tracer_provider", None)
    if provider is None:  # tracing is off
        yield
        return
{%- if cookiecutter.database != "none" %}
    from opentelemetry.instrumentation.sqlalchemy import (  # noqa: PLC0415 - see trace_app
        SQLAlchemyInstrumentor,
    )

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
    """structlog processor: the current trace and span ids, for log-trace correlation. Until
    OpenTelemetry is loaded (tracing off) there is no span, and nothing to look up."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return event_dict
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict
