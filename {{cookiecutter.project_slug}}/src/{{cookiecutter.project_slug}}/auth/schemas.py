{%- if cookiecutter.auth == "jwt" -%}
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# Far above any token this service issues; bounds the work spent on garbage.
MAX_TOKEN_LENGTH = 2048


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a token kind, not a secret
    expires_in: int  # seconds until the access token expires


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: Annotated[str, Field(min_length=1, max_length=MAX_TOKEN_LENGTH)]
{%- else -%}
from __future__ import annotations

from pydantic import BaseModel


class PrincipalRead(BaseModel):
    """Who the verified token says the caller is."""

    subject: str
    scopes: list[str]
    roles: list[str]
{%- endif %}
