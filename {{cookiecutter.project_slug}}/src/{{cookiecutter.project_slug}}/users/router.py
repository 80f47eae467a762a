from __future__ import annotations

from functools import partial

from fastapi import APIRouter

from {{ cookiecutter.project_slug }}.accounts import service as accounts
from {{ cookiecutter.project_slug }}.accounts.router import MailRequestsDep
from {{ cookiecutter.project_slug }}.auth import service as auth
from {{ cookiecutter.project_slug }}.auth.dependencies import (
    ClientAddress,
    CurrentUser,
    Limiter,
    Superuser,
)
from {{ cookiecutter.project_slug }}.db import PageLimit, PageOffset, SessionDep
from {{ cookiecutter.project_slug }}.errors import problems
from {{ cookiecutter.project_slug }}.settings import API_PREFIX
from {{ cookiecutter.project_slug }}.users import service
from {{ cookiecutter.project_slug }}.users.schemas import UserPage, UserRead, UserUpdate

# Every operation needs a signed-in user (401) and the database (503 while it is down).
router = APIRouter(prefix=f"{API_PREFIX}/users", tags=["users"], responses=problems(401, 503))


@router.get("/me")
async def read_me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)


# 403: a wrong current password; 429: too many of them, or of requests for mail.
@router.patch("/me", responses=problems(403, 429))
async def update_me(
    *,
    data: UserUpdate,
    user: CurrentUser,
    session: SessionDep,
    limiter: Limiter,
    address: ClientAddress,
    mail: MailRequestsDep,
) -> UserRead:
    """Change one's password or email; `current_password` must be right. A new password
    ends every session of the account, this one included: every refresh and access token
    issued before it is refused (401), so the caller signs in again with the new password.
    A new email is the account's once the link mailed to it is opened (`POST /auth/verify`);
    until then the account keeps its address, and the answer is the same whether or not the
    new one has an account (its owner is told instead). Mail requests are limited as those
    of /auth are."""
    await auth.confirm_password(limiter, user, data.current_password, client_address=address)
    if data.email is not None and data.email != user.email:  # both lower-cased
        await mail.mail(data.email, partial(accounts.email_change_mail, user=user))
    if data.password is not None:
        await service.change_password(session, user, data.password)
        await auth.revoke_all(session, user.id)
    await session.refresh(user)
    return UserRead.model_validate(user)


@router.get("", responses=problems(403))
async def list_users(
    _superuser: Superuser,
    session: SessionDep,
    limit: PageLimit = 20,
    offset: PageOffset = 0,
) -> UserPage:
    users, total = await service.list_users(session, limit=limit, offset=offset)
    # Validated once, from the rows' attributes (FastAPI passes the model through as is).
    page = {"users": users, "total": total, "limit": limit, "offset": offset}
    return UserPage.model_validate(page, from_attributes=True)
