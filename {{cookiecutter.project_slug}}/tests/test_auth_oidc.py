"""Tokens from an external OpenID Connect provider: verified for real against the
in-process fake provider, including the classic attacks."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest

from {{ cookiecutter.project_slug }}.auth.dependencies import require_scopes
from {{ cookiecutter.project_slug }}.auth.oidc import OIDCVerifier, Principal
from {{ cookiecutter.project_slug }}.errors import ForbiddenError, ServiceUnavailableError, UnauthorizedError
from {{ cookiecutter.project_slug }}.settings import Settings
from tests.auth_support import (
    AUDIENCE,
    DISCOVERY_URL,
    ISSUER_URL,
    JWKS_URL,
    FakeIssuer,
    assert_asks_for_a_bearer_token,
    bearer,
    forge_hs256,
)
from tests.support import make_settings

ME = "/api/v1/me"


def verifier(http: httpx.AsyncClient, **options: Any) -> OIDCVerifier:
    return OIDCVerifier(ISSUER_URL, AUDIENCE, http, **options)


async def test_me_is_the_verified_principal(client: httpx.AsyncClient) -> None:
    response = await client.get(ME)
    assert response.status_code == 200
    assert response.json() == {
        "subject": "user-1",
        "scopes": ["items:read", "openid"],
        "roles": [],
    }


async def test_scopes_and_roles_are_read_from_the_usual_claims(
    anonymous: httpx.AsyncClient, issuer: FakeIssuer
) -> None:
    token = issuer.token(scope=None, scp=["a", "b"], roles=["admin"], realm_access={"roles": ["r"]})
    body = (await anonymous.get(ME, headers=bearer(token))).json()
    assert (body["scopes"], body["roles"]) == (["a", "b"], ["admin", "r"])


async def test_no_token_is_a_401_that_says_how_to_authenticate(
    anonymous: httpx.AsyncClient,
) -> None:
    assert_asks_for_a_bearer_token(await anonymous.get(ME))


def attacks(issuer: FakeIssuer) -> dict[str, str]:
    now = int(time.time())
    impostor = FakeIssuer(first_key=100)  # the same claims and key ids, other keys
    return {
        "malformed": "not.a.jwt",
        "garbage": "x" * 50,
        "alg none": jwt.encode(issuer.claims(), "", "none", headers={"kid": issuer.current_kid}),
        "another key, same kid": impostor.token(),
        "unknown kid": impostor.token(kid="made-up"),
        "HS256 with the public key": forge_hs256(
            issuer.claims(), issuer.public_pem(), issuer.current_kid
        ),
        "expired": issuer.token(iat=now - 3600, exp=now - 600),
        "not yet issued": issuer.token(iat=now + 3600),
        "wrong audience": issuer.token(aud="another-api"),
        "wrong issuer": issuer.token(iss="https://evil.example.com"),
        "no subject": issuer.token(sub=None),
        "empty subject": issuer.token(sub=""),
        "subject too long": issuer.token(sub="s" * 256),
        "subject with a NUL": issuer.token(sub="user\x00"),
        "subject with a newline": issuer.token(sub="user\n1"),
        "no expiry": issuer.token(exp=None),
    }


async def test_forged_and_invalid_tokens_are_refused(
    anonymous: httpx.AsyncClient, issuer: FakeIssuer
) -> None:
    assert (await anonymous.get(ME, headers=issuer.bearer())).status_code == 200
    for name, token in attacks(issuer).items():
        response = await anonymous.get(ME, headers=bearer(token))
        assert response.status_code == 401, name


async def test_keys_are_fetched_once_and_cached(
    client: httpx.AsyncClient, issuer: FakeIssuer
) -> None:
    for _ in range(3):
        assert (await client.get(ME)).status_code == 200
    assert issuer.requests == [DISCOVERY_URL, JWKS_URL]


async def test_a_rotated_key_is_fetched_once_then_unknown_kids_wait() -> None:
    issuer = FakeIssuer()
    now = [0.0]
    async with httpx.AsyncClient(transport=issuer.transport) as http:
        check = verifier(http, refetch_cooldown_seconds=30, clock=lambda: now[0])
        await check.verify(issuer.token())
        now[0] += 60
        issuer.rotate()
        assert (await check.verify(issuer.token())).subject == "user-1"
        assert len(issuer.requests) == 4  # discovery and keys, twice

        # A flood of made-up key ids costs at most one refetch per cooldown.
        for attempt in range(5):
            with pytest.raises(UnauthorizedError):
                await check.verify(issuer.token(kid=f"made-up-{attempt}"))
        assert len(issuer.requests) == 4
        now[0] += 60
        with pytest.raises(UnauthorizedError):
            await check.verify(issuer.token(kid="made-up-again"))
        assert len(issuer.requests) == 6


async def test_an_unreachable_provider_is_a_503_until_keys_are_cached() -> None:
    issuer = FakeIssuer()
    issuer.available = False
    now = [0.0]
    async with httpx.AsyncClient(transport=issuer.transport) as http:
        check = verifier(
            http, jwks_cache_seconds=10, refetch_cooldown_seconds=30, clock=lambda: now[0]
        )
        with pytest.raises(ServiceUnavailableError):
            await check.verify(issuer.token())
        attempts = len(issuer.requests)
        with pytest.raises(ServiceUnavailableError):  # at once: no new attempt in the cooldown
            await check.verify(issuer.token())
        assert len(issuer.requests) == attempts

        issuer.available = True
        now[0] += 30
        assert (await check.verify(issuer.token())).subject == "user-1"

        # Down again once the cache is stale: the keys we have keep working, and the
        # provider is asked again only after the cooldown.
        issuer.available = False
        now[0] += 60
        assert (await check.verify(issuer.token())).subject == "user-1"
        attempts = len(issuer.requests)
        assert (await check.verify(issuer.token())).subject == "user-1"
        assert len(issuer.requests) == attempts


@pytest.mark.parametrize(
    ("url", "body"),
    [
        (DISCOVERY_URL, {"issuer": "https://evil.example.com", "jwks_uri": JWKS_URL}),
        (DISCOVERY_URL, {"issuer": ISSUER_URL}),
        (DISCOVERY_URL, ["not", "an", "object"]),
        (JWKS_URL, ["not", "a", "key", "set"]),
        (JWKS_URL, {"keys": []}),
    ],
)
async def test_a_provider_that_serves_nonsense_is_not_trusted(url: str, body: object) -> None:
    issuer = FakeIssuer()
    issuer.replaced[url] = body
    async with httpx.AsyncClient(transport=issuer.transport) as http:
        with pytest.raises(ServiceUnavailableError):
            await verifier(http).verify(issuer.token())


async def test_a_single_key_may_be_used_without_a_kid(issuer: FakeIssuer) -> None:
    token = jwt.encode(issuer.claims(), issuer.keys[issuer.current_kid], "RS256")
    async with httpx.AsyncClient(transport=issuer.transport) as http:
        assert (await verifier(http).verify(token)).subject == "user-1"
    issuer.rotate()
    async with httpx.AsyncClient(transport=issuer.transport) as http:
        with pytest.raises(UnauthorizedError):  # with two keys, which one?
            await verifier(http).verify(token)


async def test_without_an_issuer_protected_endpoints_say_what_is_missing() -> None:
    async with httpx.AsyncClient(transport=FakeIssuer().transport) as http:
        check = OIDCVerifier("", "", http)
        with pytest.raises(ServiceUnavailableError, match="OIDC_ISSUER"):
            await check.verify("anything")


async def test_required_scopes_are_enforced(issuer: FakeIssuer) -> None:
    async with httpx.AsyncClient(transport=issuer.transport) as http:
        check = verifier(http, required_scopes=["items:write"])
        with pytest.raises(ForbiddenError, match="items:write"):
            await check.verify(issuer.token())
        principal = await check.verify(issuer.token(scope="items:write"))
        assert (principal.subject, principal.scopes) == ("user-1", frozenset({"items:write"}))


async def test_require_scopes_guards_one_endpoint() -> None:
    reader = Principal("u", frozenset({"items:read"}), frozenset(), claims={})
    guard = require_scopes("items:read", "items:write")
    with pytest.raises(ForbiddenError, match="items:write"):
        await guard(reader)
    writer = Principal("u", frozenset({"items:read", "items:write"}), frozenset(), claims={})
    assert await guard(writer) is writer


@pytest.mark.parametrize(
    ("issuer_url", "audience", "accepted"),
    [
        ("", "", False),
        (ISSUER_URL, "", False),
        ("http://sso.example.com/realms/main", AUDIENCE, False),
        ("http://127.0.0.1:8080/realms/main", AUDIENCE, True),
        (ISSUER_URL, AUDIENCE, True),
    ],
)
def test_production_needs_an_https_issuer_and_an_audience(
    issuer_url: str, audience: str, accepted: bool
) -> None:
    from pydantic import ValidationError  # noqa: PLC0415

    def production() -> object:
        return make_settings(
            environment="production", oidc_issuer=issuer_url, oidc_audience=audience
        )

    if accepted:
        production()
    else:
        with pytest.raises(ValidationError, match="OIDC_"):
            production()


def test_required_scopes_setting_accepts_commas_or_spaces() -> None:
    assert make_settings(oidc_required_scopes="a, b c").oidc_required_scopes == ["a", "b", "c"]


async def test_keys_come_from_the_configured_issuer_on_the_first_token(
    settings: Settings, anonymous: httpx.AsyncClient, issuer: FakeIssuer
) -> None:
    assert (await anonymous.get("/api/v1/info")).status_code == 200
    assert issuer.requests == []  # nothing fetched before a token needs verifying
    assert (await anonymous.get(ME, headers=issuer.bearer())).status_code == 200
    discovery = f"{settings.oidc_issuer}/.well-known/openid-configuration"
    assert issuer.requests[0] == discovery
