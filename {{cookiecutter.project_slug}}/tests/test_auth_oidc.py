"""Tokens from an external OpenID Connect provider: verified for real against the
in-process fake provider, including the classic attacks."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
{%- if cookiecutter.database != "none" %}
from fastapi import FastAPI
{%- endif %}

from {{ cookiecutter.project_slug }}.auth.dependencies import require_scopes
from {{ cookiecutter.project_slug }}.auth.oidc import MAX_DOCUMENT_BYTES, OIDCVerifier, Principal
from {{ cookiecutter.project_slug }}.errors import ForbiddenError, ServiceUnavailableError, UnauthorizedError
from {{ cookiecutter.project_slug }}.logging import configure_logging
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings
from tests.auth_support import (
    AUDIENCE,
    DISCOVERY_PATH,
    DISCOVERY_URL,
    INVALID_TOKEN_CHALLENGE,
    ISSUER_URL,
    JWKS_PATH,
    JWKS_URL,
    FakeIssuer,
    LoopbackProvider,
    assert_asks_for_a_bearer_token,
    bearer,
    forge_hs256,
)
from tests.support import make_client, make_settings

ME = "/api/v1/me"
ITEMS = "/api/v1/items"


def verifier(http: httpx.AsyncClient, **options: Any) -> OIDCVerifier:
    return OIDCVerifier(ISSUER_URL, AUDIENCE, http, **options)


async def test_me_is_the_verified_principal(client: httpx.AsyncClient) -> None:
    response = await client.get(ME)
    assert response.status_code == 200
    assert response.json() == {
        "subject": "user-1",
        "scopes": ["items:read", "items:write", "openid"],
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
        # ID tokens presented as access tokens:
        "an ID token (nonce)": issuer.token(nonce="n-0S6_WzA2Mj"),
        "an ID token (at_hash)": issuer.token(at_hash="77QmUPtjPfzWtF2AnpK9RQ"),
        "an ID token (c_hash)": issuer.token(c_hash="LDktKdoQak3Pk0cnXxCltA"),
        "a Keycloak ID token": issuer.token(typ="ID"),
        "an ID token (typ header)": issuer.token(headers={"typ": "id_token+jwt"}),
        "a logout token": issuer.token(headers={"typ": "logout+jwt"}),
    }


async def test_forged_and_invalid_tokens_are_refused(
    anonymous: httpx.AsyncClient, issuer: FakeIssuer
) -> None:
    assert (await anonymous.get(ME, headers=issuer.bearer())).status_code == 200
    for name, token in attacks(issuer).items():
        response = await anonymous.get(ME, headers=bearer(token))
        assert response.status_code == 401, name
        # RFC 6750: a token was presented and refused (no token at all: plain "Bearer").
        assert response.headers["www-authenticate"] == INVALID_TOKEN_CHALLENGE, name


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


async def test_a_known_key_never_waits_for_a_refetch() -> None:
    issuer = FakeIssuer()
    now = [0.0]
    async with httpx.AsyncClient(transport=issuer.transport) as http:
        check = verifier(http, refetch_cooldown_seconds=30, clock=lambda: now[0])
        await check.verify(issuer.token())  # the keys are cached
        now[0] += 60  # past the cooldown: an unknown key id may refetch
        issuer.delay = 3.0  # the provider turns slow...
        # ...while an attacker's made-up key id makes us refetch from it.
        unknown = asyncio.create_task(check.verify(issuer.token(kid="made-up")))
        await asyncio.sleep(0.05)
        assert issuer.requests[-1] == DISCOVERY_URL  # the refetch is under way

        started = time.monotonic()
        assert (await check.verify(issuer.token())).subject == "user-1"
        assert time.monotonic() - started < 0.5
        # Another unknown key id joins the refetch under way rather than starting one.
        another = asyncio.create_task(check.verify(issuer.token(kid="made-up-2")))
        await asyncio.sleep(0.05)
        assert issuer.requests.count(DISCOVERY_URL) == 2
        for task in (unknown, another):
            task.cancel()
        await check.aclose()


async def test_stale_keys_answer_at_once_and_are_refreshed_in_the_background() -> None:
    issuer = FakeIssuer()
    now = [0.0]
    async with httpx.AsyncClient(transport=issuer.transport) as http:
        check = verifier(http, jwks_cache_seconds=10, clock=lambda: now[0])
        await check.verify(issuer.token())
        now[0] += 60
        issuer.delay = 3.0
        started = time.monotonic()
        assert (await check.verify(issuer.token())).subject == "user-1"
        assert time.monotonic() - started < 0.5
        await asyncio.sleep(0.05)
        assert issuer.requests.count(DISCOVERY_URL) == 2  # the refresh has started
        await check.aclose()


async def test_a_plain_http_jwks_uri_is_refused_unless_allowed() -> None:
    issuer = FakeIssuer()
    plain = "http://issuer.test/certs"
    issuer.replaced[DISCOVERY_URL] = {"issuer": ISSUER_URL, "jwks_uri": plain}
    issuer.replaced[plain] = issuer.jwks()
    async with httpx.AsyncClient(transport=issuer.transport) as http:
        with pytest.raises(ServiceUnavailableError):
            await verifier(http).verify(issuer.token())
        # A plain-http issuer in development (allowed by from_settings) may serve http keys.
        relaxed = verifier(http, allow_plain_http_jwks=True)
        assert (await relaxed.verify(issuer.token())).subject == "user-1"


async def test_a_loopback_jwks_uri_may_be_plain_http() -> None:
    issuer = FakeIssuer()
    loopback = "http://127.0.0.1:8080/certs"
    issuer.replaced[DISCOVERY_URL] = {"issuer": ISSUER_URL, "jwks_uri": loopback}
    issuer.replaced[loopback] = issuer.jwks()
    async with httpx.AsyncClient(transport=issuer.transport) as http:
        assert (await verifier(http).verify(issuer.token())).subject == "user-1"


@pytest.mark.parametrize(
    ("environment", "issuer_url", "allowed"),
    [
        ("production", "http://127.0.0.1:8080/realms/main", False),
        ("development", "http://sso.internal:8080/realms/main", True),
        ("development", ISSUER_URL, False),
    ],
)
def test_plain_http_keys_are_allowed_only_for_a_plain_http_issuer_outside_production(
    environment: str, issuer_url: str, allowed: bool
) -> None:
    settings = make_settings(environment=environment, oidc_issuer=issuer_url)
    check = OIDCVerifier.from_settings(settings, httpx.AsyncClient())
    assert check.allow_plain_http_jwks is allowed


async def test_id_token_markers_can_be_accepted_and_at_jwt_required(issuer: FakeIssuer) -> None:
    async with httpx.AsyncClient(transport=issuer.transport) as http:
        lenient = verifier(http, accept_id_token_markers=True)
        assert await lenient.verify(issuer.token(nonce="n-0S6_WzA2Mj"))
        strict = verifier(http, require_at_jwt_typ=True)
        with pytest.raises(UnauthorizedError):
            await strict.verify(issuer.token())  # typ: JWT
        for typ in ("at+jwt", "application/at+JWT"):
            assert await strict.verify(issuer.token(headers={"typ": typ}))
        assert await verifier(http).verify(issuer.token(headers={"typ": "at+jwt"}))


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
        check = verifier(http, required_scopes=["admin"])
        with pytest.raises(ForbiddenError, match="admin"):
            await check.verify(issuer.token())
        principal = await check.verify(issuer.token(scope="admin"))
        assert (principal.subject, principal.scopes) == ("user-1", frozenset({"admin"}))


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


@pytest.fixture
async def provider(issuer: FakeIssuer) -> AsyncIterator[LoopbackProvider]:
    async with LoopbackProvider(issuer).serving() as provider:
        yield provider


async def test_a_provider_trickling_its_keys_is_a_503_once_the_timeout_is_spent(
    settings: Settings, issuer: FakeIssuer, provider: LoopbackProvider
) -> None:
    # A byte every 0.2 s: every read is well within the 0.5 s timeout, the whole key set
    # would take minutes. Through the app, with the HTTP client its lifespan builds.
    provider.pauses[JWKS_PATH] = 0.2
    settings = settings.model_copy(
        update={"oidc_issuer": provider.url, "oidc_http_timeout_seconds": 0.5}
    )
    app = create_app(settings)
    token = bearer(issuer.token(iss=provider.url))
    async with app.router.lifespan_context(app), make_client(app, token) as client:
        started = time.monotonic()
        response = await asyncio.wait_for(client.get(ME), 5)  # without the deadline: hangs
        assert time.monotonic() - started < 1.5
        assert response.status_code == 503
        assert response.headers["retry-after"] == "30"
        # The cooldown applies as to an unreachable provider: no new fetch, an answer at once.
        asked = len(provider.requests)
        assert (await asyncio.wait_for(client.get(ME), 0.5)).status_code == 503
        assert len(provider.requests) == asked


async def test_a_document_larger_than_the_bound_is_not_read(
    issuer: FakeIssuer, provider: LoopbackProvider
) -> None:
    token = issuer.token(iss=provider.url)
    jwks = issuer.jwks()
    unpadded = provider.serve(JWKS_PATH, {**jwks, "padding": ""})
    padding = "x" * (MAX_DOCUMENT_BYTES - len(unpadded))
    assert len(provider.serve(JWKS_PATH, {**jwks, "padding": padding})) == MAX_DOCUMENT_BYTES
    async with httpx.AsyncClient() as http:
        assert (await OIDCVerifier(provider.url, AUDIENCE, http).verify(token)).subject == "user-1"
        provider.serve(JWKS_PATH, {**jwks, "padding": padding + "x"})  # one byte over
        with pytest.raises(ServiceUnavailableError):
            await OIDCVerifier(provider.url, AUDIENCE, http).verify(token)


def unloadable_key(issuer: FakeIssuer, kid: str = "alg-list", alg: object = None) -> dict[str, Any]:
    """A key PyJWT cannot load: it raises TypeError on an `alg` that is a list (the default),
    and quotes the whole key, private part included, in its error for an unknown `alg`."""
    alg = ["RS256"] if alg is None else alg
    return {**issuer.jwks()["keys"][0], "kid": kid, "alg": alg, "d": "private-part"}


async def test_a_key_that_cannot_be_loaded_leaves_the_others_usable(
    issuer: FakeIssuer, provider: LoopbackProvider, caplog: pytest.LogCaptureFixture
) -> None:
    encryption_kid = issuer.current_kid
    issuer.rotate()
    good, encryption = issuer.jwks()["keys"][1], issuer.jwks()["keys"][0]
    unknown_alg = unloadable_key(issuer, "unknown-alg", "XS999")
    keys = [unloadable_key(issuer), unknown_alg, {**encryption, "use": "enc"}, good]
    provider.serve(JWKS_PATH, {"keys": keys})
    configure_logging(make_settings())  # warnings reach caplog through the standard library
    async with httpx.AsyncClient() as http:
        check = OIDCVerifier(provider.url, AUDIENCE, http)
        with caplog.at_level(logging.WARNING):
            assert (await check.verify(issuer.token(iss=provider.url))).subject == "user-1"
        # A key published for encryption does not verify signatures.
        claims = issuer.claims(iss=provider.url)
        signed = jwt.encode(claims, issuer.keys[encryption_kid], "RS256", {"kid": encryption_kid})
        with pytest.raises(UnauthorizedError):
            await check.verify(signed)
    logged = [r.msg for r in caplog.records if isinstance(r.msg, dict)]
    skipped = [entry for entry in logged if entry["event"] == "oidc_keys_skipped"]
    assert [entry["keys"] for entry in skipped] == [
        ["alg-list: TypeError", "unknown-alg: PyJWKError"]  # once per fetch
    ]
    assert "private-part" not in caplog.text


@pytest.mark.parametrize(
    "spoil",
    ["a key PyJWT raises TypeError on", "JSON nested too deep", "a jwks_uri with a NUL"],
)
async def test_any_broken_answer_is_a_503_within_the_refetch_limit(
    spoil: str, issuer: FakeIssuer, provider: LoopbackProvider
) -> None:
    if spoil == "a key PyJWT raises TypeError on":
        provider.serve(JWKS_PATH, {"keys": [unloadable_key(issuer)]})
    elif spoil == "JSON nested too deep":
        provider.bodies[JWKS_PATH] = b"[" * 100_000  # RecursionError in the JSON parser
    else:
        provider.serve(DISCOVERY_PATH, {"issuer": provider.url, "jwks_uri": f"{provider.url}/\0"})
    now = [0.0]
    async with httpx.AsyncClient() as http:
        check = OIDCVerifier(provider.url, AUDIENCE, http, clock=lambda: now[0])
        token = issuer.token(iss=provider.url, kid="made-up")
        with pytest.raises(ServiceUnavailableError):
            await check.verify(token)
        asked = len(provider.requests)
        with pytest.raises(ServiceUnavailableError):  # within the cooldown: not asked again
            await check.verify(token)
        assert len(provider.requests) == asked
        now[0] += 30
        with pytest.raises(ServiceUnavailableError):
            await check.verify(token)
        assert len(provider.requests) == 2 * asked


async def test_keys_come_from_the_configured_issuer_on_the_first_token(
    settings: Settings, anonymous: httpx.AsyncClient, issuer: FakeIssuer
) -> None:
    assert (await anonymous.get("/api/v1/info")).status_code == 200
    assert issuer.requests == []  # nothing fetched before a token needs verifying
    assert (await anonymous.get(ME, headers=issuer.bearer())).status_code == 200
    discovery = f"{settings.oidc_issuer}/.well-known/openid-configuration"
    assert issuer.requests[0] == discovery
{%- if cookiecutter.database != "none" %}


async def test_items_need_their_scopes_by_default(
    anonymous: httpx.AsyncClient, issuer: FakeIssuer
) -> None:
    nobody = bearer(issuer.token(scope="openid"))
    reader = bearer(issuer.token(scope="openid items:read"))
    writer = issuer.bearer()  # items:read and items:write
    assert (await anonymous.get(ITEMS, headers=nobody)).status_code == 403
    assert (await anonymous.get(ITEMS, headers=reader)).status_code == 200
    refused = await anonymous.post(ITEMS, json={"name": "scoped"}, headers=reader)
    assert refused.status_code == 403
    assert "items:write" in refused.json()["detail"]
    assert refused.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="items:write"'
    )
    created = await anonymous.post(ITEMS, json={"name": "scoped"}, headers=writer)
    assert created.status_code == 201
    item = f"{ITEMS}/{created.json()['id']}"
    assert (await anonymous.get(item, headers=nobody)).status_code == 403
    assert (await anonymous.get(item, headers=reader)).status_code == 200
    assert (await anonymous.patch(item, json={"name": "x"}, headers=reader)).status_code == 403
    assert (await anonymous.delete(item, headers=reader)).status_code == 403
    assert (await anonymous.delete(item, headers=writer)).status_code == 204


async def test_item_scopes_are_named_by_settings(
    app: FastAPI, anonymous: httpx.AsyncClient, issuer: FakeIssuer
) -> None:
    app.state.settings = app.state.settings.model_copy(
        update={"oidc_items_read_scope": "", "oidc_items_write_scope": "api:write"}
    )
    nobody = bearer(issuer.token(scope="openid"))
    assert (await anonymous.get(ITEMS, headers=nobody)).status_code == 200
    refused = await anonymous.post(ITEMS, json={"name": "x"}, headers=issuer.bearer())
    assert refused.status_code == 403
    assert "api:write" in refused.json()["detail"]
{%- endif %}
