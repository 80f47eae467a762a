from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from {{ cookiecutter.project_slug }}.tracing import exporting_enabled


def test_nothing_is_exported_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert not exporting_enabled()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4318/v1/traces")
    assert exporting_enabled()


async def test_requests_are_traced_and_logs_carry_the_trace_id(
    app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    spans = InMemorySpanExporter()
    app.state.tracer_provider.add_span_processor(SimpleSpanProcessor(spans))

    with caplog.at_level(logging.INFO):
        response = await client.get("/api/v1/info")

    assert response.status_code == 200
    [server_span] = [s for s in spans.get_finished_spans() if s.name == "GET /api/v1/info"]
    trace_id = format(server_span.context.trace_id, "032x")
    access = [
        r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg["event"] == "request"
    ]
    assert access[0]["trace_id"] == trace_id
{%- if cookiecutter.database != "none" %}


async def test_database_queries_are_traced(app: FastAPI, client: httpx.AsyncClient) -> None:
    spans = InMemorySpanExporter()
    app.state.tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    await client.get("/api/v1/items")
    names = [span.name for span in spans.get_finished_spans()]
    assert any(name.startswith("SELECT") for name in names), names
{%- endif %}
