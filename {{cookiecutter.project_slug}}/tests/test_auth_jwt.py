"""Built-in users: registration, login, token rotation, and the classic attacks on them."""

from __future__ import annotations

import asyncio
import logging
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import jwt
import pytest
from fastapi import FastAPI

from {{ cookiecutter.project_slug }}.auth import passwords, service
from {{ cookiecutter.project_slug }}.auth.dependencies import (
    limiter_factory,
    login_limiter,
    registration_limiter,
)
from {{ cookiecutter.project_slug }}.auth.passwords import HashingQueue, dummy_hash, hashing_queue
from {{ cookiecutter.project_slug }}.auth.rate_limit import {{ "RedisFailureLimiter" if cookiecutter.redis else "InMemoryFailureLimiter" }}
from {{ cookiecutter.project_slug }}.auth.tokens import ALGORITHM, AUDIENCE, ISSUER
from {{ cookiecutter.project_slug }}.settings import Settings
from {{ cookiecutter.project_slug }}.users.models import User
from tests.auth_support import (
    INVALID_TOKEN_CHALLENGE,
    SIGNED_IN,
    TEST_PASSWORD,
    add_user,
    assert_asks_for_a_bearer_token,
    bearer,
    hashed_test_password,
)
from tests.support import TEST_SECRET_KEY

AUTH = "/api/v1/auth"
ME = "/api/v1/users/me"
NEW_PASSWORD = "a long enough passphrase"


async def login(
    client: httpx.AsyncClient, email: str, password: str = TEST_PASSWORD
) -> httpx.Response:
    return await client.post(f"{AUTH}/token", data={"username": email, "password": password})


async def register(
    client: httpx.AsyncClient, email: str, password: str = NEW_PASSWORD
) -> httpx.Response:
    return await client.post(f"{AUTH}/register", json={"email": email, "password": password})


async def tokens(client: httpx.AsyncClient, email: str) -> dict[str, Any]:
    response = await login(client, email)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def client_from(app: FastAPI, address: str) -> httpx.AsyncClient:
    """A client that the app sees coming from `address`."""
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def assert_too_many_attempts(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["retry-after"]) > 0
    assert response.headers["content-type"] == "application/problem+json"


def signed(claims: dict[str, Any], key: str = TEST_SECRET_KEY, algorithm: str = ALGORITHM) -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def valid_claims(user: User, **changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(user.id),
        "exp": now + timedelta(minutes=5),
        "iat": now,
        "jti": str(uuid.uuid4()),
        "type": "access",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "token_version": 0,  # a new user's
    }
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


# --- registration and login -----------------------------------------------------------


async def test_register_then_log_in_then_read_me(anonymous: httpx.AsyncClient) -> None:
    password = "a long enough passphrase"
    response = await anonymous.post(
        f"{AUTH}/register", json={"email": "New@Example.COM", "password": password}
    )
    assert response.status_code == 202, response.text
    assert password not in response.text

    pair = (
        await anonymous.post(
            f"{AUTH}/token", data={"username": "NEW@example.com", "password": password}
        )
    ).json()
    assert pair["token_type"] == "bearer"
    assert pair["expires_in"] == 15 * 60
    me = await anonymous.get(ME, headers=bearer(pair["access_token"]))
    assert me.status_code == 200
    assert me.json()["email"] == "new@example.com"


async def test_an_email_has_one_account_whatever_its_case(
    anonymous: httpx.AsyncClient, user: User
) -> None:
    again = {"email": "USER@example.com", "password": "another long passphrase"}
    response = await anonymous.post(f"{AUTH}/register", json=again)
    assert response.status_code == 202  # as for a new address; its owner is told (test_mail)
    assert (await login(anonymous, user.email, "another long passphrase")).status_code == 401
    assert (await login(anonymous, "USER@example.com", TEST_PASSWORD)).status_code == 200


@pytest.mark.parametrize(
    "payload",
    [
        {"email": "not-an-email", "password": "a long enough passphrase"},
        {"email": "a@example.com", "password": "too short"},
        {"email": "a@example.com", "password": "x" * 129},
        {"email": "a@example.com"},
        {"email": "a@example.com", "password": "a long enough passphrase", "is_superuser": True},
    ],
)
async def test_bad_registrations_are_422(
    anonymous: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    response = await anonymous.post(f"{AUTH}/register", json=payload)
    assert response.status_code == 422
    password = payload.get("password")
    assert password is None or password not in response.text  # not echoed back


async def test_registration_can_be_turned_off(
    app: FastAPI, settings: Settings, anonymous: httpx.AsyncClient
) -> None:
    app.state.settings = settings.model_copy(update={"registration_enabled": False})
    payload = {"email": "a@example.com", "password": "a long enough passphrase"}
    response = await anonymous.post(f"{AUTH}/register", json=payload)
    assert response.status_code == 403


async def test_wrong_password_and_unknown_email_look_the_same(
    anonymous: httpx.AsyncClient, user: User
) -> None:
    wrong = await login(anonymous, user.email, "not the right password")
    unknown = await login(anonymous, "nobody@example.com")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.headers["www-authenticate"] == unknown.headers["www-authenticate"] == "Bearer"

    def comparable(response: httpx.Response) -> dict[str, Any]:
        body: dict[str, Any] = response.json()
        body.pop("request_id")
        return body

    assert comparable(wrong) == comparable(unknown)


@pytest.mark.parametrize("username", ["a\x00@example.com", "a@example.com\n"])
async def test_a_username_with_control_characters_is_422(
    anonymous: httpx.AsyncClient, username: str
) -> None:
    response = await login(anonymous, username)
    assert response.status_code == 422, response.text


async def test_an_unknown_email_is_verified_against_the_dummy_hash(
    anonymous: httpx.AsyncClient, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified: list[str] = []
    real_verify = passwords.verify_password

    async def spy(password: str, hashed: str) -> tuple[bool, str | None]:
        verified.append(hashed)
        return await real_verify(password, hashed)

    monkeypatch.setattr(f"{service.__name__}.verify_password", spy)
    await login(anonymous, "nobody@example.com")
    await login(anonymous, user.email, "not the right password")
    assert verified == [dummy_hash(), user.hashed_password]


async def test_an_inactive_user_cannot_log_in(app: FastAPI, anonymous: httpx.AsyncClient) -> None:
    inactive = await add_user(app, "gone@example.com", is_active=False)
    assert (await login(anonymous, inactive.email)).status_code == 401


async def test_failed_logins_are_limited_per_account_and_address(app: FastAPI, user: User) -> None:
    limit = app.state.settings.login_max_failures
    async with (
        client_from(app, "203.0.113.7") as attacker,
        client_from(app, "198.51.100.1") as owner,
    ):
        for _ in range(limit):
            assert (await login(attacker, user.email, "guess guess guess")).status_code == 401
        assert_too_many_attempts(await login(attacker, user.email))  # even the right password
        # The account is not locked for everyone: its owner elsewhere still gets in.
        assert (await login(owner, user.email)).status_code == 200


def use_limits(app: FastAPI, settings: Settings, **limits: int) -> None:
    """Small limits, so that a test reaches them in a few (argon2-slow) attempts."""
    changed = settings.model_copy(update=limits)
    app.state.login_limiter = login_limiter(changed, limiter_factory(app))
    app.state.registration_limiter = registration_limiter(changed, limiter_factory(app))


async def test_one_address_cannot_spray_a_password_over_many_accounts(
    app: FastAPI, settings: Settings, user: User
) -> None:
    use_limits(app, settings, login_max_failures_per_address=3)
    async with (
        client_from(app, "203.0.113.7") as sprayer,
        client_from(app, "198.51.100.1") as elsewhere,
    ):
        for victim in ("a@example.com", "b@example.com"):
            assert (await login(sprayer, victim, "Summer2024Summer2024")).status_code == 401
        # Signing in to an account of its own does not wipe the address's count.
        assert (await login(sprayer, user.email)).status_code == 200
        assert (await login(sprayer, "c@example.com", "Summer2024Summer2024")).status_code == 401
        assert_too_many_attempts(await login(sprayer, user.email))  # any account, for now
        assert (await login(elsewhere, user.email)).status_code == 200


async def test_many_addresses_cannot_grind_one_account(
    app: FastAPI, settings: Settings, user: User
) -> None:
    use_limits(app, settings, login_max_failures=2, login_max_failures_per_account=4)
    for bot in ("203.0.113.1", "203.0.113.2"):
        async with client_from(app, bot) as client:
            for _ in range(2):
                assert (await login(client, user.email, "guess guess guess")).status_code == 401
    async with client_from(app, "198.51.100.1") as fresh:
        assert_too_many_attempts(await login(fresh, user.email))
        # Only that account is locked: this address may still sign in to others.
        await add_user(app, "other@example.com")
        assert (await login(fresh, "other@example.com")).status_code == 200


def test_lockouts_are_short_by_default(settings: Settings) -> None:
    # A shared address must not lock a real user out for long (the window bounds a lockout).
    assert settings.login_window_seconds <= 300
    assert settings.login_max_failures < settings.login_max_failures_per_account


async def test_registration_is_limited_per_address(app: FastAPI, settings: Settings) -> None:
    use_limits(app, settings, registration_max_per_address=2)
    async with client_from(app, "203.0.113.7") as flood, client_from(app, "198.51.100.1") as other:
        assert (await register(flood, "bot1@example.com")).status_code == 202
        assert (await register(flood, "bot1@example.com")).status_code == 202  # counts too
        assert_too_many_attempts(await register(flood, "bot2@example.com"))
        assert (await register(other, "person@example.com")).status_code == 202


# --- load shedding: a flood of hashing gets 503s, not a queue without end ------------------


@asynccontextmanager
async def every_hashing_slot_taken() -> AsyncIterator[HashingQueue]:
    queue = hashing_queue()
    holders = [object() for _ in range(int(queue.slots.total_tokens))]
    for holder in holders:
        await queue.slots.acquire_on_behalf_of(holder)
    try:
        yield queue
    finally:
        for holder in holders:
            queue.slots.release_on_behalf_of(holder)


def assert_busy(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    assert response.headers["content-type"] == "application/problem+json"


async def test_logins_get_a_prompt_503_while_hashing_is_saturated(
    anonymous: httpx.AsyncClient, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with every_hashing_slot_taken() as queue:
        monkeypatch.setattr(queue, "max_wait_seconds", 0.2)
        started = time.monotonic()
        with anyio.fail_after(5):  # an unbounded wait would hang here
            assert_busy(await login(anonymous, user.email))
        assert time.monotonic() - started < 2

        # With the queue full, a request is refused without waiting at all.
        monkeypatch.setattr(queue, "max_wait_seconds", 30)
        monkeypatch.setattr(queue, "waiting", queue.max_waiting)
        with anyio.fail_after(1):
            assert_busy(await register(anonymous, "new@example.com"))
    monkeypatch.undo()
    assert (await login(anonymous, user.email)).status_code == 200


async def test_more_hashes_than_slots_queue_and_all_succeed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (Concurrent requests cannot share the test's one database connection: this calls the
    # hashing path that logins take directly.) A generous wait: test machines are slow.
    monkeypatch.setattr(hashing_queue(), "max_wait_seconds", 60)
    hashed = hashed_test_password()
    many = 3 * int(hashing_queue().slots.total_tokens)
    results = await asyncio.gather(
        *(passwords.verify_password(TEST_PASSWORD, hashed) for _ in range(many))
    )
    assert [valid for valid, _ in results] == [True] * many


# --- password rules ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "passwordpassword",
        "iloveyouiloveyou",
        "qwertyuiopasdfgh",
        "123456789012345",
        "aaaaaaaaaaaaaaaa",
        "new.person@example.com",  # the email itself
    ],
)
async def test_passwords_easy_to_guess_are_refused(
    anonymous: httpx.AsyncClient, password: str
) -> None:
    response = await register(anonymous, "new.person@example.com", password)
    assert response.status_code == 422, response.text
    assert "too easy to guess" in response.json()["detail"]
    assert password not in response.text


@pytest.mark.parametrize("password", [" " * 20, "\t" * 16, "\u3000" * 15])
async def test_whitespace_only_passwords_are_refused(
    anonymous: httpx.AsyncClient, password: str
) -> None:
    response = await register(anonymous, "new@example.com", password)
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["loc"] == ["body", "password"]
    assert "whitespace" in error["msg"]


async def test_a_password_is_the_same_in_any_unicode_normal_form(
    anonymous: httpx.AsyncClient,
) -> None:
    composed = unicodedata.normalize("NFC", "crème brûlée au café noir")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    assert (await register(anonymous, "chef@example.com", decomposed)).status_code == 202
    assert (await login(anonymous, "chef@example.com", composed)).status_code == 200
{%- if cookiecutter.redis %}


async def test_the_limiter_forgets_failures_after_the_window(app: FastAPI) -> None:
    # On Redis's own clock: a short window, polled until the oldest failure leaves it.
    limiter = RedisFailureLimiter(app.state.redis, max_failures=2, window_seconds=0.3)
    await limiter.record_failure("k")
    assert await limiter.retry_after("k") is None  # below the limit
    await limiter.record_failure("k")
    assert await limiter.retry_after("k") == 1  # under a second, rounded up
    for _ in range(250):
        if await limiter.retry_after("k") is None:
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the failures never left the window")
    await limiter.record_failure("k")
    await limiter.record_failure("k")
    await limiter.reset("k")
    assert await limiter.retry_after("k") is None


async def test_the_limiter_stores_no_email_or_address(app: FastAPI, settings: Settings) -> None:
    limiter = RedisFailureLimiter(app.state.redis, max_failures=2, window_seconds=60)
    await limiter.record_failure("login:someone@example.com:203.0.113.7")
    limits = f"{settings.redis_key_prefix}limit:*"  # (the task queue has keys there too)
    keys = [key async for key in app.state.redis.client.scan_iter(limits)]
    assert len(keys) == 1
    assert b"example.com" not in keys[0]
    assert b"203.0.113.7" not in keys[0]
{%- else %}


async def test_the_limiter_forgets_failures_after_the_window() -> None:
    now = [1000.0]
    limiter = InMemoryFailureLimiter(max_failures=2, window_seconds=60, clock=lambda: now[0])
    await limiter.record_failure("k")
    now[0] += 30
    await limiter.record_failure("k")
    assert await limiter.retry_after("k") == 30  # until the first failure leaves the window
    now[0] += 30
    assert await limiter.retry_after("k") is None
    await limiter.record_failure("k")
    await limiter.reset("k")
    assert await limiter.retry_after("k") is None
{%- endif %}


# --- refresh token rotation --------------------------------------------------------------


async def test_refresh_rotates_and_a_replayed_token_ends_the_session(
    anonymous: httpx.AsyncClient, user: User
) -> None:
    first = await tokens(anonymous, user.email)
    rotated = await anonymous.post(
        f"{AUTH}/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await anonymous.get(ME, headers=bearer(second["access_token"]))).status_code == 200

    # Someone replays the spent token: refused, and the whole family is revoked...
    replay = await anonymous.post(f"{AUTH}/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert replay.headers["www-authenticate"] == INVALID_TOKEN_CHALLENGE
    # ...so the legitimate, unspent successor is dead too.
    after = await anonymous.post(f"{AUTH}/refresh", json={"refresh_token": second["refresh_token"]})
    assert after.status_code == 401


async def test_other_sessions_survive_a_replay_in_one(
    anonymous: httpx.AsyncClient, user: User
) -> None:
    laptop = await tokens(anonymous, user.email)
    phone = await tokens(anonymous, user.email)
    spent = laptop["refresh_token"]
    await anonymous.post(f"{AUTH}/refresh", json={"refresh_token": spent})
    await anonymous.post(f"{AUTH}/refresh", json={"refresh_token": spent})  # replay
    still = await anonymous.post(f"{AUTH}/refresh", json={"refresh_token": phone["refresh_token"]})
    assert still.status_code == 200


async def test_logout_revokes_the_refresh_token(
    anonymous: httpx.AsyncClient, user: User, caplog: pytest.LogCaptureFixture
) -> None:
    pair = await tokens(anonymous, user.email)
    body = {"refresh_token": pair["refresh_token"]}
    logged_out = await anonymous.post(f"{AUTH}/logout", json=body)
    assert logged_out.status_code == 204
    assert "content-type" not in logged_out.headers
    with caplog.at_level(logging.INFO):
        refused = await anonymous.post(f"{AUTH}/refresh", json=body)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == INVALID_TOKEN_CHALLENGE
    # A token that was ended is no sign of theft: no reuse alarm.
    assert "refresh_token_reused" not in caplog.text


async def test_an_inactive_user_cannot_refresh(
    app: FastAPI, anonymous: httpx.AsyncClient, user: User
) -> None:
    pair = await tokens(anonymous, user.email)
    async with app.state.sessionmaker() as session:
        (await session.get(User, user.id)).is_active = False
        await session.commit()
    body = {"refresh_token": pair["refresh_token"]}
    assert (await anonymous.post(f"{AUTH}/refresh", json=body)).status_code == 401
    for path in SIGNED_IN:
        response = await anonymous.get(path, headers=bearer(pair["access_token"]))
        assert response.status_code == 401, path


# --- attacks: every one of these is a 401 ------------------------------------------------


async def test_no_token_is_a_401_that_says_how_to_authenticate(
    anonymous: httpx.AsyncClient,
) -> None:
    assert_asks_for_a_bearer_token(await anonymous.get(ME))


def forged_tokens(user: User, pair: dict[str, Any]) -> dict[str, str]:
    return {
        "malformed": "not.a.jwt",
        "garbage": "x" * 50,
        "alg none": jwt.encode(valid_claims(user), None, algorithm="none"),
        "another key": signed(valid_claims(user), key="another-secret-key-that-is-long-enough-0"),
        "expired": signed(valid_claims(user, exp=datetime.now(UTC) - timedelta(seconds=1))),
        "wrong audience": signed(valid_claims(user, aud="another-service")),
        "wrong issuer": signed(valid_claims(user, iss="https://evil.example.com")),
        "no expiry": signed(valid_claims(user, exp=None)),
        "no jti": signed(valid_claims(user, jti=None)),
        "no type": signed(valid_claims(user, type=None)),
        "unknown user": signed(valid_claims(user, sub=str(uuid.uuid4()))),
        "sub not a uuid": signed(valid_claims(user, sub="admin")),
        "HS512": signed(valid_claims(user), algorithm="HS512"),
        "refresh as access": pair["refresh_token"],
    }


# HS512 with our 46-byte test key: PyJWT warns that the key is short for SHA-512.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_forged_and_misused_access_tokens_are_refused(
    anonymous: httpx.AsyncClient, user: User
) -> None:
    pair = await tokens(anonymous, user.email)
    for path in SIGNED_IN:
        assert (await anonymous.get(path, headers=bearer(pair["access_token"]))).status_code == 200
        for name, token in forged_tokens(user, pair).items():
            response = await anonymous.get(path, headers=bearer(token))
            assert response.status_code == 401, (path, name)
            # RFC 6750: a token was presented and refused (no token at all: plain "Bearer").
            assert response.headers["www-authenticate"] == INVALID_TOKEN_CHALLENGE, name


async def test_a_token_accepted_before_is_refused_once_it_expires(
    anonymous: httpx.AsyncClient, user: User
) -> None:
    """Verified tokens are kept for their next use (tokens.py); their expiry still counts."""
    expires = datetime.now(UTC) + timedelta(seconds=2)
    access = signed(valid_claims(user, exp=expires))
    assert (await anonymous.get(ME, headers=bearer(access))).status_code == 200
    await asyncio.sleep((expires - datetime.now(UTC)).total_seconds() + 0.1)
    assert (await anonymous.get(ME, headers=bearer(access))).status_code == 401


# RFC 7519: `exp` and `iat` are NumericDates, JSON numbers. Anything else, and numbers that
# no date can hold, must be a 401 however the token is signed.
ODD_DATES: list[object] = [
    "9999999999",
    "soon",
    "",
    True,
    [1],
    {"at": 1},
    1e300,
    -1e300,
    10**20,
    -(10**20),
    float("inf"),
    float("nan"),
]


@pytest.mark.parametrize("claim", ["exp", "iat"])
async def test_odd_dates_in_a_validly_signed_token_are_401(
    anonymous: httpx.AsyncClient, user: User, claim: str
) -> None:
    for value in ODD_DATES:
        access = signed(valid_claims(user, **{claim: value}))
        response = await anonymous.get(ME, headers=bearer(access))
        assert response.status_code == 401, (claim, value, response.text)
        refresh = {"refresh_token": signed(valid_claims(user, type="refresh", **{claim: value}))}
        for path in ("refresh", "logout"):
            response = await anonymous.post(f"{AUTH}/{path}", json=refresh)
            assert response.status_code == 401, (claim, value, path, response.text)


# `token_version` must be an integer that users.token_version can hold: `false` and `0.0`
# equal 0 in Python, and 2**31 would fail PostgreSQL's query instead of the token. None: no
# claim at all, as in the tokens issued before it existed.
ODD_VERSIONS: list[object] = [None, "0", False, True, 0.0, -1, 2**31, 10**20, [0], {"v": 0}]


async def test_odd_token_versions_in_a_validly_signed_token_are_401(
    anonymous: httpx.AsyncClient, user: User
) -> None:
    assert (await anonymous.get(ME, headers=bearer(signed(valid_claims(user))))).status_code == 200
    for value in ODD_VERSIONS:
        access = signed(valid_claims(user, token_version=value))
        for path in SIGNED_IN:
            response = await anonymous.get(path, headers=bearer(access))
            assert response.status_code == 401, (value, path, response.text)
            assert response.headers["www-authenticate"] == INVALID_TOKEN_CHALLENGE


async def test_tokens_of_an_earlier_token_version_are_refused(
    app: FastAPI, anonymous: httpx.AsyncClient, user: User
) -> None:
    """As after a new password, whose revocation a rotation running alongside it escapes: the
    pair it issued names the former version."""
    pair = await tokens(anonymous, user.email)
    async with app.state.sessionmaker() as session:
        (await session.get(User, user.id)).token_version += 1
        await session.commit()
    body = {"refresh_token": pair["refresh_token"]}  # not revoked: only its version is old
    assert (await anonymous.post(f"{AUTH}/refresh", json=body)).status_code == 401
    for path in SIGNED_IN:
        response = await anonymous.get(path, headers=bearer(pair["access_token"]))
        assert response.status_code == 401, path
    fresh = await tokens(anonymous, user.email)
    assert (await anonymous.get(ME, headers=bearer(fresh["access_token"]))).status_code == 200


async def test_an_access_token_is_not_a_refresh_token(
    anonymous: httpx.AsyncClient, user: User
) -> None:
    pair = await tokens(anonymous, user.email)
    body = {"refresh_token": pair["access_token"]}
    assert (await anonymous.post(f"{AUTH}/refresh", json=body)).status_code == 401
    assert (await anonymous.post(f"{AUTH}/logout", json=body)).status_code == 401
    forged = {"refresh_token": signed(valid_claims(user, type="refresh"))}  # never issued
    assert (await anonymous.post(f"{AUTH}/refresh", json=forged)).status_code == 401


async def test_swagger_can_log_in_with_the_password_form(anonymous: httpx.AsyncClient) -> None:
    schema = (await anonymous.get("/openapi.json")).json()
    [scheme] = schema["components"]["securitySchemes"].values()
    assert scheme["flows"]["password"]["tokenUrl"] == f"{AUTH}/token"
