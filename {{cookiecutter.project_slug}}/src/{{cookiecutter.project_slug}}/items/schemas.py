from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from {{ cookiecutter.project_slug }}.items.models import DESCRIPTION_MAX_LENGTH, NAME_MAX_LENGTH{% if cookiecutter.redis and cookiecutter.auth != "none" %}, OwnerId{% endif %}

# Printable text only: control characters (NUL above all) are refused by PostgreSQL or
# corrupt logs and terminals, so they are a 422 here rather than a 500 later. The examples
# fill Swagger UI's "Try it out" (it would make up a string matching the pattern).
ItemName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=NAME_MAX_LENGTH, pattern=r"^[^\x00-\x1f\x7f]+$"),
    Field(examples=["Notebook"]),
]
ItemDescription = Annotated[
    str,
    StringConstraints(max_length=DESCRIPTION_MAX_LENGTH, pattern=r"^[^\x00]*$"),
    Field(examples=["A5, dotted pages"]),
]


class ItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ItemName
    description: ItemDescription | None = None


class ItemUpdate(BaseModel):
    """Partial update: only the fields sent are changed; `name` cannot be set to null."""

    model_config = ConfigDict(extra="forbid")

    name: ItemName | None = None
    description: ItemDescription | None = None

    @field_validator("name")
    @classmethod
    def _name_is_not_null(cls, name: str | None) -> str:
        if name is None:
            raise ValueError("name cannot be null; leave it out to keep the current name")
        return name


class ItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime
{%- if cookiecutter.tasks != "none" %}
    archived_at: datetime | None
{%- endif %}
{%- if cookiecutter.redis and cookiecutter.auth != "none" %}


class CachedItem(ItemRead):
    """What the item cache holds: the item, and its owner (to check who may see it)."""

    owner_id: OwnerId
{%- endif %}


class ItemPage(BaseModel):
    items: list[ItemRead]
    total: int
    limit: int
    offset: int
