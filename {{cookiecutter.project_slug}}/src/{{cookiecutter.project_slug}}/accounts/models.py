from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from {{ cookiecutter.project_slug }}.db import Base, UTCDateTime, utcnow
from {{ cookiecutter.project_slug }}.users.models import EMAIL_MAX_LENGTH

Purpose = Literal["password_reset", "verify_email", "change_email"]


class AccountToken(Base):
    """A single-use token sent by mail. Only its SHA-256 is stored: a copy of the database
    resets no password. Spending a token deletes its row; issuing one deletes the user's
    earlier tokens of the same purpose, so only the newest link works."""

    __tablename__ = "account_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # The address the link was sent to. A reset or verification link works only while the
    # account still has it; a change-of-address link moves the account to it.
    email: Mapped[str] = mapped_column(String(EMAIL_MAX_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
