"""Login, token issue, rotation and revocation.

Every failure below is the same 401 (or a 429 once the failure limit is reached): the
caller learns nothing about which emails exist or why a token was refused.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import structlog
from sqlalchemy import ColumnElement, delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.auth.models import RefreshToken
from {{ cookiecutter.project_slug }}.auth.passwords import dummy_hash, verify_password
from {{ cookiecutter.project_slug }}.auth.rate_limit import LoginLimiter, refuse_while_locked
from {{ cookiecutter.project_slug }}.auth.schemas import TokenPair
from {{ cookiecutter.project_slug }}.auth.tokens import TokenClaims, decode_token, encode_token, lifetime
from {{ cookiecutter.project_slug }}.errors import ForbiddenError, InvalidTokenError, UnauthorizedError
from {{ cookiecutter.project_slug }}.settings import Settings
from {{ cookiecutter.project_slug }}.users import service as users
from {{ cookiecutter.project_slug }}.users.models import User

logger = structlog.stdlib.get_logger(__name__)

BAD_CREDENTIALS = "Incorrect email or password."


async def check_password(user: User | None, password: str) -> bool:
    """Verify `password` for `user`, or against a dummy hash when there is no such user, so
    an unknown email costs the same time as a wrong password. Upgrades outdated hashes."""
    valid, updated_hash = await verify_password(
        password, user.hashed_password if user is not None else dummy_hash()
    )
    if user is not None and valid and updated_hash is not None:
        user.hashed_password = updated_hash
    return user is not None and valid


async def authenticate(
    session: AsyncSession,
    limiter: LoginLimiter,
    *,
    email: str,
    password: str,
    client_address: str,
) -> User:
    await limiter.refuse_while_locked(email, client_address)
    user = await users.get_by_email(session, email)
    if not await check_password(user, password) or user is None or not user.is_active:
        await limiter.record_failure(email, client_address)
        logger.info("login_failed", client=client_address)
        raise UnauthorizedError(BAD_CREDENTIALS)
    await limiter.reset(email, client_address)
    return user


async def confirm_password(
    limiter: LoginLimiter, user: User, password: str, *, client_address: str
) -> None:
    """403 unless `password` is the signed-in `user`'s own, as account changes require;
    wrong guesses are limited like logins, per user and client address."""
    per_user = limiter.per_account_and_address
    key = f"password-check:{user.id}:{client_address}"
    await refuse_while_locked(per_user, key)
    if not await check_password(user, password):
        await per_user.record_failure(key)
        raise ForbiddenError("The current password is incorrect.")
    await per_user.reset(key)


async def issue_tokens(
    session: AsyncSession, settings: Settings, user: User, family_id: uuid.UUID | None = None
) -> TokenPair:
    """A new access token and a refresh token that joins `family_id` (a new family: a login)."""
    version = user.token_version
    access_token, _ = encode_token(settings, user.id, "access", uuid.uuid4(), version=version)
    refresh_id = uuid.uuid4()
    refresh_token, expires_at = encode_token(
        settings, user.id, "refresh", refresh_id, version=version
    )
    now = datetime.now(UTC)
    # Housekeeping: this user's expired tokens can never be presented again.
    await session.execute(
        delete(RefreshToken).where(RefreshToken.user_id == user.id, RefreshToken.expires_at < now)
    )
    session.add(
        RefreshToken(
            id=refresh_id,
            family_id=family_id or uuid.uuid4(),
            user_id=user.id,
            issued_at=now,
            expires_at=expires_at,
        )
    )
    await session.flush()
    return TokenPair(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_in=int(lifetime(settings, "access").total_seconds()),
    )


async def _issued_record(
    session: AsyncSession, settings: Settings, refresh_token: str
) -> tuple[RefreshToken, TokenClaims]:
    """The stored record of a valid refresh token that this service issued, and its claims;
    401 otherwise."""
    claims = decode_token(settings, refresh_token, "refresh")
    record = await session.get(RefreshToken, claims.token_id)
    if record is None or record.user_id != claims.subject:
        raise InvalidTokenError
    return record, claims


async def rotate(session: AsyncSession, settings: Settings, refresh_token: str) -> TokenPair:
    """Spend `refresh_token` and issue the next pair of its family."""
    record, claims = await _issued_record(session, settings, refresh_token)
    # Spend it atomically: of two concurrent requests with one token, exactly one wins.
    spent = await session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.id == record.id,
            RefreshToken.spent_at.is_(None),
            RefreshToken.revoked_at.is_(None),
        )
        .values(spent_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        if record.revoked_at is not None:  # ended already (logout, a new password): no alarm
            raise InvalidTokenError
        # Spent before, or by a concurrent request: a copy is in someone else's hands.
        logger.warning("refresh_token_reused", family_id=str(record.family_id))
        await revoke_family(session, record.family_id)
        await session.commit()  # the revocation must outlive the 401 below
        raise InvalidTokenError
    user = await session.get(User, record.user_id)
    # The version catches a rotation that ran alongside a new password: the pair it issued
    # escaped the revocation (its row was not committed yet) but names the former version.
    if user is None or not user.is_active or user.token_version != claims.version:
        raise InvalidTokenError
    return await issue_tokens(session, settings, user, family_id=record.family_id)


async def _revoke(session: AsyncSession, which: ColumnElement[bool]) -> None:
    await session.execute(
        update(RefreshToken)
        .where(which, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )


async def revoke_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    await _revoke(session, RefreshToken.family_id == family_id)


async def revoke_all(session: AsyncSession, user_id: uuid.UUID) -> None:
    """End every session of a user (after a password change, say): revoke its refresh tokens,
    and bump its token_version, which refuses every token issued so far (auth/dependencies.py)."""
    await _revoke(session, RefreshToken.user_id == user_id)
    # Incremented by the database, not set from the value read: two changes at once must
    # make two versions, or a token issued between them would survive the second.
    await session.execute(
        update(User).where(User.id == user_id).values(token_version=User.token_version + 1)
    )


async def logout(session: AsyncSession, settings: Settings, refresh_token: str) -> None:
    """Revoke the session (token family) that `refresh_token` belongs to."""
    record, _claims = await _issued_record(session, settings, refresh_token)
    await revoke_family(session, record.family_id)
