"""User use cases. Passwords are hashed in `auth.passwords`; the session commits in `SessionDep`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from {{ cookiecutter.project_slug }}.auth.passwords import check_password_strength, hash_password
from {{ cookiecutter.project_slug }}.db import PagedQuery, fetch_page, flush_or_conflict
from {{ cookiecutter.project_slug }}.users.models import User


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email.lower()))


def _email_taken(email: str) -> str:
    return f"An account for {email} already exists."


async def create_user(
    session: AsyncSession,
    email: str,
    password: str,
    *,
    is_superuser: bool = False,
    is_verified: bool = False,
) -> User:
    await check_password_strength(password, email=email)
    user = User(
        email=email.lower(),
        hashed_password=await hash_password(password),
        is_superuser=is_superuser,
        is_verified=is_verified,
    )
    session.add(user)
    await flush_or_conflict(session, _email_taken(user.email))
    return user


async def change_email(session: AsyncSession, user: User, email: str) -> None:
    """Give `user` the address its owner proved to hold (the link mailed there): verified.
    409 if another account took it in the meantime."""
    user.email = email.lower()
    user.is_verified = True
    await flush_or_conflict(session, _email_taken(user.email))


async def change_password(session: AsyncSession, user: User, password: str) -> None:
    await check_password_strength(password, email=user.email)
    user.hashed_password = await hash_password(password)
    await session.flush()


NEWEST_FIRST = PagedQuery(select(User).order_by(User.created_at.desc(), User.id))


async def list_users(session: AsyncSession, *, limit: int, offset: int) -> tuple[list[User], int]:
    rows, total = await fetch_page(session, NEWEST_FIRST, limit=limit, offset=offset)
    return [row.User for row in rows], total
