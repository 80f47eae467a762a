{%- if cookiecutter.auth == "jwt" -%}
"""Test helpers for built-in users: accounts without paying for argon2 each time, tokens."""

from __future__ import annotations

import uuid
from functools import cache

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from {{ cookiecutter.project_slug }}.auth.passwords import password_hash
from {{ cookiecutter.project_slug }}.auth.tokens import encode_token
from {{ cookiecutter.project_slug }}.settings import Settings
from {{ cookiecutter.project_slug }}.users.models import User

TEST_PASSWORD = "correct horse battery staple"
# One route behind each way of signing in: the user's row (current_user), and the few
# columns that deciding access needs (current_account).
SIGNED_IN = ("/api/v1/users/me", "/api/v1/items")


@cache
def hashed_test_password() -> str:
    return password_hash.hash(TEST_PASSWORD)  # once per run: argon2 is slow on purpose


def make_user(email: str, *, is_superuser: bool = False, is_active: bool = True) -> User:
    """A user whose password is TEST_PASSWORD, not yet added to any session."""
    return User(
        id=uuid.uuid4(),
        email=email,
        hashed_password=hashed_test_password(),
        is_superuser=is_superuser,
        is_active=is_active,
    )


async def add_user(
    app: FastAPI, email: str, *, is_superuser: bool = False, is_active: bool = True
) -> User:
    """`make_user`, committed (inside the test's transaction)."""
    sessionmaker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    async with sessionmaker() as session:
        user = make_user(email, is_superuser=is_superuser, is_active=is_active)
        session.add(user)
        await session.commit()
        return user


def access_headers(settings: Settings, user_id: uuid.UUID, version: int = 0) -> dict[str, str]:
    """A valid access token's header; `version` is the user's token_version (0 until a new
    password)."""
    token, _ = encode_token(settings, user_id, "access", uuid.uuid4(), version=version)
    return bearer(token)

{%- else -%}
"""An OpenID Connect provider inside the test process: its keys are made here and its
discovery document and JWKS are served through an httpx transport, so no network is used,
or over real HTTP on a loopback port (LoopbackProvider) where the bytes on the wire matter."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from functools import cache
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER_URL = "https://issuer.test/realms/main"
AUDIENCE = "{{ cookiecutter.project_slug | replace('_', '-') }}"
DISCOVERY_PATH = "/.well-known/openid-configuration"
DISCOVERY_URL = f"{ISSUER_URL}{DISCOVERY_PATH}"
JWKS_PATH = "/protocol/openid-connect/certs"
JWKS_URL = f"{ISSUER_URL}{JWKS_PATH}"


@cache
def rsa_key(number: int) -> rsa.RSAPrivateKey:
    """The n-th test key; made once per run (RSA key generation takes a while)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class FakeIssuer:
    def __init__(self, first_key: int = 0) -> None:
        """`first_key` picks other test keys: FakeIssuer(first_key=100) is an impostor."""
        self.first_key = first_key
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.requests: list[str] = []
        self.available = True
        self.delay = 0.0  # seconds each answer takes: a slow provider
        self.replaced: dict[str, Any] = {}  # URL -> a JSON body served instead of the real one
        self.rotate()

    def rotate(self) -> str:
        """Publish a new signing key, which signs from now on; returns its key id."""
        kid = f"key-{len(self.keys) + 1}"
        self.keys[kid] = rsa_key(self.first_key + len(self.keys))
        return kid

    @property
    def current_kid(self) -> str:
        return list(self.keys)[-1]

    def public_pem(self, kid: str | None = None) -> bytes:
        public_key = self.keys[kid or self.current_kid].public_key()
        return public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwks(self) -> dict[str, Any]:
        return {
            "keys": [
                {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig"}
                for kid, key in self.keys.items()
            ]
        }

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(str(request.url))
        if not self.available:
            return httpx.Response(503)
        if str(request.url) in self.replaced:
            return httpx.Response(200, json=self.replaced[str(request.url)])
        if str(request.url) == DISCOVERY_URL:
            return httpx.Response(200, json={"issuer": ISSUER_URL, "jwks_uri": JWKS_URL})
        if str(request.url) == JWKS_URL:
            return httpx.Response(200, json=self.jwks())
        return httpx.Response(404)

    async def handle_slowly(self, request: httpx.Request) -> httpx.Response:
        response = self.handle(request)
        await asyncio.sleep(self.delay)
        return response

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle_slowly)

    def claims(self, **changes: Any) -> dict[str, Any]:
        """Valid access-token claims with `changes` applied (None removes a claim)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER_URL,
            "aud": AUDIENCE,
            "sub": "user-1",
            "iat": now,
            "exp": now + 300,
            "scope": "openid items:read items:write",
        }
        claims.update(changes)
        return {key: value for key, value in claims.items() if value is not None}

    def token(
        self, kid: str | None = None, headers: dict[str, str] | None = None, **changes: Any
    ) -> str:
        """A token signed with the current key, its header naming `kid` (default: that key)
        plus `headers`; PyJWT sets `typ: JWT` unless `headers` names another."""
        key = self.keys[self.current_kid]
        header = {"kid": kid or self.current_kid, **(headers or {})}
        return jwt.encode(self.claims(**changes), key, "RS256", headers=header)

    def bearer(self, **changes: Any) -> dict[str, str]:
        return bearer(self.token(**changes))


class LoopbackProvider:
    """A FakeIssuer's discovery document and keys served over HTTP on 127.0.0.1, answers a
    test can spoil byte by byte: what a mock transport cannot show (a body that trickles
    in, one too large to read). Tokens name `url` as their issuer: `issuer.token(iss=url)`."""

    def __init__(self, issuer: FakeIssuer) -> None:
        self.issuer = issuer
        self.url = ""  # http://127.0.0.1:<port>, once serving
        self.bodies: dict[str, bytes] = {}  # path -> the body served
        self.pauses: dict[str, float] = {}  # path -> seconds between two bytes of its body
        self.requests: list[str] = []
        self.writers: set[asyncio.StreamWriter] = set()

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[LoopbackProvider]:
        server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        self.serve(DISCOVERY_PATH, {"issuer": self.url, "jwks_uri": self.url + JWKS_PATH})
        self.serve(JWKS_PATH, self.issuer.jwks())
        async with server:
            yield self
            for writer in self.writers:
                writer.transport.abort()  # answers still trickling: the server must not wait

    def serve(self, path: str, document: object) -> bytes:
        """Serve `document` as JSON at `path`; returns the body."""
        self.bodies[path] = json.dumps(document).encode()
        return self.bodies[path]

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        with contextlib.suppress(ConnectionError):
            path = (await reader.readline()).decode().split()[1]
            while (await reader.readline()).strip():
                pass  # the request's headers
            self.requests.append(path)
            body = self.bodies.get(path, b"")
            status = "200 OK" if path in self.bodies else "404 Not Found"
            head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            writer.write(f"{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode())
            pause = self.pauses.get(path, 0)
            chunks = [body[i : i + 1] for i in range(len(body))] if pause else [body]
            for chunk in chunks:  # byte by byte when the path trickles, else all at once
                writer.write(chunk)
                await writer.drain()
                await asyncio.sleep(pause)
        writer.close()
        self.writers.discard(writer)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge_hs256(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    """An HS256 token made by hand (PyJWT refuses to use a public key as an HMAC secret)."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    payload = _b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"
{%- endif %}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# What a 401 says when the request presented a token that was refused (RFC 6750, 3.1).
INVALID_TOKEN_CHALLENGE = 'Bearer error="invalid_token"'


def assert_asks_for_a_bearer_token(response: httpx.Response) -> None:
    """The answer to a request without credentials: a 401 problem naming the scheme to use."""
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"
