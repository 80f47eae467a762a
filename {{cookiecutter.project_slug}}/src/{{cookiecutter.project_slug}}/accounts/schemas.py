from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from {{ cookiecutter.project_slug }}.users.schemas import Email, Password

# What `secrets.token_urlsafe` makes: URL-safe base64, 43 characters for 32 bytes.
MailToken = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_-]+$",
        examples=["Zm9yIGV4YW1wbGUgb25seSwgbm90IGEgcmVhbCB0b2tlbg"],
    ),
]


class EmailRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email


class PasswordResetConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: MailToken
    new_password: Password


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: MailToken


class Accepted(BaseModel):
    """The same answer whether or not the address has an account."""

    detail: str
