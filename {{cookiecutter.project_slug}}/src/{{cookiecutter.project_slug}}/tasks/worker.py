"""The worker and the scheduler: a second entry point into the same code, not a second app.

Both enter the lifespans that `create_app()` lists (logging, Sentry, the database engine,
Redis, tracing, the broker), so a task sees the same settings and session rules as a
request; they serve no HTTP. The worker runs tasks until SIGTERM, then takes no new ones,
lets running ones finish (up to GRACEFUL_SHUTDOWN_TIMEOUT seconds) and exits 0; a message
it took but did not finish is given to another worker after TASK_REDELIVERY_SECONDS. The
scheduler sends the periodic tasks at their times: run exactly one.
"""

from __future__ import annotations

import asyncio
import signal
import tempfile
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import structlog
from fastapi import FastAPI
{%- if cookiecutter.metrics %}
from prometheus_client import CollectorRegistry
{%- endif %}
from taskiq.api.scheduler import run_scheduler_task
from taskiq.brokers.shared_broker import async_shared_broker
from taskiq.receiver import Receiver
from taskiq.schedule_sources import LabelScheduleSource
from taskiq.scheduler.scheduler import TaskiqScheduler

# Every module that declares tasks, imported so that the worker knows them.
{%- if cookiecutter.auth == "jwt" %}
from {{ cookiecutter.project_slug }}.auth import tasks as auth_tasks
{%- endif %}
{%- if cookiecutter.database != "none" %}
from {{ cookiecutter.project_slug }}.items import tasks as items_tasks
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}
from {{ cookiecutter.project_slug }}.mail import tasks as mail_tasks
{%- endif %}
from {{ cookiecutter.project_slug }}.main import create_app
{%- if cookiecutter.metrics %}
from {{ cookiecutter.project_slug }}.metrics import serve_registry
{%- endif %}
from {{ cookiecutter.project_slug }}.settings import Settings, get_settings
from {{ cookiecutter.project_slug }}.tasks import maintenance
from {{ cookiecutter.project_slug }}.tasks.broker import StreamBroker
{%- if cookiecutter.metrics %}
from {{ cookiecutter.project_slug }}.tasks.middleware import TaskMetricsMiddleware
{%- endif %}

TASK_MODULES = ({% if cookiecutter.auth == "jwt" %}auth_tasks, {% endif %}{% if cookiecutter.database != "none" %}items_tasks, {% endif %}{% if cookiecutter.auth == "jwt" %}mail_tasks, {% endif %}maintenance{% if cookiecutter.database == "none" %},{% endif %})
# Touched every HEARTBEAT_SECONDS while the worker's event loop runs: the liveness probe
# (deploy/k8s/worker.yaml) restarts a worker whose loop stopped turning.
HEARTBEAT_FILE = Path(tempfile.gettempdir()) / "{{ cookiecutter.project_slug }}-worker.alive"
HEARTBEAT_SECONDS = 10

logger = structlog.stdlib.get_logger("worker")


@asynccontextmanager
async def feature_lifespans(settings: Settings) -> AsyncIterator[FastAPI]:
    """The application's features, entered as `serve` enters them, without serving HTTP."""
    app = create_app(settings)  # configures logging (and Sentry) as for the API
    async with app.router.lifespan_context(app):
        yield app


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()

    def stopping(signum: signal.Signals) -> None:
        logger.info("stopping", signal=signum.name)
        stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping, signum)
    return stop


async def _heartbeat() -> None:
    while True:
        HEARTBEAT_FILE.touch()
        await asyncio.sleep(HEARTBEAT_SECONDS)


async def work(settings: Settings) -> None:
    stop = _stop_on_signals()
    async with feature_lifespans(settings) as app:
        broker: StreamBroker = app.state.broker
        broker.is_worker_process = True
{%- if cookiecutter.metrics %}
        registry = CollectorRegistry()
        broker.add_middlewares(TaskMetricsMiddleware(registry))
{%- endif %}
        # Runs sync tasks, if you write any; async ones run on the event loop.
        with ThreadPoolExecutor(max_workers=1) as executor:
            receiver = Receiver(
                broker,
                executor=executor,
                max_async_tasks=settings.worker_concurrency,
                wait_tasks_timeout=settings.graceful_shutdown_timeout,
            )
            heartbeat = asyncio.create_task(_heartbeat())
            logger.info(
                "worker_started",
                tasks=sorted(broker.get_all_tasks()),
                concurrency=settings.worker_concurrency,
            )
            try:
{%- if cookiecutter.metrics %}
                with serve_registry(
                    settings.host, settings.worker_metrics_port, registry, "WORKER_METRICS_PORT"
                ):
                    await receiver.listen(stop)
{%- else %}
                await receiver.listen(stop)
{%- endif %}
            finally:
                heartbeat.cancel()
                HEARTBEAT_FILE.unlink(missing_ok=True)
        logger.info("worker_stopped")


async def schedule(settings: Settings) -> None:
    stop = _stop_on_signals()
    async with feature_lifespans(settings) as app:
        # The schedules are labels of the shared tasks (the source skips tasks of any other
        # broker); what is due is sent through the broker the lifespan built.
        source = LabelScheduleSource(async_shared_broker)
        scheduler = TaskiqScheduler(app.state.broker, sources=[source])
        await source.startup()
        schedules = sorted(f"{task.task_name} {task.cron}" for task in await source.get_schedules())
        running = asyncio.create_task(run_scheduler_task(scheduler))
        logger.info("scheduler_started", schedules=schedules)
        await stop.wait()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        logger.info("scheduler_stopped")


def run_worker() -> int:
    asyncio.run(work(get_settings()))
    return 0


def run_scheduler() -> int:
    asyncio.run(schedule(get_settings()))
    return 0
