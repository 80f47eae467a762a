from __future__ import annotations

import uuid
{%- if cookiecutter.tasks != "none" %}
from datetime import datetime
{%- endif %}

from sqlalchemy import {% if cookiecutter.auth == "jwt" %}ForeignKey, {% endif %}String{% if cookiecutter.auth != "none" %}, UniqueConstraint{% endif %}
from sqlalchemy.orm import Mapped, mapped_column

{% if cookiecutter.auth == "oidc" -%}
from {{ cookiecutter.project_slug }}.auth.oidc import SUBJECT_MAX_LENGTH
{% endif -%}
from {{ cookiecutter.project_slug }}.db import Base, TimestampMixin{% if cookiecutter.tasks != "none" %}, UTCDateTime{% endif %}

NAME_MAX_LENGTH = 100
DESCRIPTION_MAX_LENGTH = 1000
{%- if cookiecutter.auth == "jwt" %}
OwnerId = uuid.UUID  # the owning user's id
{%- elif cookiecutter.auth == "oidc" %}
OwnerId = str  # the `sub` of the owner's tokens
{%- endif %}


class Item(TimestampMixin, Base):
    __tablename__ = "items"
{%- if cookiecutter.auth != "none" %}
    # Names are unique per owner: two users may both have a "hammer".
    __table_args__ = (UniqueConstraint("owner_id", "name"),)
{%- endif %}

    # Random ids: not guessable, and safe to create on any node.
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
{%- if cookiecutter.auth == "jwt" %}
    owner_id: Mapped[OwnerId] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
{%- elif cookiecutter.auth == "oidc" %}
    owner_id: Mapped[OwnerId] = mapped_column(String(SUBJECT_MAX_LENGTH))
{%- endif %}
    name: Mapped[str] = mapped_column(String(NAME_MAX_LENGTH){% if cookiecutter.auth == "none" %}, unique=True{% endif %})
    description: Mapped[str | None] = mapped_column(String(DESCRIPTION_MAX_LENGTH))
{%- if cookiecutter.tasks != "none" %}
    # Set by the `archive_item` task (items/tasks.py), once.
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
{%- endif %}
