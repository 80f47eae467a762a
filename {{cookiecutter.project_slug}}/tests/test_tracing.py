from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from {{ cookiecutter.project_slug }} import tracing
from {{ cookiecutter.project_slug }}.main import create_app
from tests.support import make_settings


@pytest.fixture(autouse=True)
def spans(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    """Tracing on, as an OTLP endpoint turns it on, with spans kept in memory (autouse: before
    the app fixture creates the app)."""
    exporter = InMemorySpanExporter()
    monkeypatch.setattr(tracing, "span_exporter", lambda: exporter)
    return exporter


def finished(app: FastAPI, spans: InMemorySpanExporter) -> list[str]:
    app.state.tracer_provider.force_flush()
    return [span.name for span in spans.get_finished_spans()]


def test_tracing_is_off_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real span_exporter
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert tracing.span_exporter() is None
    app = create_app(make_settings())
    assert not hasattr(app.state, "tracer_provider")
    assert not [m for m in app.user_middleware if m.cls.__module__.startswith("opentelemetry")]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4318/v1/traces")
    assert tracing.exporting_enabled()


async def test_requests_are_traced_and_logs_carry_the_trace_id(
    app: FastAPI,
    client: httpx.AsyncClient,
    spans: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO):
        response = await client.get("/api/v1/info")

    assert response.status_code == 200
    assert "GET /api/v1/info" in finished(app, spans)
    [server_span] = [s for s in spans.get_finished_spans() if s.name == "GET /api/v1/info"]
    trace_id = format(server_span.context.trace_id, "032x")
    access = [
        r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg["event"] == "request"
    ]
    assert access[0]["trace_id"] == trace_id
{%- if cookiecutter.database != "none" %}


async def test_database_queries_are_traced(
    app: FastAPI, client: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    await client.get("/api/v1/items")
    names = finished(app, spans)
    assert any(name.startswith("SELECT") for name in names), names
{%- endif %}
