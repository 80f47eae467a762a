"""Typed settings from the environment and `.env` (pydantic-settings).

Every setting is documented in `.env.example`. Defaults fail closed: without an explicit
ENVIRONMENT the process is production{% if cookiecutter.auth == "jwt" %}, and outside tests the service refuses to start with
the example SECRET_KEY or a weak one{% endif %}.
"""

from __future__ import annotations

import ipaddress
{% if cookiecutter.auth == "jwt" -%}
import math
import re
from collections import Counter
{% endif -%}
from functools import lru_cache
from typing import Annotated, Literal
{%- if cookiecutter.auth != "none" or cookiecutter.redis %}
from urllib.parse import urlsplit
{%- endif %}

from pydantic import (
    Field,
{%- if cookiecutter.sentry or cookiecutter.auth == "jwt" or cookiecutter.redis %}
    SecretStr,
{%- endif %}
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

{% if cookiecutter.auth == "jwt" -%}
# The value shipped in `.env.example`; a fresh one is written to `.env` at generation.
EXAMPLE_SECRET_KEY = "change-me-to-a-long-random-string"  # noqa: S105
MIN_SECRET_KEY_LENGTH = 32
MIN_SECRET_KEY_BITS = 128
KEY_GENERATION_COMMAND = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
# What people type when asked for a random string: the alphabet, the digits (the keyboard's
# row ends in 0), keyboard rows. Three in a row of one, either way (abc, 321, qwe), are
# the first thing a guesser tries, so the third character counts for nothing.
KEY_RUNS = ("abcdefghijklmnopqrstuvwxyz", "01234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")
RUN_TRIGRAMS = frozenset(
    run[start : start + 3]
    for sequence in KEY_RUNS
    for run in (sequence, sequence[::-1])
    for start in range(len(run) - 2)
)
# Words or numbers joined by -, _, . or spaces: a made-up phrase, guessable however long.
# A generated key never looks like this: capitals, small letters and digits all mix.
WORD = r"(?:[A-Z]?[a-z]+|[A-Z]+|[0-9]+)"
PHRASE = re.compile(rf"{WORD}(?:[-_. ]{WORD})+")
{% endif -%}
# Every API route lives under this prefix. Routers carry it themselves (rather than getting
# it from include_router) so that route.path is the full template for metrics and traces.
API_PREFIX = "/api/v1"
{%- if cookiecutter.auth == "oidc" or cookiecutter.redis %}
# Where plain http (an issuer) or a Redis without a password is acceptable even in
# production: a sidecar, a local test.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
{%- endif %}
{%- if cookiecutter.database != "none" %}
DATABASE_DRIVER = "{{ 'sqlite+aiosqlite' if cookiecutter.database == 'sqlite' else 'postgresql+asyncpg' }}"
{%- endif %}

Environment = Literal["development", "test", "production"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(BaseSettings):
    # hide_input_in_errors: a refused value (a URL with its password) never reaches a log.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", hide_input_in_errors=True
    )

    # Unset means production: development conveniences come from the generated `.env`.
    environment: Environment = "production"
    log_level: LogLevel = "INFO"
    # None means: json in production, console elsewhere.
    log_format: Literal["json", "console"] | None = None
    # Comma-separated origins allowed to call the API from a browser; empty disables CORS.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Serving (read by `{{ cookiecutter.project_slug }} serve` and `{{ cookiecutter.project_slug }} dev`).
    # Loopback: a laptop's server is not reachable from the network. The container image
    # (and Compose, Kubernetes) set HOST=0.0.0.0 to listen on every interface.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    web_concurrency: int = Field(default=1, ge=1)
    # Addresses or networks whose X-Forwarded-* headers are trusted (your load balancer),
    # comma-separated; production refuses `*` and networks as wide (0.0.0.0/0, ::/0).
    forwarded_allow_ips: str = "127.0.0.1"
    # Seconds in-flight requests get to finish after SIGTERM; keep below the orchestrator's grace.
    graceful_shutdown_timeout: int = Field(default=20, ge=0)

    # Requests with a larger body get 413 before it is read.
    max_request_body_bytes: int = Field(default=1024 * 1024, ge=1)
    # Requests whose header names and values add up to more get 431.
    max_request_header_bytes: int = Field(default=16 * 1024, ge=1024)
    # What the service tells strangers. Docs: /docs, /redoc and /openapi.json; None means
    # off in production and on in every other environment.
    docs_enabled: bool | None = None
    # Strict-Transport-Security max-age, sent in production only; 0 sends no header.
    hsts_max_age_seconds: int = Field(default=365 * 24 * 3600, ge=0)
{%- if cookiecutter.metrics %}
    # Prometheus metrics, served by `serve` on their own port (on HOST), never on PORT.
    metrics_port: int = Field(default=9100, ge=1, le=65535)
{%- endif %}
{%- if cookiecutter.tasks == "taskiq" %}

    # Background tasks (`{{ cookiecutter.project_slug }} worker`, `{{ cookiecutter.project_slug }} scheduler`): the queue is the stream
    # `<REDIS_KEY_PREFIX>tasks`, read by the consumer group `<REDIS_KEY_PREFIX>workers`.
    # Tasks one worker process runs at the same time.
    worker_concurrency: int = Field(default=10, ge=1, le=1000)
    # Runs of a task that fails transiently (the database unavailable), the first included;
    # the wait before a retry grows by TASK_RETRY_DELAY_SECONDS each time (up to 60 s).
    task_max_attempts: int = Field(default=5, ge=1, le=100)
    task_retry_delay_seconds: float = Field(default=1.0, ge=0, le=60)
    # A task a worker took but did not acknowledge for this long (the worker died) is given
    # to another worker. Keep it above your longest task, or that task runs twice.
    task_redelivery_seconds: float = Field(default=600, gt=0)
{%- if cookiecutter.metrics %}
    # The worker's Prometheus metrics, on their own port (on HOST).
    worker_metrics_port: int = Field(default=9101, ge=1, le=65535)
{%- endif %}
{%- endif %}
{%- if cookiecutter.sentry %}

    # Error reporting; empty disables it.
    sentry_dsn: SecretStr = SecretStr("")
    sentry_traces_sample_rate: float = Field(default=0.0, ge=0.0, le=1.0)
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}

    # Built-in users and tokens, signed with this key (HS256).
    secret_key: SecretStr = SecretStr(EXAMPLE_SECRET_KEY)
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=14, ge=1, le=365)
    registration_enabled: bool = True
    # Failed logins allowed within LOGIN_WINDOW_SECONDS (counted per process), then 429:
    # per account and client address, per address across accounts, per account across
    # addresses (reaching that one locks the account for everyone until the window ends).
    login_max_failures: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=20, ge=1)
    login_max_failures_per_account: int = Field(default=30, ge=1)
    login_window_seconds: int = Field(default=300, ge=1)
    # Registration attempts allowed per client address within the window (per process).
    registration_max_per_address: int = Field(default=10, ge=1)
    registration_window_seconds: int = Field(default=600, ge=1)

    # Accounts by mail: password reset and email verification (links to PUBLIC_BASE_URL).
    password_reset_enabled: bool = True
    password_reset_token_minutes: int = Field(default=30, ge=1, le=24 * 60)
    email_verification_token_hours: int = Field(default=48, ge=1, le=30 * 24)
    # true: accounts whose email is not verified cannot log in (403).
    require_verified_email: bool = False
    # Mail requests (reset, verification resend) within MAIL_REQUEST_WINDOW_SECONDS: per
    # client address (then 429), and per email address (further requests send nothing).
    mail_requests_max_per_address: int = Field(default=10, ge=1)
    mail_requests_max_per_account: int = Field(default=3, ge=1)
    mail_request_window_seconds: int = Field(default=900, ge=1)
    # Where the links in mails point: your front end's origin (https in production).
    public_base_url: str = "http://127.0.0.1:8000"

    # Mail (SMTP). No SMTP_HOST: mail is written to the log in development, and production
    # refuses to start (email change and verification resend always send mail).
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    # none | starttls (upgrade a plain connection, port 587) | tls (TLS from the start, 465).
    smtp_tls: Literal["none", "starttls", "tls"] = "starttls"
    # Seconds for connecting and for each SMTP command.
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    mail_from: str = "noreply@localhost"
{%- elif cookiecutter.auth == "oidc" %}

    # OpenID Connect provider whose access tokens are accepted.
    oidc_issuer: str = ""
    oidc_audience: str = ""
    # Scopes every token must grant (comma- or space-separated); empty requires none.
    oidc_required_scopes: Annotated[list[str], NoDecode] = Field(default_factory=list)
    oidc_jwks_cache_seconds: int = Field(default=3600, ge=0)
    # The whole fetch of the provider's discovery document and keys, not each read.
    oidc_http_timeout_seconds: float = Field(default=5.0, gt=0)
    # ID tokens are refused as access tokens. Relax for providers that differ: accept
    # `nonce`/`at_hash`/`c_hash` in access tokens, or demand RFC 9068's `typ: at+jwt`.
    oidc_accept_id_token_markers: bool = False
    oidc_require_at_jwt_typ: bool = False
{%- if cookiecutter.database != "none" %}
    # Scopes the example items routes require (empty: none): for reads, and for writes.
    oidc_items_read_scope: str = "items:read"
    oidc_items_write_scope: str = "items:write"
{%- endif %}
{%- endif %}
{%- if cookiecutter.database != "none" %}

    # Database.
{%- if cookiecutter.database == "sqlite" %}
    database_url: str = "sqlite+aiosqlite:///./{{ cookiecutter.project_slug }}.db"
{%- else %}
    database_url: str = "postgresql+asyncpg://postgres:postgres@127.0.0.1:5432/{{ cookiecutter.project_slug }}"
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    db_pool_recycle_seconds: int = Field(default=1800, ge=1)
    # Seconds a request waits for a free pooled connection before its 503 (overload).
    db_pool_timeout_seconds: float = Field(default=1.0, gt=0)
{%- endif %}
    # Upper bound for connecting to the database and for one statement, in seconds.
    db_timeout_seconds: float = Field(default=5.0, gt=0)
{%- endif %}
{%- if cookiecutter.redis %}

    # Redis (redis:// or rediss:// for TLS). Secret: it may carry the password.
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    # Every key this service writes starts with this; several services (or test runs) can
    # share one Redis.
    redis_key_prefix: str = Field(default="{{ cookiecutter.project_slug }}:", min_length=1)
    # Connections per worker process; a request waits for a free one at most the timeout.
    redis_pool_size: int = Field(default=10, ge=1)
    # Upper bound for connecting, for one command and for a free connection, in seconds.
    redis_timeout_seconds: float = Field(default=2.0, gt=0)
    # Seconds a cached read (an item) may be served before it is read again.
    cache_ttl_seconds: int = Field(default=60, ge=1)
{%- endif %}

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value
{%- if cookiecutter.auth == "oidc" %}

    @field_validator("oidc_required_scopes", mode="before")
    @classmethod
    def _split_scopes(cls, value: object) -> object:
        if isinstance(value, str):
            return value.replace(",", " ").split()
        return value
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}

    @field_validator("smtp_host")
    @classmethod
    def _strip_smtp_host(cls, value: str) -> str:
        # " " names no server: stripped, it is empty, which production refuses.
        return value.strip()
{%- endif %}
{%- if cookiecutter.database != "none" %}

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url  # noqa: PLC0415 - keep settings import light
        from sqlalchemy.exc import ArgumentError  # noqa: PLC0415

        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "is not a database URL; expected e.g. {{ 'sqlite+aiosqlite:///./app.db' if cookiecutter.database == 'sqlite' else 'postgresql+asyncpg://user:password@host:5432/name' }}"
            ) from None
        if url.drivername != DATABASE_DRIVER:
            raise ValueError(f"must use the {DATABASE_DRIVER} driver, got {url.drivername!r}")
        return value
{%- endif %}

{%- if cookiecutter.redis %}

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: SecretStr) -> SecretStr:
        if urlsplit(value.get_secret_value()).scheme not in {"redis", "rediss"}:
            raise ValueError("must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379/0")
        return value
{%- endif %}

    @model_validator(mode="after")
    def _refuse_unsafe_settings(self) -> Settings:
        # Every problem at once, one a line: fixing one only to meet the next costs a deploy.
        problems = self._production_problems() if self.environment == "production" else []
{%- if cookiecutter.auth == "jwt" %}
        # Anyone who knows the key can sign a superuser's token; only tests may use a fixed one.
        if self.environment != "test":
            weakness = secret_key_weakness(self.secret_key.get_secret_value())
            if weakness:
                problems.append(f"SECRET_KEY {weakness}; make one with: {KEY_GENERATION_COMMAND}")
{%- endif %}
{%- if cookiecutter.metrics %}
        if self.metrics_port == self.port:
            problems.append("METRICS_PORT must differ from PORT: metrics are not public")
{%- endif %}
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _production_problems(self) -> list[str]:
        problems: list[str] = []
        # `*` (or 0.0.0.0/0) trusts X-Forwarded-For from anyone: every client could choose
        # its own address and so escape the per-address limits.
        trusted_by_all = trusts_every_address(self.forwarded_allow_ips)
        if trusted_by_all:
            problems.append(
                f"FORWARDED_ALLOW_IPS must not be {trusted_by_all} in production: it trusts "
                "every address; name your proxy's address or network (e.g. 10.0.0.0/8)"
            )
{%- if cookiecutter.redis %}
        # An open Redis on the network lets anyone read the cache and reset login limits.
        url = urlsplit(self.redis_url.get_secret_value())
        if url.hostname not in LOOPBACK_HOSTS and not url.password:
            problems.append(
                "REDIS_URL must carry a password in production "
                "(redis://:password@host:6379/0) unless Redis is on loopback"
            )
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}
        # Email change and verification resend send mail whatever the switches say (and
        # registration and password reset, when on): in production none may silently go
        # nowhere, nor link to a plain-http page.
        if not self.smtp_host:
            problems.append(
                "SMTP_HOST must be set in production: the service sends mail (verification, "
                "email change, password reset)"
            )
        if not is_https_with_host(self.public_base_url):
            problems.append(
                "PUBLIC_BASE_URL must be an https:// URL with a host in production (mail links)"
            )
{%- endif %}
{%- if cookiecutter.auth == "oidc" %}
        if not self.oidc_issuer or not self.oidc_audience:
            problems.append("OIDC_ISSUER and OIDC_AUDIENCE must be set in production")
        elif not is_https_or_loopback(self.oidc_issuer):
            problems.append("OIDC_ISSUER must be an https:// URL with a host in production")
{%- endif %}
        return problems

    @property
    def resolved_docs_enabled(self) -> bool:
        if self.docs_enabled is not None:
            return self.docs_enabled
        return self.environment != "production"

    @property
    def hsts_header(self) -> str | None:
        """The Strict-Transport-Security value: production only (TLS ends at the proxy)."""
        if self.environment != "production" or self.hsts_max_age_seconds == 0:
            return None
        return f"max-age={self.hsts_max_age_seconds}"

    @property
    def resolved_log_format(self) -> Literal["json", "console"]:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.environment == "production" else "console"


def trusts_every_address(forwarded_allow_ips: str) -> str | None:
    """The entries of FORWARDED_ALLOW_IPS that let every client address in, or None.

    uvicorn reads each comma-separated entry as `*`, an address, a network, or else as text
    compared literally (a unix socket path): only `*` and networks can let everyone in.
    """
    entries = [entry.strip() for entry in forwarded_allow_ips.split(",") if entry.strip()]
    if "*" in entries:
        return "*"
    networks: dict[str, ipaddress.IPv4Network | ipaddress.IPv6Network] = {}
    for entry in entries:
        try:
            # strict=False: 10.1.2.3/0 (host bits set) is refused too, not read as a host.
            networks[entry] = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            continue  # a host name or socket path: it matches only itself
    catch_all = [entry for entry, network in networks.items() if network.prefixlen == 0]
    if catch_all:
        return ", ".join(catch_all)
    # Together, too: 0.0.0.0/1 and 128.0.0.0/1 are 0.0.0.0/0 in two halves.
    ipv4 = [n for n in networks.values() if isinstance(n, ipaddress.IPv4Network)]
    ipv6 = [n for n in networks.values() if isinstance(n, ipaddress.IPv6Network)]
    for merged in (ipaddress.collapse_addresses(ipv4), ipaddress.collapse_addresses(ipv6)):
        if any(network.prefixlen == 0 for network in merged):
            return ", ".join(networks)
    return None
{%- if cookiecutter.auth != "none" %}


def is_https_with_host(url: str) -> bool:
    """https and a host: `https://` alone would make links such as https:///reset-password,
    or an issuer that no token names."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed [ of an IPv6 host
        return False
    return parts.scheme == "https" and bool(parts.hostname)
{%- endif %}
{%- if cookiecutter.auth == "oidc" %}


def is_https_or_loopback(url: str) -> bool:
    """An https URL with a host, or one on this machine (where plain http cannot be
    intercepted)."""
    if is_https_with_host(url):
        return True
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed [ of an IPv6 host
        return False
    return parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}


def estimated_bits(secret: str) -> float:
    """A simple strength estimate: Shannon entropy of the characters times their number,
    leaving out each character that completes a run (RUN_TRIGRAMS)."""
    counts = Counter(secret).values()
    per_character = -sum(n / len(secret) * math.log2(n / len(secret)) for n in counts)
    lowered = secret.lower()
    in_runs = sum(lowered[start : start + 3] in RUN_TRIGRAMS for start in range(len(secret) - 2))
    return per_character * (len(secret) - in_runs)


def secret_key_weakness(secret: str) -> str | None:
    """Why `secret` is not fit to sign tokens, or None when it is."""
    if secret == EXAMPLE_SECRET_KEY:
        return "is the public example value"
    if not secret.strip():
        return "is empty or whitespace only"
    if len(secret) < MIN_SECRET_KEY_LENGTH:
        return f"is {len(secret)} characters; at least {MIN_SECRET_KEY_LENGTH} are needed"
    return guessable_pattern(secret)


def guessable_pattern(secret: str) -> str | None:
    """What makes a long enough `secret` easy to guess, or None when nothing does."""
    if len(set(secret)) == 1:
        return "repeats one character"
    if PHRASE.fullmatch(secret):
        return "is words joined by -, _, . or spaces: a made-up phrase is guessable"
    if estimated_bits(secret) < MIN_SECRET_KEY_BITS:
        return (
            f"is too predictable (under {MIN_SECRET_KEY_BITS} bits of entropy by estimate; "
            "runs such as abc, 321 or qwerty count for nothing)"
        )
    return None
{%- endif %}


class ConfigurationError(SystemExit):
    """Invalid settings: ends the process with a readable message instead of a traceback."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        # One line a problem: a check that finds several reports them one a line.
        problems = "\n".join(
            f"  - {'.'.join(str(part) for part in error['loc']).upper() or 'settings'}: {line}"
            for error in exc.errors()
            for line in error["msg"].removeprefix("Value error, ").splitlines()
        )
        raise ConfigurationError(f"Invalid configuration:\n{problems}") from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
