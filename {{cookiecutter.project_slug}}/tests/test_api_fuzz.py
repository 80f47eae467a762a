"""Property-based tests of the whole API from its OpenAPI schema (schemathesis).

Every generated request, valid or deliberately invalid, must get a documented status with
a documented content type and body, and never a 5xx.
"""

from __future__ import annotations
{% if cookiecutter.auth == "jwt" %}
import asyncio
import uuid
{%- endif %}
{%- if cookiecutter.database != "none" %}
from collections.abc import Iterator
{%- endif %}
from dataclasses import dataclass
{%- if cookiecutter.database != "none" %}
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

{% if cookiecutter.auth == "oidc" -%}
from {{ cookiecutter.project_slug }}.auth.dependencies import current_principal
from {{ cookiecutter.project_slug }}.auth.oidc import Principal
{% elif cookiecutter.auth == "jwt" -%}
from {{ cookiecutter.project_slug }}.db import standalone_session
{% endif -%}
from {{ cookiecutter.project_slug }}.main import create_app
{%- if cookiecutter.auth == "jwt" %}
from {{ cookiecutter.project_slug }}.settings import Settings
from tests.auth_support import access_headers, make_user
{%- endif %}
from tests.support import make_settings{% if cookiecutter.database != "none" %}, throwaway_database{% endif %}

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass(frozen=True)
class Api:
    schema: schemathesis.BaseSchema
    headers: dict[str, str]  # sent with every generated request


@pytest.fixture(scope="module")
{%- if cookiecutter.database != "none" %}
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    # A database of its own: fuzzing writes rows that other tests must not see.
    directory: Path = tmp_path_factory.mktemp("fuzz")
    with throwaway_database(directory) as database_url:
        app_settings = make_settings(database_url=database_url)
        app = create_app(app_settings)
{%- if cookiecutter.auth == "jwt" %}
        # Signed in as a superuser, so that every endpoint is reached past its auth check.
        headers = access_headers(app_settings, asyncio.run(add_superuser(app_settings)))
{%- elif cookiecutter.auth == "oidc" %}
        # Token verification has its own tests; here every request comes from one principal.
        app.dependency_overrides[current_principal] = _fuzz_principal
        headers: dict[str, str] = {}
{%- else %}
        headers: dict[str, str] = {}
{%- endif %}
        yield Api(schemathesis.openapi.from_asgi("/openapi.json", app), headers)
        asgi.shutdown_lifespans()  # close the engine before its database is dropped
{%- else %}
def api() -> Api:
    app = create_app(make_settings())
{%- if cookiecutter.auth == "oidc" %}
    # Token verification has its own tests; here every request comes from one principal.
    app.dependency_overrides[current_principal] = _fuzz_principal
{%- endif %}
    return Api(schemathesis.openapi.from_asgi("/openapi.json", app), headers={})
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}


async def add_superuser(settings: Settings) -> uuid.UUID:
    user = make_user("fuzz@example.com", is_superuser=True)
    async with standalone_session(settings) as session, session.begin():
        session.add(user)
    return user.id
{%- elif cookiecutter.auth == "oidc" %}


async def _fuzz_principal() -> Principal:
    scopes = frozenset({"items:read", "items:write"})  # what the items routes require
    return Principal(subject="fuzz", scopes=scopes, roles=frozenset(), claims={})
{%- endif %}


{% if cookiecutter.database != "none" -%}
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
{%- else -%}
# GET /api/v1/info takes no input, so there is no invalid request to generate yet.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE])
{%- endif %}
def test_api_conforms_to_its_schema(api: Api, mode: GenerationMode) -> None:
    @given(case=api.schema.as_strategy(generation_mode=mode))
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(headers=api.headers, checks=CHECKS)

    check()
