from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.accounts import service
from {{ cookiecutter.project_slug }}.accounts.schemas import (
    Accepted,
    EmailRequest,
    PasswordResetConfirm,
    VerifyRequest,
)
from {{ cookiecutter.project_slug }}.auth.dependencies import AppSettings, ClientAddress, MailLimits
from {{ cookiecutter.project_slug }}.db import SessionDep
from {{ cookiecutter.project_slug }}.errors import NotFoundError, problems
from {{ cookiecutter.project_slug }}.mail.outbox import Outbox
from {{ cookiecutter.project_slug }}.mail.senders import Message
from {{ cookiecutter.project_slug }}.settings import API_PREFIX, Settings

# Every operation uses the database (503 while it is down).
router = APIRouter(prefix=f"{API_PREFIX}/auth", tags=["auth"], responses=problems(503))

RESET_ACCEPTED = Accepted(
    detail="If an account uses this address, a link to reset its password is on its way."
)
RESEND_ACCEPTED = Accepted(
    detail="If an unverified account uses this address, a new confirmation link is on its way."
)

# Makes the mail for an address, or None when that address gets none.
Compose = Callable[[AsyncSession, Settings, str], Awaitable[Message | None]]


class MailRequests:
    """What a request for mail needs: the limits, the session, and the way out."""

    def __init__(
        self,
        *,
        session: SessionDep,
        settings: AppSettings,
        limiters: MailLimits,
        address: ClientAddress,
        outbox: Outbox,
    ) -> None:
        self.session = session
        self.settings = settings
        self.limiters = limiters
        self.address = address
        self.outbox = outbox

    async def mail(self, email: str, compose: Compose) -> None:
        """429 past the client address's limit; otherwise the composed mail, if any and if
        the address has not had its share, leaves after the response."""
        if await self.limiters.admit(email, self.address):
            message = await compose(self.session, self.settings, email)
            if message is not None:
                self.outbox.send_later(message)


MailRequestsDep = Annotated[MailRequests, Depends()]


def _require_reset_enabled(settings: AppSettings) -> None:
    if not settings.password_reset_enabled:
        raise NotFoundError("Password reset is turned off.")


ResetEnabled = Depends(_require_reset_enabled)


@router.post(
    "/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(404, 429),
    dependencies=[ResetEnabled],
)
async def request_password_reset(data: EmailRequest, requests: MailRequestsDep) -> Accepted:
    """Mail a single-use link (PASSWORD_RESET_TOKEN_MINUTES) to reset the password. The
    answer is the same whether or not the address has an account."""
    await requests.mail(data.email, service.password_reset_mail)
    return RESET_ACCEPTED


@router.post(
    "/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,  # no body, so no Content-Type either
    responses=problems(400, 404),
    dependencies=[ResetEnabled],
)
async def confirm_password_reset(data: PasswordResetConfirm, session: SessionDep) -> None:
    """Set a new password with the token from the mail; the token works once, and every
    session of the account ends (all refresh tokens are revoked)."""
    await service.reset_password(session, data.token, data.new_password)


# 409: the link moves an account to an address that another account has taken meanwhile.
@router.post(
    "/verify",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problems(400, 409),
)
async def verify_email(data: VerifyRequest, session: SessionDep, outbox: Outbox) -> None:
    """Confirm an email address with the token from the mail (once): the account's own, or
    the new one asked for in `PATCH /users/me`, which becomes the account's (the former
    address is told)."""
    notice = await service.verify_email(session, data.token)
    if notice is not None:
        outbox.send_later(notice)


@router.post("/verify/resend", status_code=status.HTTP_202_ACCEPTED, responses=problems(429))
async def resend_verification(data: EmailRequest, requests: MailRequestsDep) -> Accepted:
    """Mail a new confirmation link (earlier ones stop working). The answer is the same
    whether or not the address has an account, or is verified already."""
    await requests.mail(data.email, service.resend_verification)
    return RESEND_ACCEPTED
