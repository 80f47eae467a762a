"""One error shape for every error: RFC 9457 problem details (`application/problem+json`).

HTTP errors, validation errors and domain errors are rendered here; unhandled exceptions
are caught by the request middleware (middleware.py) and rendered with the same shape,
without leaking a stack trace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details, plus the request id and, for 422, the field errors."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    """Base class for domain errors that map to an HTTP status (raise from services)."""

    status: int = HTTPStatus.BAD_REQUEST

    def __init__(self, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


class NotFoundError(ProblemError):
    status = HTTPStatus.NOT_FOUND


class UnauthorizedError(ProblemError):
    """Missing or invalid credentials. One message for every cause: no hints for attackers."""

    status = HTTPStatus.UNAUTHORIZED

    def __init__(self, detail: str = "Not authenticated.", *, challenge: str = "Bearer") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class InvalidTokenError(UnauthorizedError):
    """A bearer token was presented and refused, whatever the cause (forged, expired, of the
    wrong type, or its account is gone): RFC 6750's `invalid_token`, which tells a client to
    get a new token rather than to ask its user to sign in for the first time."""

    def __init__(self) -> None:
        super().__init__(
            "The token is invalid or expired.", challenge='Bearer error="invalid_token"'
        )


class ForbiddenError(ProblemError):
    status = HTTPStatus.FORBIDDEN


class ConflictError(ProblemError):
    status = HTTPStatus.CONFLICT


class ServiceUnavailableError(ProblemError):
    status = HTTPStatus.SERVICE_UNAVAILABLE


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    instance: str | None = None,
    request_id: str | None = None,
    errors: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    status = int(status)  # an HTTPStatus member would leak its name into logs and metrics
    problem = Problem(
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=instance,
        request_id=request_id,
        errors=errors,
    )
    return JSONResponse(
        problem.model_dump(mode="json", exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


async def handle_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for this type
    detail = exc.detail if exc.detail != HTTPStatus(exc.status_code).phrase else None
    headers = exc.headers
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        # Starlette hands the request to the first route whose path matches, and its 405
        # names only that route's methods; Allow must name every method the path has.
        allowed = allowed_methods(request.app.router.routes, request.scope)
        if allowed:
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
    return problem_response(
        exc.status_code,
        detail,
        instance=request.url.path,
        request_id=_request_id(request),
        headers=headers,
    )


# The methods a 405's Allow may name (RFC 9110 section 9; CONNECT and TRACE are never routed).
ROUTABLE_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(routes: Sequence[BaseRoute], scope: Scope) -> list[str]:
    """The methods some route would serve at the request's path, sorted. Asked through each
    route's own `matches`, as the router does, so routers included in others are asked too
    (FastAPI keeps an included router as one route that dispatches to its own)."""
    allowed = {
        method
        for method in ROUTABLE_METHODS
        if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in routes)
    }
    if "GET" in allowed:
        allowed.add("HEAD")  # the edge answers HEAD as the GET (middleware.py)
    return sorted(allowed)


# The most field errors a 422 lists. A body of 1 MiB of unknown keys has 100,000 of them:
# listed in full they made a 10 MB answer and a second of CPU, for anyone, signed in or not.
MAX_FIELD_ERRORS = 20


async def handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for this type
    found = exc.errors()
    # The offending input is not echoed back: it may be a password.
    errors = [
        FieldError(loc=list(jsonable_encoder(e["loc"])), msg=e["msg"], type=e["type"])
        for e in found[:MAX_FIELD_ERRORS]
    ]
    detail = "The request is invalid; see errors."
    if len(found) > MAX_FIELD_ERRORS:
        detail = f"The request is invalid in {len(found)} places; errors lists the first few."
    return problem_response(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail,
        instance=request.url.path,
        request_id=_request_id(request),
        errors=errors,
    )


async def handle_problem_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)  # noqa: S101 - registered for this type
    return problem_response(
        exc.status,
        exc.detail,
        instance=request.url.path,
        request_id=_request_id(request),
        headers=exc.headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(ProblemError, handle_problem_error)


PROBLEM_CONTENT = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The problem responses an operation can return, for a route's `responses=`:
    `@router.get("/{item_id}", responses=problems(404))`. 422 (when there is input), 400 and
    413 (when there is a body) are added to every operation by `document_problem_responses`."""
    return {
        status: {"description": HTTPStatus(status).phrase, "content": PROBLEM_CONTENT}
        for status in statuses
    }


def document_problem_responses(schema: dict[str, Any]) -> dict[str, Any]:
    """Make the OpenAPI document describe the error shape the API really returns.

    Each operation lists the problems it can return (its routes' `responses=problems(...)`),
    so a client generator knows them and an undocumented status fails the fuzz test. FastAPI
    documents 422 with its own `HTTPValidationError`: here it is a problem, like the 400 (the
    body cannot be parsed) and 413 (it is too large) that every operation with a body can get.
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem_schema.pop("$defs", {}))
    components["Problem"] = problem_schema
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = {"description": "Validation Error", "content": PROBLEM_CONTENT}
            if "requestBody" in operation:
                for status, response in problems(400, 413).items():
                    responses[str(status)] = response
    return schema
