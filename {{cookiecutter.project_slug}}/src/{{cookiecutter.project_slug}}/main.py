"""The application factory. Each feature brings its own lifespan and router; this file
only lists the chosen ones."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from importlib.metadata import version
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
{% if cookiecutter.auth == "jwt" %}
from {{ cookiecutter.project_slug }}.accounts.router import router as accounts_router
{%- endif %}
{%- if cookiecutter.auth != "none" %}
from {{ cookiecutter.project_slug }}.auth.dependencies import auth_lifespan
from {{ cookiecutter.project_slug }}.auth.router import router as auth_router
{%- endif %}
{%- if cookiecutter.database != "none" %}
from {{ cookiecutter.project_slug }}.db import database_lifespan, install_database_error_handlers
{%- endif %}
from {{ cookiecutter.project_slug }}.docs import OPENAPI_PATH, install_docs
from {{ cookiecutter.project_slug }}.errors import document_problem_responses, install_error_handlers
from {{ cookiecutter.project_slug }}.health import router as health_router
{%- if cookiecutter.database != "none" %}
from {{ cookiecutter.project_slug }}.items.router import router as items_router
{%- endif %}
from {{ cookiecutter.project_slug }}.logging import configure_logging
{%- if cookiecutter.auth == "jwt" %}
from {{ cookiecutter.project_slug }}.mail.senders import mail_lifespan
{%- endif %}
{%- if cookiecutter.metrics %}
from {{ cookiecutter.project_slug }}.metrics import install_metrics
{%- endif %}
from {{ cookiecutter.project_slug }}.middleware import EdgeMiddleware, ProblemCORSMiddleware
{%- if cookiecutter.redis %}
from {{ cookiecutter.project_slug }}.redis import install_redis_error_handlers, redis_lifespan
{%- endif %}
{%- if cookiecutter.sentry %}
from {{ cookiecutter.project_slug }}.sentry import init_sentry
{%- endif %}
from {{ cookiecutter.project_slug }}.settings import Settings, get_settings
{%- if cookiecutter.tasks != "none" %}
from {{ cookiecutter.project_slug }}.tasks.broker import install_queue_error_handlers, tasks_lifespan
{%- endif %}
{%- if cookiecutter.tracing %}
from {{ cookiecutter.project_slug }}.tracing import install_tracing, tracing_lifespan
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}
from {{ cookiecutter.project_slug }}.users.router import router as users_router
{%- endif %}

# A feature's setup and teardown: opened at startup, closed at shutdown, in reverse order.
FeatureLifespan = Callable[[FastAPI, Settings], AbstractAsyncContextManager[None]]


@asynccontextmanager
async def freeze_startup_objects(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    """In production, what startup made (modules, routes, pools: most of the process's
    objects, and they live as long as it does) leaves the garbage collector's sight, so a
    full collection walks only what requests left behind; walking it all paused a loaded
    worker for up to 0.2 s (measured). Not in development or tests: they start many apps in
    one process, and the collector never frees frozen objects."""
    del app
    if settings.environment == "production":
        gc.collect()
        gc.freeze()
    yield


FEATURES: list[FeatureLifespan] = [
{%- if cookiecutter.database != "none" %}
    database_lifespan,
{%- endif %}
{%- if cookiecutter.redis %}
    redis_lifespan,
{%- endif %}
{%- if cookiecutter.auth != "none" %}
    auth_lifespan,
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}
    mail_lifespan,
{%- endif %}
{%- if cookiecutter.tracing %}
    tracing_lifespan,
{%- endif %}
{%- if cookiecutter.tasks != "none" %}
    tasks_lifespan,
{%- endif %}
    freeze_startup_objects,  # last: after every other feature has started
]


def operation_id(route: APIRoute) -> str:
    """Short, stable operation ids for client generators: `items-create_item` (tag and
    function name), not FastAPI's `create_item_api_v1_items_post`."""
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)
{%- if cookiecutter.sentry %}
    init_sentry(settings)
{%- endif %}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for feature in FEATURES:
                await stack.enter_async_context(feature(app, settings))
            yield

    # Off (404) in production unless DOCS_ENABLED says otherwise: the schema maps the attack
    # surface for strangers. FastAPI's own pages load a CDN: install_docs serves them locally.
    docs = settings.resolved_docs_enabled
    app = FastAPI(
        title="{{ cookiecutter.project_name }}",
        description="{{ cookiecutter.description }}",
        version=version("{{ cookiecutter.project_slug | replace('_', '-') }}"),
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        docs_url=None,
        redoc_url=None,
        openapi_url=OPENAPI_PATH if docs else None,
        # No redirect from `/path/` to `/path`: Starlette builds its Location from the
        # request's Host header, which a client (or a cache in front) controls.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.readiness_checks = {}
    if docs:
        install_docs(app)

    install_error_handlers(app)
{%- if cookiecutter.database != "none" %}
    install_database_error_handlers(app)
{%- endif %}
{%- if cookiecutter.redis %}
    install_redis_error_handlers(app)
{%- endif %}
{%- if cookiecutter.tasks != "none" %}
    install_queue_error_handlers(app)
{%- endif %}

    # Added innermost first: the edge wraps everything, even the 500 fallback{% if cookiecutter.metrics %}; metrics
    # wrap the edge, so what it refuses (413, 431) is counted too{% endif %}.
    if settings.cors_origins:
        app.add_middleware(
            ProblemCORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.add_middleware(
        EdgeMiddleware,
        max_body_bytes=settings.max_request_body_bytes,
        max_header_bytes=settings.max_request_header_bytes,
        hsts=settings.hsts_header,
    )
{%- if cookiecutter.metrics %}
    install_metrics(app)
{%- endif %}
{%- if cookiecutter.tracing %}
    install_tracing(app, settings)  # outermost: the access line carries the trace id
{%- endif %}

    app.include_router(health_router)
{%- if cookiecutter.auth != "none" %}
    app.include_router(auth_router)
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}
    app.include_router(accounts_router)
    app.include_router(users_router)
{%- endif %}
{%- if cookiecutter.database != "none" %}
    app.include_router(items_router)
{%- endif %}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problem_responses(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


app = create_app()
