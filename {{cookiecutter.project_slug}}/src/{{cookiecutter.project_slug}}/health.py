"""Health endpoints: liveness checks nothing external, readiness checks every dependency.

`GET /health/live` answers LIVE_BODY as soon as the process serves HTTP. It is answered by
the edge middleware (middleware.py), before routing: probes hit it every few seconds and it
needs nothing else. Features register their readiness checks with `add_readiness_check`
from their lifespan. Both endpoints stay out of the OpenAPI schema and the access log;
`/api/v1/info`, the one documented route here, is tagged `service`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from typing import Literal

import structlog
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel

from {{ cookiecutter.project_slug }}.errors import ServiceUnavailableError
from {{ cookiecutter.project_slug }}.settings import API_PREFIX

ReadinessCheck = Callable[[], Awaitable[None]]

LIVE_PATH = "/health/live"
READY_PATH = "/health/ready"
# Probed by machines every few seconds: no access line, no metrics, no spans.
PROBE_PATHS = frozenset({LIVE_PATH, READY_PATH})
READINESS_TIMEOUT_SECONDS = 2.0

logger = structlog.stdlib.get_logger(__name__)
router = APIRouter()


class HealthStatus(BaseModel):
    status: Literal["ok"] = "ok"
    checks: dict[str, Literal["ok"]] = {}


class ServiceInfo(BaseModel):
    name: str
    version: str


def add_readiness_check(app: FastAPI, name: str, check: ReadinessCheck) -> None:
    app.state.readiness_checks[name] = check


# Liveness checks nothing, so its answer never changes: serialised once, sent as is.
LIVE_BODY = HealthStatus().model_dump_json().encode()


@router.get(READY_PATH, include_in_schema=False)
async def ready(request: Request) -> HealthStatus:
    checks: dict[str, ReadinessCheck] = request.app.state.readiness_checks
    failed: list[str] = []
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check(), timeout=READINESS_TIMEOUT_SECONDS)
        except Exception as exc:  # any failure means "not ready"
            logger.warning("readiness_check_failed", check=name, error=repr(exc))
            failed.append(name)
    if failed:
        # Failed, not "did not answer": a schema behind the migrations answers, but fails.
        raise ServiceUnavailableError(f"Not ready: {', '.join(failed)} failed; see the logs.")
    return HealthStatus(checks=dict.fromkeys(checks, "ok"))


@router.get(f"{API_PREFIX}/info", tags=["service"])
async def info() -> ServiceInfo:
    """Name and version of the running service (not its environment: strangers call this)."""
    return ServiceInfo(
        name="{{ cookiecutter.project_slug | replace('_', '-') }}",
        version=version("{{ cookiecutter.project_slug | replace('_', '-') }}"),
    )
