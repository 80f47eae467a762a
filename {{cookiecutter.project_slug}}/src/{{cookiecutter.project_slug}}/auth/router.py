{%- if cookiecutter.auth == "jwt" -%}
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Response, status

from {{ cookiecutter.project_slug }}.accounts import service as accounts
from {{ cookiecutter.project_slug }}.accounts.schemas import Accepted
from {{ cookiecutter.project_slug }}.auth import service
from {{ cookiecutter.project_slug }}.auth.dependencies import (
    AppSettings,
    ClientAddress,
    Limiter,
    MailLimits,
    RegistrationLimiter,
)
from {{ cookiecutter.project_slug }}.auth.passwords import PASSWORD_MAX_LENGTH
from {{ cookiecutter.project_slug }}.auth.rate_limit import refuse_while_locked
from {{ cookiecutter.project_slug }}.auth.schemas import RefreshRequest, TokenPair
from {{ cookiecutter.project_slug }}.db import SessionDep
from {{ cookiecutter.project_slug }}.errors import ConflictError, ForbiddenError, problems
from {{ cookiecutter.project_slug }}.mail.outbox import Outbox
from {{ cookiecutter.project_slug }}.settings import API_PREFIX
from {{ cookiecutter.project_slug }}.users import service as users
from {{ cookiecutter.project_slug }}.users.models import EMAIL_MAX_LENGTH
from {{ cookiecutter.project_slug }}.users.schemas import UserCreate

# Every operation uses the database (503 while it is down).
router = APIRouter(prefix=f"{API_PREFIX}/auth", tags=["auth"], responses=problems(503))

REGISTERED = Accepted(
    detail="A mail is on its way to the address: a link to confirm it, if the account is new."
)


@router.post("/register", status_code=status.HTTP_202_ACCEPTED, responses=problems(403, 429))
async def register(
    *,
    data: UserCreate,
    session: SessionDep,
    settings: AppSettings,
    limiter: RegistrationLimiter,
    mail_limits: MailLimits,
    address: ClientAddress,
    outbox: Outbox,
) -> Accepted:
    """Create an account (REGISTRATION_ENABLED=false turns this off) and mail a link that
    confirms its address. The answer is the same when the email has an account already, after
    the same work, so it tells nobody which addresses have accounts: that account's owner is
    mailed instead (at most MAIL_REQUESTS_MAX_PER_ACCOUNT times per window). Attempts are
    limited per client address (429): each one costs password hashing."""
    if not settings.registration_enabled:
        raise ForbiddenError("Registration is closed.")
    key = f"register:{address}"
    await refuse_while_locked(limiter, key)
    await limiter.record_failure(key)  # every attempt counts, not only failed ones
    try:
        user = await users.create_user(session, data.email, data.password)
    except ConflictError:  # the address has an account (the password was hashed all the same)
        if await mail_limits.admit_account(data.email):
            notice = await accounts.account_exists_mail(session, data.email)
            if notice is not None:
                outbox.send_later(notice)
        return REGISTERED
    outbox.send_later(await accounts.verification_mail(session, settings, user))
    return REGISTERED


# 403: REQUIRE_VERIFIED_EMAIL and an unverified address.
@router.post("/token", responses=problems(401, 403, 429))
async def login(
    *,
    # No control characters: no account has them, and PostgreSQL refuses NUL (a 500).
    username: Annotated[
        str,
        Form(
            max_length=EMAIL_MAX_LENGTH,
            pattern=r"^[^\x00-\x1f\x7f]*$",
            description="The email",
            examples=["you@example.com"],
        ),
    ],
    password: Annotated[str, Form(max_length=PASSWORD_MAX_LENGTH)],
    session: SessionDep,
    settings: AppSettings,
    limiter: Limiter,
    address: ClientAddress,
    grant_type: Annotated[str | None, Form(pattern="^password$", examples=["password"])] = None,
) -> TokenPair:
    """OAuth2 password grant (a form, as Swagger UI's Authorize button sends it)."""
    user = await service.authenticate(
        session, limiter, email=username, password=password, client_address=address
    )
    if settings.require_verified_email and not user.is_verified:
        # Only after the right password: the answer tells nothing to a stranger.
        raise ForbiddenError(
            "The email address is not verified yet: open the link mailed to it, or ask "
            f"for a new one at {API_PREFIX}/auth/verify/resend."
        )
    return await service.issue_tokens(session, settings, user)


@router.post("/refresh", responses=problems(401))
async def refresh(data: RefreshRequest, session: SessionDep, settings: AppSettings) -> TokenPair:
    """Trade a refresh token for a new pair. Each refresh token works once; presenting a
    spent one again ends its whole session."""
    return await service.rotate(session, settings, data.refresh_token)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,  # no body, so no Content-Type either
    responses=problems(401),
)
async def logout(data: RefreshRequest, session: SessionDep, settings: AppSettings) -> None:
    """End the session of this refresh token. Access tokens already issued stay valid
    until they expire (ACCESS_TOKEN_MINUTES)."""
    await service.logout(session, settings, data.refresh_token)
{%- else -%}
from __future__ import annotations

from fastapi import APIRouter

from {{ cookiecutter.project_slug }}.auth.dependencies import CurrentPrincipal
from {{ cookiecutter.project_slug }}.auth.schemas import PrincipalRead
from {{ cookiecutter.project_slug }}.errors import problems
from {{ cookiecutter.project_slug }}.settings import API_PREFIX

router = APIRouter(prefix=API_PREFIX, tags=["auth"])


# 503: the identity provider cannot be reached and no keys are cached.
@router.get("/me", responses=problems(401, 403, 503))
async def read_me(principal: CurrentPrincipal) -> PrincipalRead:
    return PrincipalRead(
        subject=principal.subject,
        scopes=sorted(principal.scopes),
        roles=sorted(principal.roles),
    )
{%- endif %}
