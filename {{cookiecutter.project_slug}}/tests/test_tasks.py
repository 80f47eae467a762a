"""The task queue end to end: the real Redis, real worker processes{% if cookiecutter.database != "none" %}, the real database{% endif %}.
Nothing is faked: a test enqueues as the service does and watches a worker's log{% if cookiecutter.database != "none" %} and rows{% endif %}."""

from __future__ import annotations

{% if cookiecutter.database != "none" -%}
import asyncio
import signal
{% endif -%}
import uuid
from collections.abc import AsyncIterator{% if cookiecutter.database != "none" %}, Iterator{% endif %}
{%- if cookiecutter.auth == "jwt" %}
from datetime import UTC, datetime, timedelta
{%- endif %}
from pathlib import Path
{%- if cookiecutter.database != "none" %}
from typing import Any
{%- endif %}

{% if cookiecutter.database != "none" or cookiecutter.metrics -%}
import httpx
{% endif -%}
import pytest
from redis.asyncio import Redis
{%- if cookiecutter.auth == "jwt" %}
from sqlalchemy import select
{%- endif %}

{% if cookiecutter.auth == "jwt" -%}
from {{ cookiecutter.project_slug }}.auth.models import RefreshToken
from {{ cookiecutter.project_slug }}.auth.tasks import purge_refresh_tokens
from {{ cookiecutter.project_slug }}.db import standalone_session
{% endif -%}
{% if cookiecutter.database != "none" -%}
from {{ cookiecutter.project_slug }}.items.schemas import ItemRead
{% endif -%}
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings
from {{ cookiecutter.project_slug }}.tasks.broker import {% if cookiecutter.database != "none" %}StreamBroker, {% endif %}stream_key
from {{ cookiecutter.project_slug }}.tasks.maintenance import trim_task_stream
{%- if cookiecutter.auth == "jwt" %}
from tests.auth_support import access_headers, add_user, make_user
{%- endif %}
from tests.redis_support import delete_prefixed, redis_url
{%- if cookiecutter.database != "none" %}
from tests.support import {% if cookiecutter.auth == "oidc" %}items_without_login, {% endif %}make_client, throwaway_database
{%- endif %}
from tests.task_support import (
{%- if cookiecutter.database != "none" %}
    WAIT_SECONDS,
{%- endif %}
    eventually,
{%- if cookiecutter.database != "none" %}
    items_locked,
{%- endif %}
    running,
)

ITEMS = "/api/v1/items"


{%- if cookiecutter.database != "none" %}


@pytest.fixture(scope="module")
def tasks_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of this module's own: workers in other processes need real commits, which
    must not show up in other tests."""
    with throwaway_database(tmp_path_factory.mktemp("tasks")) as url:
        yield url
{%- endif %}


@pytest.fixture
async def task_settings(settings: Settings{% if cookiecutter.database != "none" %}, tasks_database_url: str{% endif %}) -> AsyncIterator[Settings]:
    """This test's own queue (keys under a prefix of its own, deleted afterwards) and quick
    retries."""
    prefix = f"{settings.redis_key_prefix}{uuid.uuid4().hex[:8]}:"
    yield settings.model_copy(
        update={
{%- if cookiecutter.database != "none" %}
            "database_url": tasks_database_url,
{%- endif %}
            "redis_key_prefix": prefix,
            "task_retry_delay_seconds": 0.05,
            "task_max_attempts": 3,
        }
    )
    await delete_prefixed(redis_url(), prefix)
{%- if cookiecutter.auth == "jwt" %}


async def add_refresh_tokens(settings: Settings) -> uuid.UUID:
    """A user's expired, revoked and live refresh tokens; the live one's id."""
    now = datetime.now(UTC)
    async with standalone_session(settings) as session, session.begin():
        user = make_user(f"{uuid.uuid4().hex}@example.com")
        session.add(user)
        await session.flush()
        tokens = [
            RefreshToken(id=uuid.uuid4(), family_id=uuid.uuid4(), user_id=user.id, **fields)
            for fields in (
                {"issued_at": now - timedelta(days=30), "expires_at": now - timedelta(days=1)},
                {"issued_at": now, "expires_at": now + timedelta(days=1), "revoked_at": now},
                {"issued_at": now, "expires_at": now + timedelta(days=1)},
            )
        ]
        session.add_all(tokens)
    return tokens[-1].id


async def refresh_token_ids(settings: Settings) -> list[uuid.UUID]:
    async with standalone_session(settings) as session:
        return list(await session.scalars(select(RefreshToken.id)))
{%- endif %}


async def stream_length(settings: Settings) -> int:
    async with Redis.from_url(redis_url()) as redis:
        return int(await redis.xlen(stream_key(settings)))


async def test_the_worker_and_scheduler_run_and_stop_cleanly(
    task_settings: Settings, tmp_path: Path
) -> None:
    """The periodic clean-up run by a real worker (the stream keeps only what is not done
    with){% if cookiecutter.metrics %}, counted in the worker's metrics{% endif %}; the scheduler starts; both exit 0 on SIGTERM."""
    settings = task_settings.model_copy(update={"worker_concurrency": 1})
    app = create_app(settings)
    async with app.router.lifespan_context(app), running(settings, tmp_path / "w.log") as worker:
        await trim_task_stream.kiq()
        await trim_task_stream.kiq()
        await eventually(lambda: len(worker.lines("task_succeeded")) == 2, "two runs")
        # The first run keeps itself and the second; the second drops the first, done with.
        assert [line["removed"] for line in worker.lines("task_stream_trimmed")] == [0, 1]
        assert await stream_length(settings) == 1
{%- if cookiecutter.auth == "jwt" %}
        live_token = await add_refresh_tokens(settings)  # and an expired one, a revoked one
        await purge_refresh_tokens.kiq()
        [purged] = await eventually(lambda: worker.lines("refresh_tokens_purged"), "a purge")
        assert purged["count"] == 2
        assert await refresh_token_ids(settings) == [live_token]
{%- endif %}
{%- if cookiecutter.metrics %}
        port = worker.environment["WORKER_METRICS_PORT"]
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
{%- endif %}
    # Started once the worker is done: at its cron times (minute 0, 10, ...) the scheduler
    # sends runs of its own, which the counts above would then include.
    async with running(settings, tmp_path / "s.log", "scheduler") as scheduler:
        pass
    assert worker.lines("stopping", signal="SIGTERM")
    assert worker.lines("worker_stopped")
    assert scheduler.lines("scheduler_stopped")
    [started] = scheduler.lines("scheduler_started")
    assert started["schedules"] == [
{%- if cookiecutter.auth == "jwt" %}
        "{{ cookiecutter.project_slug }}.auth.tasks:purge_refresh_tokens 17 * * * *",
{%- endif %}
        "{{ cookiecutter.project_slug }}.tasks.maintenance:trim_task_stream */10 * * * *",
    ]
{%- if cookiecutter.metrics %}
    task = "{{ cookiecutter.project_slug }}.tasks.maintenance:trim_task_stream"
    labels = f'task="{task}"'
    assert "tasks_started_total{" + labels + "} 2.0" in metrics
    assert 'tasks_finished_total{outcome="succeeded",' + labels + "} 2.0" in metrics
    assert "task_duration_seconds_count{" + labels + "} 2.0" in metrics
{%- endif %}
{%- if cookiecutter.database != "none" %}


@pytest.fixture
async def live(task_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The application on the test database without the per-test transaction: its commits
    are real, as a worker in another process needs them.{% if cookiecutter.database == "sqlite" %} Its writes begin DEFERRED, as
    reads do, so that its requests (an archive request reads and enqueues) go on while
    `items_locked` holds SQLite's write lock for a task to wait on.{% endif %}"""
    app = create_app(task_settings)
{%- if cookiecutter.auth == "oidc" %}
    app = items_without_login(app)
{%- endif %}
    async with app.router.lifespan_context(app):
{%- if cookiecutter.database == "sqlite" %}
        app.state.sessionmaker = app.state.read_sessionmaker
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}
        user = await add_user(app, f"{uuid.uuid4().hex}@example.com")
        headers = access_headers(task_settings, user.id)
{%- else %}
        headers: dict[str, str] = {}
{%- endif %}
        async with make_client(app, headers) as client:
            yield client


async def new_item(client: httpx.AsyncClient) -> str:
    response = await client.post(ITEMS, json={"name": f"item {uuid.uuid4().hex}"})
    assert response.status_code == 201, response.text
    item_id: str = response.json()["id"]
    return item_id


async def archive(client: httpx.AsyncClient, item_id: str, request_id: str) -> None:
    response = await client.post(f"{ITEMS}/{item_id}/archive", headers={"X-Request-ID": request_id})
    assert response.status_code == 202, response.text
    assert response.json()["archived_at"] is None  # not yet: a worker does it


async def archived_at(client: httpx.AsyncClient, item_id: str) -> Any:
    response = await client.get(f"{ITEMS}/{item_id}")
    assert response.status_code == 200, response.text
    return response.json()["archived_at"]


async def test_an_archive_request_is_run_by_a_worker_that_sigterm_lets_finish(
    live: httpx.AsyncClient, task_settings: Settings, tmp_path: Path
) -> None:
    settings = task_settings
    first, second = await new_item(live), await new_item(live)
    async with running(settings, tmp_path / "w.log") as worker:
        await archive(live, first, "archive-1")
        await eventually(lambda: worker.lines("task_succeeded", request_id="archive-1"), "run")
        assert await archived_at(live, first) is not None
        assert worker.lines("item_archived", request_id="archive-1", item_id=first)
        assert worker.lines("task_started", request_id="archive-1", attempt=1)
        # SIGTERM while a task runs (its write waits for the lock): it finishes, then exit 0.
        async with items_locked(settings.database_url):
            await archive(live, second, "archive-2")
            await eventually(lambda: worker.lines("task_started", request_id="archive-2"), "2")
            worker.process.send_signal(signal.SIGTERM)
            await eventually(lambda: worker.lines("stopping"), "the signal handled")
        assert await asyncio.to_thread(worker.process.wait, WAIT_SECONDS) == 0
    assert worker.lines("task_succeeded", request_id="archive-2")
    assert await archived_at(live, second) is not None


async def test_a_task_enqueued_by_a_request_that_fails_is_never_sent(
    live: httpx.AsyncClient, task_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    item_id = await new_item(live)

    def fail_after_the_enqueue(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the request fails after enqueueing")

    with monkeypatch.context() as patch:
        patch.setattr(ItemRead, "model_validate", fail_after_the_enqueue)
        response = await live.post(f"{ITEMS}/{item_id}/archive")
    assert response.status_code == 500
    assert await stream_length(task_settings) == 0
    await archive(live, item_id, "committed")  # the same request, committed: sent
    assert await stream_length(task_settings) == 1


async def test_a_task_the_queue_refuses_for_a_reason_other_than_redis_is_a_500(
    live: httpx.AsyncClient, task_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis down or hung is a 503 (test_redis.py); anything else is a bug, not an outage."""
    item_id = await new_item(live)

    async def refuse(*_args: object, **_kwargs: object) -> None:
        raise ValueError("a message the broker cannot take")

    with monkeypatch.context() as patch:
        patch.setattr(StreamBroker, "kick", refuse)
        response = await live.post(f"{ITEMS}/{item_id}/archive")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert await stream_length(task_settings) == 0


async def test_a_task_whose_worker_is_killed_runs_again_once(
    live: httpx.AsyncClient, task_settings: Settings, tmp_path: Path
) -> None:
    settings = task_settings.model_copy(update={"task_redelivery_seconds": 1.0})
    item_id = await new_item(live)
    async with (
        running(settings, tmp_path / "first.log") as first,
        items_locked(settings.database_url),
    ):
        await archive(live, item_id, "killed")
        await eventually(lambda: first.lines("task_started"), "the first run")
        first.kill()  # in the middle of the task: its write waits for the lock
    async with running(settings, tmp_path / "second.log") as second:
        await eventually(lambda: second.lines("task_succeeded", request_id="killed"), "rerun")
    assert await archived_at(live, item_id) is not None
    assert first.lines("item_archived") == []
    assert len(second.lines("item_archived", item_id=item_id)) == 1


async def test_a_transient_failure_is_retried_and_a_lasting_one_gives_up(
    live: httpx.AsyncClient, task_settings: Settings, tmp_path: Path
) -> None:
    settings = task_settings.model_copy(update={"db_timeout_seconds": 0.5})
    lasting, transient = await new_item(live), await new_item(live)
    async with running(settings, tmp_path / "w.log") as worker:
        async with items_locked(settings.database_url):  # longer than every attempt
            await archive(live, lasting, "lasting")
            await eventually(lambda: worker.lines("task_failed", attempt=3), "the last attempt")
        async with items_locked(settings.database_url):  # only during the first attempt
            await archive(live, transient, "transient")
            await eventually(lambda: worker.lines("task_failed", request_id="transient"), "fail")
        await eventually(lambda: worker.lines("task_succeeded", request_id="transient"), "retry")
    assert await archived_at(live, lasting) is None
    assert await archived_at(live, transient) is not None
    failed = worker.lines("task_failed", request_id="lasting")
    assert [line["attempt"] for line in failed] == [1, 2, 3]
    assert {line["error"] for line in failed} == {"TransientTaskError"}
    assert worker.lines("task_succeeded", request_id="lasting") == []
    assert [line for line in worker.log_lines() if "Maximum retries" in line["event"]]
{%- endif %}
