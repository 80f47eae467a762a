"""JSON Web Tokens with PyJWT: short-lived access tokens and rotating refresh tokens.

Both kinds are signed with SECRET_KEY (HS256) and carry `sub`, `exp`, `iat`, `jti`, `type`,
`iss`, `aud` and `token_version`. Decoding pins the algorithm, requires every one of those
claims and checks the type, so a refresh token is never accepted as an access token, nor the
reverse. `token_version` is the user's when the token was issued; signing in compares it with
the user's row, so a new password (which bumps it) ends the tokens issued before.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

import jwt

from {{ cookiecutter.project_slug }}.errors import InvalidTokenError
from {{ cookiecutter.project_slug }}.settings import Settings

ALGORITHM = "HS256"
# This service both issues and accepts its tokens.
ISSUER = "{{ cookiecutter.project_slug | replace('_', '-') }}"
AUDIENCE = "{{ cookiecutter.project_slug | replace('_', '-') }}"
# Required, `token_version` too: a token from before it existed (the code before migration
# 0004) cannot tell which password it was issued under, so it is refused, never taken as 0.
REQUIRED_CLAIMS = ["sub", "exp", "iat", "jti", "type", "iss", "aud", "token_version"]
# users.token_version is an INTEGER column: a larger claim could not even be compared there.
TOKEN_VERSION_MAX = 2**31 - 1

TokenType = Literal["access", "refresh"]
TOKEN_TYPES: tuple[TokenType, ...] = get_args(TokenType)


@dataclass(frozen=True)
class TokenClaims:
    subject: uuid.UUID
    token_id: uuid.UUID
    type: TokenType
    expires_at: datetime
    version: int


def lifetime(settings: Settings, token_type: TokenType) -> timedelta:
    if token_type == "access":  # noqa: S105 - a token kind
        return timedelta(minutes=settings.access_token_minutes)
    return timedelta(days=settings.refresh_token_days)


def encode_token(
    settings: Settings,
    subject: uuid.UUID,
    token_type: TokenType,
    token_id: uuid.UUID,
    *,
    version: int,
) -> tuple[str, datetime]:
    now = datetime.now(UTC)
    expires_at = now + lifetime(settings, token_type)
    claims = {
        "sub": str(subject),
        "exp": expires_at,
        "iat": now,
        "jti": str(token_id),
        "type": token_type,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "token_version": version,
    }
    token = jwt.encode(claims, settings.secret_key.get_secret_value(), algorithm=ALGORITHM)
    return token, expires_at


def _numeric_date(value: object) -> datetime:
    """RFC 7519's NumericDate: a JSON number (PyJWT also lets digit strings through), and
    one that a date can hold; ValueError, OverflowError or OSError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("not a NumericDate")
    return datetime.fromtimestamp(value, UTC)


def _token_version(value: object) -> int:
    """A JSON integer that users.token_version can hold (not `true`, which Python counts as
    1); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= TOKEN_VERSION_MAX:
        raise ValueError("not a token version")
    return value


# Verifying a token (base64, JSON, the HMAC, every claim) is a good part of an authenticated
# request's CPU, and a client sends the same access token with every request until it
# expires. So each process keeps the verified claims of the tokens it saw last, keyed by the
# exact token and key; only the expiry changes with time, and it is checked on every use.
# A token that fails verification is never kept: it is verified, and refused, every time.
VERIFIED_TOKENS_KEPT = 4096


@functools.lru_cache(maxsize=VERIFIED_TOKENS_KEPT)
def _verified_claims(key: str, token: str) -> TokenClaims:
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": REQUIRED_CLAIMS, "enforce_minimum_key_length": True},
        )
        token_type = claims["type"]
        if token_type not in TOKEN_TYPES:
            raise InvalidTokenError()
        _numeric_date(claims["iat"])
        return TokenClaims(
            subject=uuid.UUID(str(claims["sub"])),
            token_id=uuid.UUID(str(claims["jti"])),
            type=token_type,
            expires_at=_numeric_date(claims["exp"]),
            version=_token_version(claims["token_version"]),
        )
    # A signed token can still hold dates no datetime can (huge, infinite): OverflowError
    # and OSError come from the conversion, and are a 401 like any other bad token.
    except (jwt.PyJWTError, ValueError, OverflowError, OSError):
        raise InvalidTokenError() from None


def decode_token(settings: Settings, token: str, expected_type: TokenType) -> TokenClaims:
    """The verified claims, or InvalidTokenError whatever is wrong with the token."""
    claims = _verified_claims(settings.secret_key.get_secret_value(), token)
    # PyJWT checked the expiry when the token was first verified; a kept one expires later.
    if claims.type != expected_type or claims.expires_at <= datetime.now(UTC):
        raise InvalidTokenError()
    return claims
