"""Error reporting to Sentry, on when SENTRY_DSN is set.

Nothing secret or personal leaves the process: no personal data (`send_default_pii=False`),
no stack frames' local variables, no request bodies. Every field named in the denylist that
the logs use (`REDACTED_KEYS`) is scrubbed, at any depth, and what looks like a secret in
free text (an error message, a breadcrumb: a URL's password, an argon2 hash, a JWT) is
blanked before the event is sent. Performance traces are sampled at
SENTRY_TRACES_SAMPLE_RATE (0 by default).
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import sentry_sdk
from sentry_sdk.scrubber import EventScrubber

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


def scrub_breadcrumb(crumb: Any, _hint: Any) -> Any:
    return redact(crumb)


def init_sentry(settings: Settings) -> bool:
    """Initialise the SDK for this process; returns whether reporting is on."""
    dsn = settings.sentry_dsn.get_secret_value()
    if not dsn:
        return False
    sentry_sdk.init(
        dsn=dsn,
        environment=settings.environment,
        release=version("{{ cookiecutter.project_slug | replace('_', '-') }}"),
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        event_scrubber=EventScrubber(denylist=sorted(REDACTED_KEYS), recursive=True),
        before_send=scrub_event,
        before_send_transaction=scrub_event,
        before_breadcrumb=scrub_breadcrumb,
        traces_sample_rate=settings.sentry_traces_sample_rate,
    )
    return True
