"""Error reporting to Sentry, on when SENTRY_DSN is set.

No personal data is sent (`send_default_pii=False`), and performance traces are sampled
at SENTRY_TRACES_SAMPLE_RATE (0 by default).
"""

from __future__ import annotations

from importlib.metadata import version

import sentry_sdk

from {{ cookiecutter.project_slug }}.settings import Settings


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
        traces_sample_rate=settings.sentry_traces_sample_rate,
    )
    return True
