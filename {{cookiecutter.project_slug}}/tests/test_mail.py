"""Password reset and email verification, through a real SMTP server on a loopback port:
each test reads the mail the service sent and follows its link's token through the API.
{%- if cookiecutter.tasks == "taskiq" %}

Mail leaves through the task queue: a worker runs in the test's process on the real Redis
stream (`mail_worker`), and the test clients return a response once the queue is drained,
so a test reads its inbox right after a request, as with background tasks. The tests at the
end look at the queue itself, with a real worker process.
{%- endif %}"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
{%- if cookiecutter.tasks == "taskiq" %}
from pathlib import Path
{%- endif %}
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError
{%- if cookiecutter.tasks == "taskiq" %}
from redis.asyncio import BlockingConnectionPool, Redis
{%- endif %}
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from {{ cookiecutter.project_slug }}.accounts.models import AccountToken
from {{ cookiecutter.project_slug }}.accounts.router import RESET_ACCEPTED
from {{ cookiecutter.project_slug }}.auth.dependencies import limiter_factory, mail_limiters
from {{ cookiecutter.project_slug }}.mail import outbox
from {{ cookiecutter.project_slug }}.mail.render import render
from {{ cookiecutter.project_slug }}.mail.senders import LogSender, Message
from {{ cookiecutter.project_slug }}.settings import Settings
{%- if cookiecutter.tasks == "taskiq" %}
from {{ cookiecutter.project_slug }}.tasks.broker import stream_key
{%- endif %}
from {{ cookiecutter.project_slug }}.users.models import User
from tests.auth_support import INVALID_TOKEN_CHALLENGE, SIGNED_IN, TEST_PASSWORD, add_user, bearer
from tests.mail_support import Inbox, body, free_port, link_token, smtp_server, stalled_server
{%- if cookiecutter.tasks == "taskiq" %}
from tests.redis_support import redis_url
{%- endif %}
from tests.support import PRODUCTION_MAIL, {% if cookiecutter.tasks == "taskiq" %}make_client, {% endif %}make_settings
{%- if cookiecutter.tasks == "taskiq" %}
from tests.task_support import drained, eventually, in_process_worker, running
{%- endif %}

AUTH = "/api/v1/auth"
ME = "/api/v1/users/me"
PUBLIC_BASE_URL = "https://app.example.test"
NEW_PASSWORD = "a fresh and unguessable passphrase"
INVALID_LINK = "The link is invalid, used or expired; ask for a new one."


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Inbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def inbox(smtp: tuple[Inbox, int]) -> Inbox:
    smtp[0].messages.clear()
    return smtp[0]


@pytest.fixture
def settings(settings: Settings, smtp: tuple[Inbox, int]) -> Settings:
    """The suite's settings, sending through the test's SMTP server
{%- if cookiecutter.tasks == "taskiq" %}; a failed mail runs three
    times in all, as `outbox.deliver` tries it, with short pauses{% endif %}."""
{%- if cookiecutter.tasks == "taskiq" %}
    quick = {"task_max_attempts": 3, "task_retry_delay_seconds": 0.01}
    return mail_settings(settings, smtp_port=smtp[1], **quick)
{%- else %}
    return mail_settings(settings, smtp_port=smtp[1])
{%- endif %}


def mail_settings(settings: Settings, **changes: Any) -> Settings:
    values = {"smtp_host": "127.0.0.1", "smtp_tls": "none", "public_base_url": PUBLIC_BASE_URL}
    return settings.model_copy(update=values | changes)


@pytest.fixture(autouse=True)
def no_retry_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "RETRY_DELAYS_SECONDS", (0.0, 0.0))
{%- if cookiecutter.tasks == "taskiq" %}


@pytest.fixture
async def mail_worker(app: FastAPI) -> AsyncIterator[None]:
    """A worker in this process on the application's queue: it sends what requests enqueue."""
    async with in_process_worker(app):
        yield


@pytest.fixture
def anonymous(
    anonymous: httpx.AsyncClient, settings: Settings, mail_worker: None
) -> httpx.AsyncClient:
    """Each response returns once the mail that its request enqueued has been sent (or has
    failed for good), as background tasks have run when the in-process client returns."""
    anonymous.event_hooks["response"].append(lambda _response: drained(settings))
    return anonymous


@pytest.fixture
def client(client: httpx.AsyncClient, settings: Settings, mail_worker: None) -> httpx.AsyncClient:
    """The signed-in client, waiting for the queue as `anonymous` does."""
    client.event_hooks["response"].append(lambda _response: drained(settings))
    return client
{%- else %}


@pytest.fixture
def mail_worker() -> None:
    """Nothing to run: mail leaves in background tasks, after each response."""
{%- endif %}


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """What was logged at INFO or above: LOG_LEVEL=DEBUG is for a developer's machine, where
    a database driver may print a query's parameters (aiosqlite does)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post(f"{AUTH}/token", data={"username": email, "password": password})


def assert_invalid_link(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == INVALID_LINK


async def reset_token(client: httpx.AsyncClient, inbox: Inbox, email: str) -> str:
    response = await client.post(f"{AUTH}/password-reset", json={"email": email})
    assert response.status_code == 202, response.text
    page, token = link_token(inbox.only(email))
    assert page == f"{PUBLIC_BASE_URL}/reset-password"
    return token


async def confirm(
    client: httpx.AsyncClient, token: str, password: str = NEW_PASSWORD
) -> httpx.Response:
    body = {"token": token, "new_password": password}
    return await client.post(f"{AUTH}/password-reset/confirm", json=body)


async def expire_tokens(app: FastAPI) -> None:
    """Every mailed token expired a second ago (no waiting for the real lifetime)."""
    sessionmaker: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    async with sessionmaker() as session:
        past = datetime.now(UTC) - timedelta(seconds=1)
        await session.execute(update(AccountToken).values(expires_at=past))
        await session.commit()


# --- email verification ------------------------------------------------------------------


async def test_registering_a_taken_address_answers_the_same_and_mails_its_owner(
    app: FastAPI, anonymous: httpx.AsyncClient, user: User, inbox: Inbox
) -> None:
    fresh = await anonymous.post(
        f"{AUTH}/register", json={"email": "new@example.com", "password": NEW_PASSWORD}
    )
    inbox.only("new@example.com")
    taken = await anonymous.post(
        f"{AUTH}/register", json={"email": user.email.upper(), "password": NEW_PASSWORD}
    )
    assert (taken.status_code, taken.json()) == (fresh.status_code, fresh.json())

    notice = inbox.only(user.email)
    assert notice["Subject"] == "You already have an account"
    assert "password reset" in body(notice, "plain")
    assert "#token=" not in body(notice, "plain")  # nothing in it works without the mailbox
    # The account is unchanged: its password still works, the new one does not.
    assert (await login(anonymous, user.email, TEST_PASSWORD)).status_code == 200
    assert (await login(anonymous, user.email, NEW_PASSWORD)).status_code == 401

    # Its owner gets at most MAIL_REQUESTS_MAX_PER_ACCOUNT notices in the window.
    limit = app.state.settings.mail_requests_max_per_account
    for _ in range(limit):
        again = await anonymous.post(
            f"{AUTH}/register", json={"email": user.email, "password": NEW_PASSWORD}
        )
        assert again.status_code == 202
    assert [mail["To"] for mail in inbox.messages] == [user.email] * (limit - 1)


async def test_registration_mails_a_link_that_verifies_the_address_once(
    anonymous: httpx.AsyncClient, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    account = {"email": "New@Example.com", "password": NEW_PASSWORD}
    registered = await anonymous.post(f"{AUTH}/register", json=account)
    assert registered.status_code == 202, registered.text

    mail = inbox.only("new@example.com")
    assert mail["Subject"] == "Confirm your email address"
    assert mail["From"] == "noreply@localhost"
    page, token = link_token(mail)
    assert page == f"{PUBLIC_BASE_URL}/verify-email"

    verified = await anonymous.post(f"{AUTH}/verify", json={"token": token})
    assert verified.status_code == 204, verified.text
    pair = (await login(anonymous, "new@example.com", NEW_PASSWORD)).json()
    me = await anonymous.get(ME, headers=bearer(pair["access_token"]))
    assert me.json()["is_verified"] is True
    assert_invalid_link(await anonymous.post(f"{AUTH}/verify", json={"token": token}))

    # The logs say what happened, never what the mail or the request said.
    assert "mail_sent" in caplog.text
    for secret in (token, NEW_PASSWORD, body(mail, "plain").strip().splitlines()[0]):
        assert secret not in caplog.text
    assert "new@example.com" not in logged(caplog)


async def test_unverified_accounts_cannot_log_in_when_verification_is_required(
    app: FastAPI, settings: Settings, anonymous: httpx.AsyncClient, user: User, inbox: Inbox
) -> None:
    app.state.settings = settings.model_copy(update={"require_verified_email": True})
    refused = await login(anonymous, user.email, TEST_PASSWORD)
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert "not verified" in refused.json()["detail"]
    # A wrong password is still the plain 401: the 403 tells only the account's owner.
    assert (await login(anonymous, user.email, "not the password")).status_code == 401

    await anonymous.post(f"{AUTH}/verify/resend", json={"email": user.email})
    _page, token = link_token(inbox.only(user.email))
    assert (await anonymous.post(f"{AUTH}/verify", json={"token": token})).status_code == 204
    assert (await login(anonymous, user.email, TEST_PASSWORD)).status_code == 200


async def test_a_new_email_is_the_accounts_once_the_link_mailed_there_is_opened(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, user: User, inbox: Inbox
) -> None:
    # The user verified the first address (its link is the first mail).
    assert (
        await anonymous.post(f"{AUTH}/verify/resend", json={"email": user.email})
    ).status_code == 202
    _page, old_token = link_token(inbox.only(user.email))
    assert (await anonymous.post(f"{AUTH}/verify", json={"token": old_token})).status_code == 204

    asked = await client.patch(
        ME, json={"current_password": TEST_PASSWORD, "email": "Moved@example.com"}
    )
    assert asked.status_code == 200, asked.text
    # Nothing changes until the new address's owner opens the link.
    assert (asked.json()["email"], asked.json()["is_verified"]) == (user.email, True)
    page, token = link_token(inbox.only("moved@example.com"))
    assert page == f"{PUBLIC_BASE_URL}/verify-email"
    assert (await login(anonymous, "moved@example.com", TEST_PASSWORD)).status_code == 401

    assert (await anonymous.post(f"{AUTH}/verify", json={"token": token})).status_code == 204
    me = (await client.get(ME)).json()
    assert (me["email"], me["is_verified"]) == ("moved@example.com", True)
    # The former address is told, without a link: its owner may not have asked.
    notice = body(inbox.only(user.email), "plain")
    assert "now moved@example.com" in notice
    assert "#token=" not in notice
    assert (await login(anonymous, "moved@example.com", TEST_PASSWORD)).status_code == 200
    assert (await login(anonymous, user.email, TEST_PASSWORD)).status_code == 401
    assert_invalid_link(await anonymous.post(f"{AUTH}/verify", json={"token": token}))

    # Saving the same address again changes nothing and sends nothing.
    same = await client.patch(
        ME, json={"current_password": TEST_PASSWORD, "email": "MOVED@example.com"}
    )
    assert same.json()["email"] == "moved@example.com"
    assert inbox.messages == []


async def test_asking_for_a_taken_address_answers_as_for_a_free_one_and_tells_its_owner(
    app: FastAPI, client: httpx.AsyncClient, user: User, inbox: Inbox
) -> None:
    await add_user(app, "taken@example.com")
    answers = [
        await client.patch(ME, json={"current_password": TEST_PASSWORD, "email": email})
        for email in ("Taken@example.com", "free@example.com")
    ]
    assert {(a.status_code, a.text) for a in answers} == {(200, answers[0].text)}
    assert answers[0].json()["email"] == user.email

    to_free = inbox.messages.pop()
    assert to_free["To"] == "free@example.com"
    assert link_token(to_free)[0] == f"{PUBLIC_BASE_URL}/verify-email"
    notice = inbox.only("taken@example.com")
    assert "move another" in body(notice, "plain")
    assert "#token=" not in body(notice, "plain") + body(notice, "html")
    assert (await client.get(ME)).json()["email"] == user.email


async def test_a_change_link_is_refused_once_another_account_took_the_address(
    app: FastAPI, client: httpx.AsyncClient, anonymous: httpx.AsyncClient, user: User, inbox: Inbox
) -> None:
    await client.patch(ME, json={"current_password": TEST_PASSWORD, "email": "late@example.com"})
    _page, token = link_token(inbox.only("late@example.com"))
    await add_user(app, "late@example.com")

    refused = await anonymous.post(f"{AUTH}/verify", json={"token": token})
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert (await client.get(ME)).json()["email"] == user.email


async def test_a_link_sent_to_a_former_address_stops_working(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, user: User, inbox: Inbox
) -> None:
    old_reset = await reset_token(anonymous, inbox, user.email)
    assert (
        await anonymous.post(f"{AUTH}/verify/resend", json={"email": user.email})
    ).status_code == 202
    _page, old_verify = link_token(inbox.only(user.email))
    asked = await client.patch(
        ME, json={"current_password": TEST_PASSWORD, "email": "new@example.com"}
    )
    assert asked.status_code == 200
    _page, move = link_token(inbox.only("new@example.com"))
    assert (await anonymous.post(f"{AUTH}/verify", json={"token": move})).status_code == 204
    inbox.only(user.email)  # the notice of the change

    assert_invalid_link(await confirm(anonymous, old_reset))
    assert_invalid_link(await anonymous.post(f"{AUTH}/verify", json={"token": old_verify}))


async def test_resending_says_the_same_whoever_asks_and_supersedes_older_links(
    app: FastAPI, anonymous: httpx.AsyncClient, user: User, inbox: Inbox
) -> None:
    await add_user(app, "inactive@example.com", is_active=False)
    answers = [
        await anonymous.post(f"{AUTH}/verify/resend", json={"email": email})
        for email in ("nobody@example.com", "inactive@example.com", user.email)
    ]
    assert {(a.status_code, a.text) for a in answers} == {(202, answers[0].text)}
    _page, first = link_token(inbox.only(user.email))

    await anonymous.post(f"{AUTH}/verify/resend", json={"email": user.email})
    _page, second = link_token(inbox.only(user.email))
    assert_invalid_link(await anonymous.post(f"{AUTH}/verify", json={"token": first}))
    assert (await anonymous.post(f"{AUTH}/verify", json={"token": second})).status_code == 204
    # Verified: no more links for this address.
    await anonymous.post(f"{AUTH}/verify/resend", json={"email": user.email})
    assert inbox.messages == []


# --- password reset ----------------------------------------------------------------------


async def test_a_reset_link_sets_a_new_password_once_and_ends_every_session(
    anonymous: httpx.AsyncClient, user: User, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sessions = [(await login(anonymous, user.email, TEST_PASSWORD)).json() for _ in range(2)]
    for pair in sessions:  # in use before the reset
        assert (await anonymous.get(ME, headers=bearer(pair["access_token"]))).status_code == 200
    token = await reset_token(anonymous, inbox, user.email)

    done = await confirm(anonymous, token)
    assert done.status_code == 204, done.text
    assert (await login(anonymous, user.email, TEST_PASSWORD)).status_code == 401
    pair = (await login(anonymous, user.email, NEW_PASSWORD)).json()
    # The mail reached the account's owner: the address is verified now.
    assert (await anonymous.get(ME, headers=bearer(pair["access_token"]))).json()["is_verified"]
    for path in SIGNED_IN:
        assert (await anonymous.get(path, headers=bearer(pair["access_token"]))).status_code == 200
    for pair in sessions:
        refresh = {"refresh_token": pair["refresh_token"]}
        assert (await anonymous.post(f"{AUTH}/refresh", json=refresh)).status_code == 401
        for path in SIGNED_IN:  # access tokens end too, not when they expire
            refused = await anonymous.get(path, headers=bearer(pair["access_token"]))
            assert refused.status_code == 401, path
            assert refused.headers["www-authenticate"] == INVALID_TOKEN_CHALLENGE
    assert_invalid_link(await confirm(anonymous, token, "yet another long passphrase"))

    for secret in (token, NEW_PASSWORD, TEST_PASSWORD):
        assert secret not in caplog.text


async def test_unknown_and_known_addresses_get_the_same_answer(
    app: FastAPI, anonymous: httpx.AsyncClient, user: User, inbox: Inbox
) -> None:
    await add_user(app, "inactive@example.com", is_active=False)
    answers = [
        await anonymous.post(f"{AUTH}/password-reset", json={"email": email})
        for email in ("nobody@example.com", "inactive@example.com", user.email)
    ]
    assert {a.status_code for a in answers} == {202}
    assert len({a.text for a in answers}) == 1
    headers = [
        {k: v for k, v in a.headers.items() if k not in {"x-request-id", "date"}} for a in answers
    ]
    assert headers[0] == headers[1] == headers[2]
    inbox.only(user.email)  # and no mail for the others


async def test_refused_reset_tokens(
    app: FastAPI, anonymous: httpx.AsyncClient, user: User, inbox: Inbox
) -> None:
    other = await add_user(app, "other@example.com")
    # Superseded: a newer request invalidates the older link.
    older = await reset_token(anonymous, inbox, user.email)
    newer = await reset_token(anonymous, inbox, user.email)
    assert_invalid_link(await confirm(anonymous, older))
    # Tampered with: one character changed.
    tampered = newer[:-1] + ("A" if newer[-1] != "A" else "B")
    assert_invalid_link(await confirm(anonymous, tampered))
    # Of another purpose: a verification token resets nothing.
    await anonymous.post(f"{AUTH}/verify/resend", json={"email": user.email})
    _page, verification = link_token(inbox.only(user.email))
    assert_invalid_link(await confirm(anonymous, verification))
    # Expired.
    await expire_tokens(app)
    assert_invalid_link(await confirm(anonymous, newer))
    # Another user's token resets that user's password only.
    others = await reset_token(anonymous, inbox, other.email)
    assert (await confirm(anonymous, others)).status_code == 204
    assert (await login(anonymous, user.email, TEST_PASSWORD)).status_code == 200
    assert (await login(anonymous, other.email, NEW_PASSWORD)).status_code == 200
    # Garbage never reaches the database.
    garbage = await confirm(anonymous, "not a token!")
    assert garbage.status_code == 422


async def test_a_weak_new_password_does_not_spend_the_token(
    anonymous: httpx.AsyncClient, user: User, inbox: Inbox
) -> None:
    token = await reset_token(anonymous, inbox, user.email)
    weak = await confirm(anonymous, token, "passwordpassword")
    assert weak.status_code == 422, weak.text
    assert (await confirm(anonymous, token)).status_code == 204


async def test_password_reset_can_be_turned_off(
    app: FastAPI, settings: Settings, anonymous: httpx.AsyncClient, user: User, inbox: Inbox
) -> None:
    app.state.settings = settings.model_copy(update={"password_reset_enabled": False})
    asked = await anonymous.post(f"{AUTH}/password-reset", json={"email": user.email})
    assert asked.status_code == 404
    assert (await confirm(anonymous, "x" * 43)).status_code == 404
    assert inbox.messages == []


async def test_mail_requests_are_limited_per_address_and_per_account(
    app: FastAPI, settings: Settings, user: User, inbox: Inbox, anonymous: httpx.AsyncClient
) -> None:
    limits = {"mail_requests_max_per_address": 4, "mail_requests_max_per_account": 2}
    small = settings.model_copy(update=limits)
    app.state.mail_limiters = mail_limiters(small, limiter_factory(app))
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    hooks = anonymous.event_hooks  # the other clients' (waiting for the mail to leave)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", event_hooks=hooks
    ) as flood:
        for _ in range(4):
            asked = await flood.post(f"{AUTH}/password-reset", json={"email": user.email})
            assert asked.status_code == 202
        # Per account: two mails, then the same answer and no mail (no mailbox flooding).
        assert len(inbox.messages) == 2
        limited = await flood.post(f"{AUTH}/password-reset", json={"email": "x@example.com"})
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) > 0


async def test_a_request_that_fails_after_asking_for_a_mail_sends_none(
    anonymous: httpx.AsyncClient, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = {"email": "new@example.com", "password": NEW_PASSWORD}

    send_later = outbox.MailOutbox.send_later

    def fail_after_the_mail(self: outbox.MailOutbox, message: Message) -> None:
        send_later(self, message)
        raise RuntimeError("the request fails after asking for the mail")

    with monkeypatch.context() as patch:
        patch.setattr(outbox.MailOutbox, "send_later", fail_after_the_mail)
        failed = await anonymous.post(f"{AUTH}/register", json=account)
    assert failed.status_code == 500
    assert inbox.messages == []
    # Rolled back: the same registration succeeds, and this time the mail leaves.
    assert (await anonymous.post(f"{AUTH}/register", json=account)).status_code == 202
    assert link_token(inbox.only("new@example.com"))[0] == f"{PUBLIC_BASE_URL}/verify-email"


# --- the mail server misbehaves: the API does not care -----------------------------------


async def test_a_mail_server_that_is_down_fails_nothing_and_is_logged(
    app: FastAPI,
    settings: Settings,
    anonymous: httpx.AsyncClient,
    user: User,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    app.state.mail_sender.settings = mail_settings(
        settings, smtp_port=free_port()
    )  # nobody listens
    asked = await anonymous.post(f"{AUTH}/password-reset", json={"email": user.email})
    assert asked.status_code == 202
    assert asked.json() == RESET_ACCEPTED.model_dump()
    failures = [r.msg for r in caplog.records if isinstance(r.msg, dict)]
    attempts = [f for f in failures if f.get("event") == "mail_attempt_failed"]
    assert [f["attempt"] for f in attempts] == [1, 2, 3]  # retried, a bounded number of times
{%- if cookiecutter.tasks == "taskiq" %}
    # Each attempt is a run of the task, retried by the queue.
    runs = [(f["attempt"], f["error"]) for f in failures if f.get("event") == "task_failed"]
    assert runs == [(1, "TransientTaskError"), (2, "TransientTaskError"), (3, "TransientTaskError")]
{%- endif %}
    assert {"event": "mail_not_delivered", "kind": "password_reset", "attempts": 3}.items() <= next(
        f for f in failures if f.get("event") == "mail_not_delivered"
    ).items()
    assert "#token=" not in caplog.text
    assert user.email not in logged(caplog)


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """`app` behind a real uvicorn server on a loopback port (its lifespan already runs)."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_a_stalled_mail_server_does_not_slow_the_api(
    *,
    app: FastAPI,
    settings: Settings,
    user: User,
    mail_worker: None,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(outbox, "RETRY_DELAYS_SECONDS", ())
    async with stalled_server() as (stalled, port), serving(app) as base_url:
        # A mail attempt would wait 30 s for the server's greeting; requests must not.
        app.state.mail_sender.settings = mail_settings(
            settings, smtp_port=port, smtp_timeout_seconds=30
        )
        async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
            asked = await client.post(f"{AUTH}/password-reset", json={"email": user.email})
            assert asked.status_code == 202
            await asyncio.wait_for(stalled.connected.wait(), 5)  # the mail is stuck now
            again = await client.post(f"{AUTH}/password-reset", json={"email": "x@example.com"})
            assert again.status_code == 202
            live = await client.get("/health/live")
            assert live.status_code == 200
        # The server hangs up: the attempt fails; any further one finds no server. Logged.
        app.state.mail_sender.settings = mail_settings(settings, smtp_port=free_port())
        stalled.release()
        for _ in range(1000):
            if "mail_not_delivered" in caplog.text:
                break
            await asyncio.sleep(0.01)
    assert "mail_not_delivered" in caplog.text


class HangingSender:
    async def send(self, message: Message) -> None:
        await anyio.sleep_forever()


async def test_mail_still_pending_when_the_process_stops_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    message = render("verify_email", to="ann@example.com", subject="Hi", link="https://x/", hours=1)
    with anyio.move_on_after(0.05):  # as uvicorn cancels tasks when graceful shutdown ends
        await outbox.deliver(HangingSender(), message)
    assert "mail_not_delivered" in caplog.text
    assert "shutdown" in caplog.text


# --- the parts -------------------------------------------------------------------------


def test_html_mail_escapes_what_it_quotes_and_text_mail_does_not() -> None:
    message = render(
        "password_reset",
        to="ann@example.com",
        subject="Reset",
        link="https://app.example.test/reset-password#token=<b>&",
        minutes=30,
    )
    assert "#token=<b>&" in message.text
    assert "#token=&lt;b&gt;&amp;" in message.html
    assert "<b>&" not in message.html


async def test_the_log_sender_shows_links_in_development_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    message = render(
        "verify_email", to="ann@example.com", subject="Hi", link="https://x/#token=abc", hours=1
    )
    await LogSender(include_text=True).send(message)
    assert "#token=abc" in caplog.text
    caplog.clear()
    await LogSender(include_text=False).send(message)
    assert "#token=abc" not in caplog.text
    assert "verify_email" in caplog.text


def test_development_without_smtp_host_logs_mail_and_production_refuses_to_start() -> None:
    assert make_settings(environment="development").smtp_host == ""
    production = {"environment": "production", "secret_key": secrets.token_urlsafe(48)}
    with pytest.raises(ValidationError, match="SMTP_HOST must be set in production"):
        make_settings(**production, smtp_host="")
    with pytest.raises(ValidationError, match="PUBLIC_BASE_URL must be an https"):
        make_settings(**production, public_base_url="http://app.example.test")
    assert make_settings(**production).smtp_host == PRODUCTION_MAIL["smtp_host"]


def test_production_needs_mail_even_without_registration_and_password_reset() -> None:
    # Email change (PATCH /users/me) and /auth/verify/resend still send mail.
    production = {
        "environment": "production",
        "secret_key": secrets.token_urlsafe(48),
        "registration_enabled": False,
        "password_reset_enabled": False,
    }
    with pytest.raises(ValidationError, match="SMTP_HOST must be set in production"):
        make_settings(**production, smtp_host="")
    with pytest.raises(ValidationError, match="PUBLIC_BASE_URL must be an https"):
        make_settings(**production, public_base_url="http://app.example.test")
    assert make_settings(**production).smtp_host == PRODUCTION_MAIL["smtp_host"]

{%- if cookiecutter.tasks == "taskiq" %}


# --- the task queue ----------------------------------------------------------------------


async def queued(settings: Settings) -> int:
    """How many messages the queue's stream holds."""
    async with Redis.from_url(redis_url()) as redis:
        return int(await redis.xlen(stream_key(settings)))


async def test_mail_waits_in_the_queue_until_a_worker_sends_it(
    app: FastAPI, settings: Settings, user: User, inbox: Inbox, tmp_path: Path
) -> None:
    """Enqueued by the request, sent by a real worker process started afterwards; the
    worker's log says so, without the address, the token or the text."""
    async with make_client(app) as anonymous:  # no worker in this process
        asked = await anonymous.post(
            f"{AUTH}/password-reset", json={"email": user.email}, headers={"X-Request-ID": "forgot"}
        )
        assert asked.status_code == 202, asked.text
        assert await queued(settings) == 1
        await asyncio.sleep(0.2)
        assert inbox.messages == []  # nobody sends it yet

        async with running(settings, tmp_path / "worker.log") as worker:
            await eventually(lambda: inbox.messages, "the mail")
            await eventually(lambda: worker.lines("task_succeeded"), "the task's end")
        _page, token = link_token(inbox.only(user.email))
        assert (await confirm(anonymous, token)).status_code == 204

    [sent] = worker.lines("mail_sent")
    assert sent["kind"] == "password_reset"
    assert sent["request_id"] == "forgot"  # the request's id travels with the task
    log = worker.log.read_text()
    for secret in (token, user.email, "reset-password"):
        assert secret not in log


async def test_mail_the_queue_cannot_take_leaves_from_the_api(
    app: FastAPI,
    anonymous: httpx.AsyncClient,
    user: User,
    inbox: Inbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis refuses the message after the request committed: the answer stays the same
    for known and unknown addresses (a 503 would tell them apart), and the mail is sent
    from the API process after the response instead."""
    caplog.set_level(logging.INFO)
    broker = app.state.broker
    working_pool = broker.connection_pool
    # The queue's connections go to a port where nothing listens; the rest of Redis works.
    broker.connection_pool = BlockingConnectionPool.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        answers = [
            await anonymous.post(f"{AUTH}/password-reset", json={"email": email})
            for email in ("nobody@example.com", user.email)
        ]
    finally:
        await broker.connection_pool.disconnect()
        broker.connection_pool = working_pool
    assert [(a.status_code, a.json()) for a in answers] == [(202, RESET_ACCEPTED.model_dump())] * 2
    _page, token = link_token(inbox.only(user.email))
    events = [r.msg for r in caplog.records if isinstance(r.msg, dict)]
    [not_queued] = [e for e in events if e.get("event") == "mail_not_queued"]
    assert not_queued["kind"] == "password_reset"
    assert not_queued["error"] == "ConnectionError"
    assert token not in caplog.text
    assert (await confirm(anonymous, token)).status_code == 204
{%- endif %}
