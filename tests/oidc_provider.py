"""A minimal OpenID Connect provider on 127.0.0.1, for the real-process test of `auth=oidc`:
it serves the discovery document and its JWKS over HTTP, and signs tokens."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.loopback_server import QuietHandler, serving

KID = "harness-key"
AUDIENCE = "harness-api"


class Provider:
    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def documents(self) -> dict[str, dict[str, Any]]:
        jwk = {**RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True), "kid": KID}
        return {
            "/.well-known/openid-configuration": {
                "issuer": self.issuer,
                "jwks_uri": f"{self.issuer}/jwks",
            },
            "/jwks": {"keys": [jwk]},
        }

    def token(self, subject: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": subject,
            "iat": now,
            "exp": now + 300,
            "scope": "openid items:read items:write",  # what the items routes require
        }
        return jwt.encode(claims, self.key, "RS256", headers={"kid": KID})


@contextmanager
def running_provider() -> Iterator[Provider]:
    documents: dict[str, dict[str, Any]] = {}

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            body = documents.get(self.path)
            payload = json.dumps(body).encode()
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    with serving(Handler) as port:
        provider = Provider(f"http://127.0.0.1:{port}")
        documents.update(provider.documents())
        yield provider
