from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, field_validator

from {{ cookiecutter.project_slug }}.auth.passwords import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH
from {{ cookiecutter.project_slug }}.users.models import EMAIL_MAX_LENGTH

# Lowercased as a whole: one account per address, whatever case it is typed in.
Email = Annotated[EmailStr, Field(max_length=EMAIL_MAX_LENGTH), AfterValidator(str.lower)]


def _not_blank(password: str) -> str:
    if not password.strip():
        raise ValueError("must not be only whitespace")
    return password


# No composition rules, as NIST SP 800-63B advises: a length, and (in the service, off the
# event loop) a refusal of passwords that are easy to guess.
Password = Annotated[
    str,
    Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH),
    AfterValidator(_not_blank),
]
# What a client presents as its current password: any length up to the bound.
PresentedPassword = Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    password: Password


class UserUpdate(BaseModel):
    """A change to one's own account; the current password confirms it is really them."""

    model_config = ConfigDict(extra="forbid")

    current_password: PresentedPassword
    email: Email | None = None
    password: Password | None = None

    @field_validator("email", "password")
    @classmethod
    def _not_null(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("cannot be null; leave it out to keep the current value")
        return value


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    is_active: bool
    is_superuser: bool
    is_verified: bool
    created_at: datetime


class UserPage(BaseModel):
    users: list[UserRead]
    total: int
    limit: int
    offset: int
