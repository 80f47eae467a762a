"""Verification of access tokens issued by an external OpenID Connect provider.

The provider's signing keys are found through its discovery document
(`<issuer>/.well-known/openid-configuration` -> `jwks_uri`, which must be https unless the
issuer itself may be plain http) and cached. A token signed by a key we have not seen (the
provider rotated its keys) triggers one refetch, at most once per cooldown, so random
`kid`s cannot make us hammer the provider. Refetches are single-flight (concurrent callers
share one), and a token whose key is cached never waits for one: a stale cache is refreshed
in the background while its keys keep answering. Fetching uses an async HTTP client:
PyJWT's own PyJWKClient would block the event loop while it downloads. A fetch has an
overall deadline and a size bound, and anything wrong with the provider's answer counts as
the provider being down (a 503 while no keys are cached), never as a 500.

Only asymmetric algorithms are accepted, and each key only with its own algorithm: `none`
and HS256 forged with the public key (algorithm confusion) are refused. ID tokens are not
access tokens: a token whose `typ` header is not an access token's (RFC 9068 `at+jwt`; the
generic `JWT` or none is tolerated unless OIDC_REQUIRE_AT_JWT_TYP), or that carries an ID
token's claims (`nonce`, `at_hash`, `c_hash`, Keycloak's `typ: ID`), is refused unless
OIDC_ACCEPT_ID_TOKEN_MARKERS says the provider puts them in access tokens too.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import structlog
from jwt import PyJWK

from {{ cookiecutter.project_slug }}.errors import ForbiddenError, InvalidTokenError, ServiceUnavailableError
from {{ cookiecutter.project_slug }}.settings import Settings, is_https_or_loopback

logger = structlog.stdlib.get_logger(__name__)

ALLOWED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]
# OpenID Connect Core 1.0, section 2: `sub` is at most 255 ASCII characters. Control
# characters are refused too: the subject is stored, and PostgreSQL refuses NUL.
SUBJECT_MAX_LENGTH = 255
PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")
CLOCK_SKEW_SECONDS = 30  # tolerated difference between the provider's clock and ours
# RFC 9068's media type for access tokens, and the generic one most providers still send.
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
GENERIC_TOKEN_TYPES = frozenset({"jwt", "application/jwt"})
# Claims that only ID tokens carry (OpenID Connect Core 1.0, sections 2 and 3.3.2.11).
ID_TOKEN_CLAIMS = ("nonce", "at_hash", "c_hash")
# A discovery document or key set is a few KiB; a provider (or whatever answers in its name)
# that sends more is broken, and reading it all would cost the worker that much memory.
MAX_DOCUMENT_BYTES = 1024 * 1024

KeySet = tuple[PyJWK, ...]


@dataclass(frozen=True)
class Principal:
    """The caller, as the provider vouches for it."""

    subject: str
    scopes: frozenset[str]
    roles: frozenset[str]
    claims: Mapping[str, Any] = field(repr=False, compare=False)


def _words(value: object) -> set[str]:
    """A space-separated string or a list of strings, as providers send scopes and roles."""
    if isinstance(value, str):
        return set(value.split())
    if isinstance(value, list):
        return {item for item in value if isinstance(item, str)}
    return set()


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    # `scope` is the OAuth 2 claim (RFC 8693); Entra ID and Okta use `scp`. Roles come from
    # `roles` (Entra ID) or Keycloak's `realm_access.roles`.
    scopes = _words(claims.get("scope")) | _words(claims.get("scp"))
    realm_access = claims.get("realm_access")
    keycloak_roles = realm_access.get("roles") if isinstance(realm_access, dict) else None
    roles = _words(claims.get("roles")) | _words(keycloak_roles)
    return Principal(
        subject=str(claims["sub"]),
        scopes=frozenset(scopes),
        roles=frozenset(roles),
        claims=claims,
    )


def check_scopes(principal: Principal, needed: frozenset[str]) -> None:
    """403, naming what is missing, unless the principal's token grants every scope needed."""
    if missing := needed - principal.scopes:
        scopes = " ".join(sorted(missing))
        # RFC 6750 section 3.1: a client that can ask for more scopes learns which.
        challenge = f'Bearer error="insufficient_scope", scope="{scopes}"'
        raise ForbiddenError(
            f"The token lacks the scope(s): {scopes}.", headers={"WWW-Authenticate": challenge}
        )


class OIDCVerifier:
    def __init__(
        self,
        issuer: str,
        audience: str,
        http: httpx.AsyncClient,
        *,
        required_scopes: Iterable[str] = (),
        jwks_cache_seconds: float = 3600,
        refetch_cooldown_seconds: float = 30,
        fetch_timeout_seconds: float = 5,
        allow_plain_http_jwks: bool = False,
        require_at_jwt_typ: bool = False,
        accept_id_token_markers: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer  # exactly as in the tokens' `iss` (Auth0's ends with a slash)
        self.audience = audience
        self.http = http
        self.required_scopes = frozenset(required_scopes)
        self.jwks_cache_seconds = jwks_cache_seconds
        self.refetch_cooldown_seconds = refetch_cooldown_seconds
        self.fetch_timeout_seconds = fetch_timeout_seconds
        self.allow_plain_http_jwks = allow_plain_http_jwks
        self.require_at_jwt_typ = require_at_jwt_typ
        self.accept_id_token_markers = accept_id_token_markers
        self.clock = clock
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self._retry_at = float("-inf")
        self._refreshing: asyncio.Task[KeySet | None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.AsyncClient) -> OIDCVerifier:
        return cls(
            settings.oidc_issuer,
            settings.oidc_audience,
            http,
            required_scopes=settings.oidc_required_scopes,
            jwks_cache_seconds=settings.oidc_jwks_cache_seconds,
            fetch_timeout_seconds=settings.oidc_http_timeout_seconds,
            # Where the issuer itself may be plain http (outside production), so may its keys.
            allow_plain_http_jwks=not is_https_or_loopback(settings.oidc_issuer)
            and settings.environment != "production",
            require_at_jwt_typ=settings.oidc_require_at_jwt_typ,
            accept_id_token_markers=settings.oidc_accept_id_token_markers,
        )

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; 401 for any invalid one, 403 when it lacks a
        required scope, 503 when the provider cannot be reached and no keys are cached."""
        if not self.issuer or not self.audience:
            raise ServiceUnavailableError("OIDC_ISSUER and OIDC_AUDIENCE must be set.")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidTokenError() from None
        if not self._is_access_token_type(header.get("typ")):
            raise InvalidTokenError()
        key = await self._signing_key(header.get("kid"))
        if key is None or key.algorithm_name not in ALLOWED_ALGORITHMS:
            raise InvalidTokenError()
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[key.algorithm_name],
                audience=self.audience,
                issuer=self.issuer,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError:
            raise InvalidTokenError() from None
        subject = str(claims["sub"])
        if len(subject) > SUBJECT_MAX_LENGTH or not PRINTABLE_ASCII.fullmatch(subject):
            raise InvalidTokenError()
        if not self.accept_id_token_markers and _is_id_token(claims):
            raise InvalidTokenError()
        principal = principal_from_claims(claims)
        check_scopes(principal, self.required_scopes)
        return principal

    def _is_access_token_type(self, typ: object) -> bool:
        if typ is None:
            return not self.require_at_jwt_typ
        if not isinstance(typ, str):
            return False
        typ = typ.lower()
        return typ in ACCESS_TOKEN_TYPES or (
            typ in GENERIC_TOKEN_TYPES and not self.require_at_jwt_typ
        )

    async def _signing_key(self, kid: object) -> PyJWK | None:
        keys = self._keys
        if keys is None:
            keys = await self._refresh()
        elif self.clock() - self._fetched_at >= self.jwks_cache_seconds:
            self._start_refresh()  # in the background: the keys we have answer meanwhile
        key = _find(keys, kid)
        if key is None and self.clock() - self._fetched_at >= self.refetch_cooldown_seconds:
            key = _find(await self._refresh(), kid)  # the provider rotated keys
        return key

    def _start_refresh(self) -> asyncio.Task[KeySet | None]:
        """The refresh under way, or a new one: one at a time, shared by every caller."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._fetch_or_keep())
        return self._refreshing

    async def _refresh(self) -> KeySet:
        # shield: a caller that gives up (a client disconnect) must not cancel the others'.
        keys = await asyncio.shield(self._start_refresh())
        if keys is None:
            raise ServiceUnavailableError(
                "The identity provider cannot be reached; retry later.",
                headers={"Retry-After": str(int(self.refetch_cooldown_seconds) or 1)},
            )
        return keys

    async def _fetch_or_keep(self) -> KeySet | None:
        """Fresh keys, or (the fetch failed) the ones we have, which keep working."""
        now = self.clock()
        # After a failed fetch, wait a cooldown before the next one: while the provider is
        # down, requests must not queue behind one timeout after another.
        if now >= self._retry_at:
            try:
                # httpx's timeout bounds each read, not the download: a provider trickling
                # its body would hold every caller waiting on this fetch for as long as it
                # likes. The deadline bounds discovery and keys together.
                async with asyncio.timeout(self.fetch_timeout_seconds):
                    self._keys = await self._fetch_key_set()
                self._fetched_at = now
            # Whatever the provider's answer breaks (an invalid URL, JSON nested too deep, a
            # key PyJWT chokes on) is the provider failing: a 503 and the cooldown, not a 500
            # that would let made-up key ids refetch on every request. Cancellation (shutdown)
            # is a BaseException and still goes through.
            except Exception as exc:
                self._retry_at = now + self.refetch_cooldown_seconds
                logger.warning(
                    "oidc_keys_fetch_failed", error=repr(exc), cached=self._keys is not None
                )
        return self._keys

    async def settle(self) -> None:
        """Wait for a background refresh to end (tests use it)."""
        if self._refreshing is not None:
            await asyncio.wait([self._refreshing])

    async def aclose(self) -> None:
        """Stop a refresh under way (at shutdown, before the HTTP client closes)."""
        if self._refreshing is not None:
            self._refreshing.cancel()
            await asyncio.wait([self._refreshing])

    async def _fetch_key_set(self) -> KeySet:
        discovery_url = f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"
        discovery = await self._get_json(discovery_url)
        if (
            not isinstance(discovery, dict)
            or discovery.get("issuer") != self.issuer
            or not isinstance(discovery.get("jwks_uri"), str)
        ):
            raise ValueError(f"{discovery_url} does not describe {self.issuer}")
        jwks_uri = discovery["jwks_uri"]
        if not (self.allow_plain_http_jwks or is_https_or_loopback(jwks_uri)):
            raise ValueError(f"{discovery_url} names a jwks_uri that is not https")
        jwks = await self._get_json(jwks_uri)
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise ValueError(f"{jwks_uri} is not a JSON Web Key Set")
        keys = _signing_keys(jwks["keys"])
        if not keys:
            raise ValueError(f"{jwks_uri} has no usable signing key")
        return keys

    async def _get_json(self, url: str) -> object:
        """The JSON document at `url`, read no further than MAX_DOCUMENT_BYTES."""
        body = bytearray()
        async with self.http.stream("GET", url) as response:
            response.raise_for_status()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise ValueError(f"{url} is larger than {MAX_DOCUMENT_BYTES} bytes")
        return json.loads(body)


def _signing_keys(entries: list[object]) -> KeySet:
    """The signature keys PyJWT can load, key by key: one key it cannot load (an unknown
    algorithm, a malformed field) must not disable the provider's good keys."""
    keys: list[PyJWK] = []
    skipped: list[str] = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue  # an encryption key, or not a key at all
        try:
            keys.append(PyJWK(entry))
        except Exception as exc:  # any malformed key is skipped the same way
            # The exception's type only: PyJWT's messages may quote the whole key.
            skipped.append(f"{str(entry.get('kid'))[:64]}: {type(exc).__name__}")
    if skipped:
        logger.warning("oidc_keys_skipped", keys=skipped)
    return tuple(keys)


def _find(keys: KeySet, kid: object) -> PyJWK | None:
    if kid is None and len(keys) == 1:
        return keys[0]  # a provider with a single key may leave `kid` out
    return next((key for key in keys if key.key_id == kid), None)


def _is_id_token(claims: Mapping[str, Any]) -> bool:
    return any(name in claims for name in ID_TOKEN_CLAIMS) or claims.get("typ") == "ID"
