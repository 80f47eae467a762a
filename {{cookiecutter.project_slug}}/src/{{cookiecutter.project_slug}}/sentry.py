"""Error reporting to Sentry, on when SENTRY_DSN is set.

Nothing secret or personal leaves the process. `data_collection` (the SDK's current
option; it supersedes `send_default_pii`, `include_local_variables` and EventScrubber) turns
off user data, cookies, request bodies, stack frames' local variables and query data. Then
`before_send` blanks, at any depth of the event (breadcrumbs included), every field named
in the logs' denylist (`REDACTED_KEYS`) and what looks like a secret in free text (an error
message, a log line: a URL's password, an argon2 hash, a JWT). Performance traces are
sampled at SENTRY_TRACES_SAMPLE_RATE (0 by default). Without a DSN the SDK is not even
imported: a service that does not report pays nothing for it.
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from typing import Any

from {{ cookiecutter.project_slug }}.logging import REDACTED, REDACTED_KEYS, redact_text
from {{ cookiecutter.project_slug }}.settings import Settings


def redact(value: Any) -> Any:
    """A copy of `value` (an event or a part of one) with secrets replaced, at any depth."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            key: REDACTED if isinstance(key, str) and key.lower() in REDACTED_KEYS else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


def scrub_event(event: Any, _hint: Any) -> Any:
    return redact(event)


def init_sentry(settings: Settings) -> bool:
    """Initialise the SDK for this process; returns whether reporting is on."""
    dsn = settings.sentry_dsn.get_secret_value()
    if not dsn:
        return False
    import sentry_sdk  # noqa: PLC0415 - only when configured (see above)

    sentry_sdk.init(
        dsn=dsn,
        environment=settings.environment,
        release=version("{{ cookiecutter.project_slug | replace('_', '-') }}"),
        data_collection={
            "user_info": False,
            "cookies": {"mode": "off"},
            "http_bodies": [],
            "stack_frame_variables": False,
            "database_query_data": False,
            "queues": False,
            "graphql": {"document": False, "variables": False},
            "gen_ai": {"inputs": False, "outputs": False},
        },
        before_send=scrub_event,  # breadcrumbs travel inside events: scrubbed here too
        before_send_transaction=scrub_event,
        traces_sample_rate=settings.sentry_traces_sample_rate,
    )
    return True


def capture_exception() -> None:
    """Report the exception being handled, once the SDK is loaded (SENTRY_DSN set)."""
    sdk = sys.modules.get("sentry_sdk")
    if sdk is not None:
        sdk.capture_exception()
