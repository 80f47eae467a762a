{%- if cookiecutter.auth == "jwt" -%}
"""What endpoints depend on: the current user (from a bearer access token), superusers only,
the login, registration and mail limiters, and the lifespan that creates them."""

from __future__ import annotations
{% if cookiecutter.redis %}
import functools
{%- endif %}
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, cast

from anyio import to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy import Table, bindparam, select

from {{ cookiecutter.project_slug }}.accounts.service import MailLimiters
from {{ cookiecutter.project_slug }}.auth.passwords import dummy_hash
{%- if cookiecutter.redis %}
from {{ cookiecutter.project_slug }}.auth.rate_limit import FailureLimiter, LoginLimiter, RedisFailureLimiter
{%- else %}
from {{ cookiecutter.project_slug }}.auth.rate_limit import FailureLimiter, InMemoryFailureLimiter, LoginLimiter
{%- endif %}
from {{ cookiecutter.project_slug }}.auth.tokens import TokenClaims, decode_token
from {{ cookiecutter.project_slug }}.db import SessionDep
from {{ cookiecutter.project_slug }}.errors import ForbiddenError, InvalidTokenError, UnauthorizedError
{%- if cookiecutter.redis %}
from {{ cookiecutter.project_slug }}.redis import RedisStore
{%- endif %}
from {{ cookiecutter.project_slug }}.settings import API_PREFIX, Settings
from {{ cookiecutter.project_slug }}.users.models import User

# auto_error=False: a missing token is our own 401 problem, not FastAPI's plain error.
# tokenUrl makes Swagger UI's Authorize button log in with the password form.
bearer_token = OAuth2PasswordBearer(tokenUrl=f"{API_PREFIX}/auth/token", auto_error=False)


# Dependencies are `async def` even when they do not await: FastAPI runs a plain `def` in a
# worker thread, a thread hop per request.
async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _login_limiter(request: Request) -> LoginLimiter:
    limiter: LoginLimiter = request.app.state.login_limiter
    return limiter


async def _registration_limiter(request: Request) -> FailureLimiter:
    limiter: FailureLimiter = request.app.state.registration_limiter
    return limiter


async def client_address(request: Request) -> str:
    """The client's address as uvicorn resolved it (see FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client else "unknown"


async def _mail_limiters(request: Request) -> MailLimiters:
    limiters: MailLimiters = request.app.state.mail_limiters
    return limiters


AppSettings = Annotated[Settings, Depends(_settings)]
Limiter = Annotated[LoginLimiter, Depends(_login_limiter)]
RegistrationLimiter = Annotated[FailureLimiter, Depends(_registration_limiter)]
MailLimits = Annotated[MailLimiters, Depends(_mail_limiters)]
ClientAddress = Annotated[str, Depends(client_address)]


BearerToken = Annotated[str | None, Depends(bearer_token)]


def access_claims(request: Request, token: str | None) -> TokenClaims:
    """The claims of a valid bearer access token, or 401.

    A function that the two dependencies below call, not a dependency of theirs: FastAPI
    spends CPU on each dependency of each request, and nearly every request signs in. For
    the same reason the settings come straight from the app, not through AppSettings."""
    if token is None:
        raise UnauthorizedError()
    settings: Settings = request.app.state.settings
    return decode_token(settings, token, "access")


async def current_user(request: Request, session: SessionDep, token: BearerToken) -> User:
    claims = access_claims(request, token)
    user = await session.get(User, claims.subject)
    if user is None or not user.is_active or user.token_version != claims.version:
        raise InvalidTokenError  # its account is gone or disabled, or its password changed
    return user


CurrentUser = Annotated[User, Depends(current_user)]


@dataclass(frozen=True)
class Account:
    """Who a valid access token signs in, as much as deciding what they may see needs."""

    id: uuid.UUID
    is_superuser: bool


USERS = cast("Table", User.__table__)
# A few columns through Core, not a User object through the ORM: every request for an owned
# resource asks this, and the user's row is not needed otherwise. The token's version is
# compared in the same query: a token issued before the latest new password finds no row.
ACTIVE_ACCOUNT = select(USERS.c.is_superuser).where(
    USERS.c.id == bindparam("user_id"),
    USERS.c.is_active,
    USERS.c.token_version == bindparam("token_version"),
)


async def current_account(request: Request, session: SessionDep, token: BearerToken) -> Account:
    """`current_user` without loading the user: an active account, or 401."""
    claims = access_claims(request, token)
    parameters = {"user_id": claims.subject, "token_version": claims.version}
    is_superuser = await session.scalar(ACTIVE_ACCOUNT, parameters)
    if is_superuser is None:
        raise InvalidTokenError  # its account is gone or disabled, or its password changed
    return Account(id=claims.subject, is_superuser=is_superuser)


CurrentAccount = Annotated[Account, Depends(current_account)]


async def current_superuser(user: CurrentUser) -> User:
    if not user.is_superuser:
        raise ForbiddenError("Only superusers may do this.")
    return user


Superuser = Annotated[User, Depends(current_superuser)]


@asynccontextmanager
async def auth_lifespan(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    await to_thread.run_sync(dummy_hash)  # made now, off the loop, not by the first login
    new_limiter = limiter_factory(app)
    app.state.login_limiter = login_limiter(settings, new_limiter)
    app.state.registration_limiter = registration_limiter(settings, new_limiter)
    app.state.mail_limiters = mail_limiters(settings, new_limiter)
    yield


# Makes one limiter from (max_failures, window_seconds).
NewLimiter = Callable[[int, float], FailureLimiter]


def limiter_factory(app: FastAPI) -> NewLimiter:
{%- if cookiecutter.redis %}
    """Limiters counted in Redis: shared by every worker and replica."""
    store: RedisStore = app.state.redis  # opened by redis_lifespan, listed before auth
    return functools.partial(RedisFailureLimiter, store)
{%- else %}
    """Limiters counted in this process's memory (`redis=true` shares them)."""
    del app  # nothing to share: each process counts for itself
    return InMemoryFailureLimiter
{%- endif %}


def login_limiter(settings: Settings, new_limiter: NewLimiter) -> LoginLimiter:
    window = settings.login_window_seconds
    return LoginLimiter(
        per_account_and_address=new_limiter(settings.login_max_failures, window),
        per_address=new_limiter(settings.login_max_failures_per_address, window),
        per_account=new_limiter(settings.login_max_failures_per_account, window),
    )


def registration_limiter(settings: Settings, new_limiter: NewLimiter) -> FailureLimiter:
    return new_limiter(settings.registration_max_per_address, settings.registration_window_seconds)


def mail_limiters(settings: Settings, new_limiter: NewLimiter) -> MailLimiters:
    """Password reset and verification mail requests (accounts/service.py)."""
    window = settings.mail_request_window_seconds
    return MailLimiters(
        per_address=new_limiter(settings.mail_requests_max_per_address, window),
        per_account=new_limiter(settings.mail_requests_max_per_account, window),
    )
{%- else -%}
"""What endpoints depend on: the verified caller (`CurrentPrincipal`), `require_scopes`,
`require_scope_setting`, and the lifespan that creates the token verifier."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from {{ cookiecutter.project_slug }}.auth.oidc import OIDCVerifier, Principal, check_scopes
from {{ cookiecutter.project_slug }}.errors import UnauthorizedError
from {{ cookiecutter.project_slug }}.settings import Settings

# auto_error=False: a missing token is our own 401 problem, not FastAPI's plain error.
bearer_token = HTTPBearer(
    auto_error=False,
    description="An access token from the identity provider named by OIDC_ISSUER.",
)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_token)],
) -> Principal:
    if credentials is None:
        raise UnauthorizedError()
    verifier: OIDCVerifier = request.app.state.oidc_verifier
    return await verifier.verify(credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_scopes(*scopes: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets only callers whose token grants every one of `scopes` through:

    @router.delete("/{id}", dependencies=[Depends(require_scopes("items:write"))])
    """
    needed = frozenset(scopes)

    async def check(principal: CurrentPrincipal) -> Principal:
        check_scopes(principal, needed)
        return principal

    return check


def require_scope_setting(
    scope_of: Callable[[Settings], str],
) -> Callable[[Request, Principal], Awaitable[Principal]]:
    """`require_scopes` with the scope(s) named by a setting (empty: none needed):

    @router.get("", dependencies=[Depends(require_scope_setting(lambda s: s.my_read_scope))])
    """

    async def check(request: Request, principal: CurrentPrincipal) -> Principal:
        settings: Settings = request.app.state.settings
        check_scopes(principal, frozenset(scope_of(settings).split()))
        return principal

    return check


@asynccontextmanager
async def auth_lifespan(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    # httpx's timeout bounds each connect and read; the verifier bounds the whole fetch.
    async with httpx.AsyncClient(timeout=settings.oidc_http_timeout_seconds) as http:
        app.state.oidc_verifier = verifier = OIDCVerifier.from_settings(settings, http)
        yield
        await verifier.aclose()
{%- endif %}
