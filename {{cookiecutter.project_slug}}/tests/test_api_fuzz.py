"""Property-based tests of the whole API from its OpenAPI schema (schemathesis).

Every generated request, valid or deliberately invalid, must get a documented status with
a documented content type and body, and never a 5xx.
"""

from __future__ import annotations
{% if cookiecutter.database != "none" %}
from collections.abc import Iterator
from pathlib import Path
{%- endif %}
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
{%- if cookiecutter.database != "none" %}
from schemathesis.python import asgi
{%- endif %}
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from {{ cookiecutter.project_slug }}.main import create_app
from tests.support import make_settings{% if cookiecutter.database != "none" %}, throwaway_database{% endif %}

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
{%- if cookiecutter.database != "none" %}
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    # A database of its own: fuzzing writes rows that other tests must not see.
    directory: Path = tmp_path_factory.mktemp("fuzz")
    with throwaway_database(directory) as database_url:
        app = create_app(make_settings(database_url=database_url))
        yield schemathesis.openapi.from_asgi("/openapi.json", app)
        asgi.shutdown_lifespans()  # close the engine before its database is dropped
{%- else %}
def api_schema() -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(make_settings()))
{%- endif %}


{% if cookiecutter.database != "none" -%}
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
{%- else -%}
# GET /api/v1/info takes no input, so there is no invalid request to generate yet.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE])
{%- endif %}
def test_api_conforms_to_its_schema(
    api_schema: schemathesis.BaseSchema, mode: GenerationMode
) -> None:
    @given(case=api_schema.as_strategy(generation_mode=mode))
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(checks=CHECKS)

    check()
