"""The floor for the items endpoints: bare FastAPI and asyncpg, no ORM, no middleware.

It answers GET and POST /api/v1/items like the generated service (same JSON, same token
check: the HS256 access token's signature, claims and type, then the user's row, which must
exist, be active and be at the token's version), on the same database, with one pooled
connection per request and the fewest statements that can do the work: the page and its
total in one. DATABASE_URL and SECRET_KEY come from the environment, like the service's.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated

import asyncpg
import jwt
from fastapi import FastAPI, Header, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

SECRET_KEY = os.environ["SECRET_KEY"]
DSN = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
ISSUER = AUDIENCE = os.environ["TOKEN_AUDIENCE"]
STANDARD_CLAIMS = ["sub", "exp", "iat", "jti", "iss", "aud"]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(DSN, min_size=5, max_size=15)
    yield
    await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


class ItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]
    description: Annotated[str, Field(max_length=1000, pattern=r"^[^\x00]*$")] | None = None


class ItemRead(BaseModel):
    id: uuid.UUID
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime


class ItemPage(BaseModel):
    items: list[ItemRead]
    total: int
    limit: int
    offset: int


async def authenticate(connection: asyncpg.Connection, authorization: str | None) -> uuid.UUID:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401)
    try:
        claims = jwt.decode(
            token,
            SECRET_KEY,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": [*STANDARD_CLAIMS, "type", "token_version"]},
        )
        user_id = uuid.UUID(str(claims["sub"]))
    except (jwt.PyJWTError, ValueError):
        raise HTTPException(401) from None
    if claims["type"] != "access":
        raise HTTPException(401)
    active = await connection.fetchval(
        "SELECT is_active FROM users WHERE id = $1 AND token_version = $2",
        user_id,
        claims["token_version"],
    )
    if not active:
        raise HTTPException(401)
    return user_id


@app.get("/api/v1/items")
async def list_items(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ItemPage:
    async with request.app.state.pool.acquire() as connection:
        owner = await authenticate(connection, authorization)
        rows = await connection.fetch(
            "SELECT id, name, description, created_at, updated_at, count(*) OVER () AS total "
            "FROM items WHERE owner_id = $1 ORDER BY created_at DESC, id LIMIT $2 OFFSET $3",
            owner,
            limit,
            offset,
        )
    return ItemPage(
        items=[ItemRead(**{k: row[k] for k in ItemRead.model_fields}) for row in rows],
        total=rows[0]["total"] if rows else 0,
        limit=limit,
        offset=offset,
    )


@app.post("/api/v1/items", status_code=201)
async def create_item(
    data: ItemCreate, request: Request, authorization: Annotated[str | None, Header()] = None
) -> ItemRead:
    async with request.app.state.pool.acquire() as connection:
        owner = await authenticate(connection, authorization)
        now = datetime.now(UTC)
        try:
            row = await connection.fetchrow(
                "INSERT INTO items (id, owner_id, name, description, created_at, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, $5) "
                "RETURNING id, name, description, created_at, updated_at",
                uuid.uuid4(),
                owner,
                data.name,
                data.description,
                now,
            )
        except asyncpg.UniqueViolationError:
            raise HTTPException(409) from None
    return ItemRead(**dict(row))
