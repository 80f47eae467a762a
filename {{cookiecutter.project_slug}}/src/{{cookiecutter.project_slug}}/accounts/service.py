"""Password reset, email verification and changes of address: issuing, mailing and
spending single-use tokens.

Requests that name an email answer the same whatever the address (no account
enumeration; registration and changes of address too, see `account_exists_mail` and
`email_change_mail`); each runs the same lookup and clean-up either way (an account adds
one insert), and the mail leaves after the request's commit, outside the request
(`mail.outbox.Outbox`), so the mail server's time never shows.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import cast
from urllib.parse import quote

import structlog
from sqlalchemy import delete, false, or_
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.accounts.models import AccountToken, Purpose
from {{ cookiecutter.project_slug }}.auth import service as auth
from {{ cookiecutter.project_slug }}.auth.rate_limit import FailureLimiter, refuse_while_locked
from {{ cookiecutter.project_slug }}.errors import ProblemError
from {{ cookiecutter.project_slug }}.mail.render import render
from {{ cookiecutter.project_slug }}.mail.senders import Message
from {{ cookiecutter.project_slug }}.settings import Settings
from {{ cookiecutter.project_slug }}.users import service as users
from {{ cookiecutter.project_slug }}.users.models import User

logger = structlog.stdlib.get_logger(__name__)

TOKEN_BYTES = 32
# Paths of the pages (your front end's, under PUBLIC_BASE_URL) that the links open. The
# token travels in the fragment: browsers send it to no server, so it stays out of access
# logs and Referer headers; the page reads it and POSTs it to the API.
RESET_PAGE = "/reset-password"
VERIFY_PAGE = "/verify-email"


class InvalidLinkError(ProblemError):
    """One answer for a token that is unknown, spent, superseded, expired or tampered with."""

    status = HTTPStatus.BAD_REQUEST

    def __init__(self) -> None:
        super().__init__("The link is invalid, used or expired; ask for a new one.")


class MailLimiters:
    """Mail requests counted per client address (429 at the limit) and per email address
    (silently no more mail at the limit: a 429 there would tell which addresses exist and
    would let anyone fill a stranger's mailbox)."""

    def __init__(self, per_address: FailureLimiter, per_account: FailureLimiter) -> None:
        self.per_address = per_address
        self.per_account = per_account

    async def admit(self, email: str, client_address: str) -> bool:
        """429 for an address over its limit; False when `email` has had its share."""
        by_address = f"mail:{client_address}"
        await refuse_while_locked(self.per_address, by_address)
        await self.per_address.record_failure(by_address)  # every request counts
        return await self.admit_account(email)

    async def admit_account(self, email: str) -> bool:
        """False, quietly, when `email` has had its share of mail."""
        by_account = f"mail:{email}"
        if await self.per_account.retry_after(by_account) is not None:
            logger.info("mail_request_limited")
            return False
        await self.per_account.record_failure(by_account)
        return True


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link(settings: Settings, page: str, token: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}{page}#token={quote(token)}"


async def _forget_expired_and(session: AsyncSession, user: User | None, purpose: Purpose) -> None:
    """Delete every expired token, and `user`'s earlier tokens for `purpose` (superseded).
    Run for unknown addresses too: both answers then cost the same statements."""
    earlier = (
        (AccountToken.user_id == user.id) & (AccountToken.purpose == purpose)
        if user is not None
        else false()
    )
    await session.execute(
        delete(AccountToken)
        .where(or_(earlier, AccountToken.expires_at < datetime.now(UTC)))
        .execution_options(synchronize_session=False)
    )


async def _issue(
    session: AsyncSession,
    user: User,
    purpose: Purpose,
    lifetime: timedelta,
    *,
    email: str | None = None,
) -> str:
    """A new link's token for `user`, for its address or (a change of address) `email`."""
    await _forget_expired_and(session, user, purpose)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(
        AccountToken(
            token_hash=hash_token(token),
            purpose=purpose,
            user_id=user.id,
            email=email or user.email,
            expires_at=datetime.now(UTC) + lifetime,
        )
    )
    await session.flush()
    return token


async def _spend(
    session: AsyncSession, token: str, *purposes: Purpose
) -> tuple[User, Purpose, str]:
    """The user the token was issued to, what for and the address it was sent to, once: the
    token is gone afterwards. Atomic: of two requests with one token, one wins."""
    spent = await session.execute(
        delete(AccountToken)
        .where(
            AccountToken.token_hash == hash_token(token),
            AccountToken.purpose.in_(purposes),
            AccountToken.expires_at > datetime.now(UTC),
        )
        .returning(AccountToken.user_id, AccountToken.purpose, AccountToken.email)
        .execution_options(synchronize_session=False)
    )
    row = spent.one_or_none()
    if row is None:
        raise InvalidLinkError
    user = await session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise InvalidLinkError
    purpose = cast("Purpose", row.purpose)
    # A reset or verification link works only while the account has the address it went to.
    if purpose != "change_email" and user.email != row.email:
        raise InvalidLinkError
    return user, purpose, row.email


# --- email verification ----------------------------------------------------------------


async def verification_mail(session: AsyncSession, settings: Settings, user: User) -> Message:
    """A new verification link for `user`'s current address (earlier links stop working)."""
    lifetime = timedelta(hours=settings.email_verification_token_hours)
    token = await _issue(session, user, "verify_email", lifetime)
    return render(
        "verify_email",
        to=user.email,
        subject="Confirm your email address",
        link=link(settings, VERIFY_PAGE, token),
        hours=settings.email_verification_token_hours,
    )


def _address_in_use_notice(owner: User, *, moving: bool) -> Message | None:
    """What the owner of an address is mailed when someone asks to register it, or to move
    another account to it, in place of telling the caller that the address is taken."""
    if not owner.is_active:
        return None
    subject = "You already have an account"
    return render(
        "account_exists", to=owner.email, subject=subject, verified=owner.is_verified, moving=moving
    )


async def account_exists_mail(session: AsyncSession, email: str) -> Message | None:
    """What a registration for an address that has an account mails that account's owner."""
    owner = await users.get_by_email(session, email)
    return None if owner is None else _address_in_use_notice(owner, moving=False)


async def email_change_mail(
    session: AsyncSession, settings: Settings, email: str, *, user: User
) -> Message | None:
    """A request to move `user` to `email`: a link mailed there, which moves the account once
    opened (`verify_email`); until then the account keeps its address. An address that has an
    account already gets its owner a notice instead: the caller learns nothing either way,
    and each way runs the same lookup and clean-up (a link adds one insert)."""
    email = email.lower()
    owner = await users.get_by_email(session, email)
    if owner is not None:
        await _forget_expired_and(session, user, "change_email")
        return _address_in_use_notice(owner, moving=True)
    lifetime = timedelta(hours=settings.email_verification_token_hours)
    token = await _issue(session, user, "change_email", lifetime, email=email)
    return render(
        "verify_email",
        to=email,
        subject="Confirm your new email address",
        link=link(settings, VERIFY_PAGE, token),
        hours=settings.email_verification_token_hours,
    )


async def resend_verification(
    session: AsyncSession, settings: Settings, email: str
) -> Message | None:
    user = await users.get_by_email(session, email)
    if user is None or not user.is_active or user.is_verified:
        await _forget_expired_and(session, None, "verify_email")
        return None
    return await verification_mail(session, settings, user)


async def verify_email(session: AsyncSession, token: str) -> Message | None:
    """Confirm an address with the link mailed to it: the account's own, or the one it asked
    to move to, which it has from now on (409 if another account took it meanwhile). A move
    returns the notice for the former address: its owner learns of it, whoever asked."""
    user, purpose, email = await _spend(session, token, "verify_email", "change_email")
    if purpose == "change_email":
        former = user.email
        await users.change_email(session, user, email)
        subject = "Your email address was changed"
        return render("email_changed", to=former, subject=subject, new_email=user.email)
    user.is_verified = True
    await session.flush()
    return None


# --- password reset --------------------------------------------------------------------


async def password_reset_mail(
    session: AsyncSession, settings: Settings, email: str
) -> Message | None:
    """A reset link for the active account of `email`, or None when there is none."""
    user = await users.get_by_email(session, email)
    if user is None or not user.is_active:
        await _forget_expired_and(session, None, "password_reset")
        return None
    minutes = settings.password_reset_token_minutes
    token = await _issue(session, user, "password_reset", timedelta(minutes=minutes))
    return render(
        "password_reset",
        to=user.email,
        subject="Reset your password",
        link=link(settings, RESET_PAGE, token),
        minutes=minutes,
    )


async def reset_password(session: AsyncSession, token: str, new_password: str) -> None:
    """Set the password, end every session of the account (its refresh and access tokens
    are refused from now on). The mail reached its owner, so the address counts as verified
    too."""
    user, _purpose, _email = await _spend(session, token, "password_reset")
    await users.change_password(session, user, new_password)
    await auth.revoke_all(session, user.id)
    user.is_verified = True
    await session.flush()
