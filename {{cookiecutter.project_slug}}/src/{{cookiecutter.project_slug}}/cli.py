"""Command line: `{{ cookiecutter.project_slug }} serve` runs the production server."""

from __future__ import annotations

import argparse
{%- if cookiecutter.metrics %}
import os
{%- endif %}
import signal
import sys
{%- if cookiecutter.metrics %}
import tempfile
{%- endif %}
from types import FrameType

import uvicorn

from {{ cookiecutter.project_slug }}.logging import configure_logging
from {{ cookiecutter.project_slug }}.settings import get_settings


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve() -> int:
    """uvicorn with explicit production flags, all taken from settings."""
    settings = get_settings()
    configure_logging(settings)
    # uvicorn drains in-flight requests on SIGTERM, then re-raises the signal; this handler
    # turns that into exit code 0, which orchestrators read as a clean stop.
    signal.signal(signal.SIGTERM, _exit_cleanly)
{%- if cookiecutter.metrics %}
    if settings.web_concurrency > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Workers are separate processes: they share metrics through files in a fresh
        # directory (set before they start, so each one imports prometheus-client with it).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="prometheus-")
{%- endif %}
    uvicorn.run(
        "{{ cookiecutter.project_slug }}.main:app",
        host=settings.host,
        port=settings.port,
        workers=settings.web_concurrency,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=settings.graceful_shutdown_timeout,
        access_log=False,  # the application writes its own access line
        log_config=None,  # keep the structlog configuration
        server_header=False,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="{{ cookiecutter.project_slug }}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the production server (settings from the environment)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve()
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
