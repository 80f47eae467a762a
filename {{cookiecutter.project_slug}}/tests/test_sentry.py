"""Sentry, through its real transport, against a tiny local HTTP server that stands in for
Sentry: what leaves the process is read back byte for byte."""

from __future__ import annotations

import gzip
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import sentry_sdk
from fastapi import FastAPI
from pydantic import BaseModel

from {{ cookiecutter.project_slug }}.sentry import init_sentry
{%- if cookiecutter.auth == "jwt" %}
from {{ cookiecutter.project_slug }}.users import service as users_service
{%- endif %}
from tests.support import make_settings

PASSWORD = "hunter2-sentry-password"
DATABASE_PASSWORD = "db-pass-never-sent"
DATABASE_URL = f"postgresql+asyncpg://app:{DATABASE_PASSWORD}@db.internal:5432/app"
ARGON2_DIGEST = "c2VjcmV0aGFzaGRpZ2VzdHZhbHVl"
ARGON2_HASH = f"$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0${ARGON2_DIGEST}"
JWT_SIGNATURE = "sig_never_sent-abcdefghijklmnop"
JWT = f"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.{JWT_SIGNATURE}"
SECRETS = (PASSWORD, DATABASE_PASSWORD, DATABASE_URL, ARGON2_DIGEST, JWT_SIGNATURE)


class FakeSentry:
    """Accepts envelopes over HTTP and keeps their decoded bytes."""

    def __init__(self) -> None:
        self.envelopes: list[bytes] = []
        received = self.envelopes

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                encoding = self.headers.get("Content-Encoding", "identity")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding != "identity":
                    raise AssertionError(f"cannot decode Content-Encoding {encoding}")
                received.append(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.dsn = f"http://public-key@127.0.0.1:{self.server.server_address[1]}/1"

    def events(self) -> list[dict[str, Any]]:
        """The events (items of type "event") in every envelope received."""
        events = []
        for envelope in self.envelopes:
            lines = envelope.split(b"\n")
            for header, payload in zip(lines[1::2], lines[2::2], strict=False):
                if json.loads(header).get("type") == "event":
                    events.append(json.loads(payload))
        return events


@pytest.fixture
def fake_sentry() -> Iterator[FakeSentry]:
    fake = FakeSentry()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    settings = make_settings(
        sentry_dsn=fake.dsn, environment="production", sentry_traces_sample_rate=1.0
    )
    assert init_sentry(settings)  # traces too: they must be as clean as errors
    try:
        yield fake
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.init()  # no DSN: later tests report nothing
        fake.server.shutdown()
        thread.join()


def reported(fake: FakeSentry) -> tuple[bytes, dict[str, Any]]:
    """Everything sent, as raw bytes, and the one error event."""
    sentry_sdk.flush(timeout=10)
    raw = b"".join(fake.envelopes)
    [event] = fake.events()
    return raw, event


def assert_nothing_secret_in(raw: bytes) -> None:
    for secret in SECRETS:
        assert secret.encode() not in raw, secret


def test_sentry_stays_off_without_a_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(sentry_sdk, "init", lambda **kwargs: calls.append(kwargs))
    assert init_sentry(make_settings(sentry_dsn="")) is False
    assert calls == []


class Signup(BaseModel):
    email: str
    password: str


async def test_an_error_with_secrets_in_scope_reaches_sentry_without_them(
    app: FastAPI, client: httpx.AsyncClient, fake_sentry: FakeSentry
) -> None:
    @app.post("/test/crash")
    async def crash(data: Signup) -> None:
        hashed_password = ARGON2_HASH
        database_url = DATABASE_URL
        token = JWT
        logging.getLogger("test").warning("about to fail with %s and %s", token, database_url)
        sentry_sdk.add_breadcrumb(category="auth", data={"password": data.password, "note": token})
        raise RuntimeError(f"insert failed: {hashed_password} on {database_url} for {token}")

    body = {"email": "ann@example.com", "password": PASSWORD}
    headers = {"Authorization": f"Bearer {JWT}", "Cookie": f"session={JWT}"}
    response = await client.post(f"/test/crash?state={JWT}", json=body, headers=headers)
    assert response.status_code == 500

    raw, event = reported(fake_sentry)
    assert_nothing_secret_in(raw)
    [exception] = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert "insert failed" in exception["value"]
    assert event["request"]["url"].endswith("/test/crash")
    assert (event["environment"], bool(event["release"])) == ("production", True)
    assert all(not frame.get("vars") for frame in exception["stacktrace"]["frames"])
    assert not event["request"].get("data")  # no request body
    assert "cookies" not in event["request"]
    messages = [crumb.get("message") or "" for crumb in event["breadcrumbs"]["values"]]
    assert any("about to fail" in message for message in messages)
{%- if cookiecutter.auth == "jwt" %}


async def test_an_error_during_registration_reaches_sentry_without_the_password(
    anonymous: httpx.AsyncClient, fake_sentry: FakeSentry, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def failing_flush(session: Any, _conflict: str) -> None:
        [user] = list(session.new)
        # What a driver error quoting its parameters looks like.
        raise RuntimeError(
            f"INSERT INTO users failed [parameters: ({user.email!r}, {user.hashed_password!r})]"
            f" on {DATABASE_URL}"
        )

    monkeypatch.setattr(users_service, "flush_or_conflict", failing_flush)
    account = {"email": "ann@example.com", "password": PASSWORD}
    response = await anonymous.post("/api/v1/auth/register", json=account)
    assert response.status_code == 500

    raw, event = reported(fake_sentry)
    assert_nothing_secret_in(raw)
    assert b"$argon2" not in raw
    [exception] = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert "INSERT INTO users failed" in exception["value"]
    assert event["request"]["url"].endswith("/api/v1/auth/register")
{%- endif %}
