from __future__ import annotations

import uuid

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from {{ cookiecutter.project_slug }}.db import Base, TimestampMixin

EMAIL_MAX_LENGTH = 320  # RFC 3696 with erratum 1690: 64 + 1 + 255


class User(TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # Stored lowercased, so uniqueness and lookups ignore case on every backend.
    email: Mapped[str] = mapped_column(String(EMAIL_MAX_LENGTH), unique=True)
    hashed_password: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    is_superuser: Mapped[bool] = mapped_column(default=False)
    # The account's owner opened a link mailed to `email` (accounts/, email verification).
    is_verified: Mapped[bool] = mapped_column(default=False)
    # Access tokens carry the value they were issued under and are refused once it changes:
    # a new password bumps it (auth.service.revoke_all), which ends every access token so far.
    token_version: Mapped[int] = mapped_column(default=0)
