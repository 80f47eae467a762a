from __future__ import annotations

import uuid

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from {{ cookiecutter.project_slug }}.db import Base, TimestampMixin

NAME_MAX_LENGTH = 100
DESCRIPTION_MAX_LENGTH = 1000


class Item(TimestampMixin, Base):
    __tablename__ = "items"

    # Random ids: not guessable, and safe to create on any node.
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(NAME_MAX_LENGTH), unique=True)
    description: Mapped[str | None] = mapped_column(String(DESCRIPTION_MAX_LENGTH))
