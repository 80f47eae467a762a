"""Typed settings from the environment and `.env` (pydantic-settings).

Every setting is documented in `.env.example`. In production the service refuses to
start with the example secret or a short one.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal
{%- if cookiecutter.auth == "oidc" %}
from urllib.parse import urlsplit
{%- endif %}

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# The value shipped in `.env.example`; a fresh one is written to `.env` at generation.
EXAMPLE_SECRET_KEY = "change-me-to-a-long-random-string"  # noqa: S105
MIN_SECRET_KEY_LENGTH = 32
# Every API route lives under this prefix. Routers carry it themselves (rather than getting
# it from include_router) so that route.path is the full template for metrics and traces.
API_PREFIX = "/api/v1"
{%- if cookiecutter.auth == "oidc" %}
# Where a plain-http issuer is acceptable even in production (a sidecar, a local test).
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
{%- endif %}
{%- if cookiecutter.database != "none" %}
DATABASE_DRIVER = "{{ 'sqlite+aiosqlite' if cookiecutter.database == 'sqlite' else 'postgresql+asyncpg' }}"
{%- endif %}

Environment = Literal["development", "test", "production"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Environment = "development"
    secret_key: SecretStr = SecretStr(EXAMPLE_SECRET_KEY)
    log_level: LogLevel = "INFO"
    # None means: json in production, console elsewhere.
    log_format: Literal["json", "console"] | None = None
    # Comma-separated origins allowed to call the API from a browser; empty disables CORS.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Serving (read by `{{ cookiecutter.project_slug }} serve`).
    host: str = "0.0.0.0"  # noqa: S104 - a container must listen on all interfaces
    port: int = Field(default=8000, ge=1, le=65535)
    web_concurrency: int = Field(default=1, ge=1)
    # Addresses whose X-Forwarded-* headers are trusted (your load balancer), comma-separated.
    forwarded_allow_ips: str = "127.0.0.1"
    # Seconds in-flight requests get to finish after SIGTERM; keep below the orchestrator's grace.
    graceful_shutdown_timeout: int = Field(default=20, ge=0)

    # What the service tells strangers. Docs: /docs, /redoc and /openapi.json; None means on
    # outside production, off in production.
    docs_enabled: bool | None = None
    # Strict-Transport-Security max-age, sent in production only; 0 sends no header.
    hsts_max_age_seconds: int = Field(default=365 * 24 * 3600, ge=0)
{%- if cookiecutter.metrics %}
    # Prometheus metrics, served by `serve` on their own port (on HOST), never on PORT.
    metrics_port: int = Field(default=9100, ge=1, le=65535)
{%- endif %}
{%- if cookiecutter.sentry %}

    # Error reporting; empty disables it.
    sentry_dsn: SecretStr = SecretStr("")
    sentry_traces_sample_rate: float = Field(default=0.0, ge=0.0, le=1.0)
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}

    # Built-in users and tokens.
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=14, ge=1, le=365)
    registration_enabled: bool = True
    # Failed logins allowed per account and client address within the window (per process).
    login_max_failures: int = Field(default=5, ge=1)
    login_window_seconds: int = Field(default=900, ge=1)
{%- elif cookiecutter.auth == "oidc" %}

    # OpenID Connect provider whose access tokens are accepted.
    oidc_issuer: str = ""
    oidc_audience: str = ""
    # Scopes every token must grant (comma- or space-separated); empty requires none.
    oidc_required_scopes: Annotated[list[str], NoDecode] = Field(default_factory=list)
    oidc_jwks_cache_seconds: int = Field(default=3600, ge=0)
    oidc_http_timeout_seconds: float = Field(default=5.0, gt=0)
{%- endif %}
{%- if cookiecutter.database != "none" %}

    # Database.
{%- if cookiecutter.database == "sqlite" %}
    database_url: str = "sqlite+aiosqlite:///./{{ cookiecutter.project_slug }}.db"
{%- else %}
    database_url: str = "postgresql+asyncpg://postgres:postgres@127.0.0.1:5432/{{ cookiecutter.project_slug }}"
    db_pool_size: int = Field(default=5, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_pool_recycle_seconds: int = Field(default=1800, ge=1)
{%- endif %}
    # Upper bound for connecting to the database and for one statement, in seconds.
    db_timeout_seconds: float = Field(default=5.0, gt=0)
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

{%- if cookiecutter.metrics %}

    @model_validator(mode="after")
    def _check_metrics_port(self) -> Settings:
        if self.metrics_port == self.port:
            raise ValueError("METRICS_PORT must differ from PORT: metrics are not public")
        return self
{%- endif %}

    @model_validator(mode="after")
    def _refuse_weak_secret_in_production(self) -> Settings:
        if self.environment != "production":
            return self
        secret = self.secret_key.get_secret_value()
        if secret == EXAMPLE_SECRET_KEY:
            raise ValueError(
                "SECRET_KEY is the example value; set a random one in production, e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        if len(secret) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(
                f"SECRET_KEY is {len(secret)} characters; production needs at least "
                f"{MIN_SECRET_KEY_LENGTH}"
            )
{%- if cookiecutter.auth == "oidc" %}
        if not self.oidc_issuer or not self.oidc_audience:
            raise ValueError("OIDC_ISSUER and OIDC_AUDIENCE must be set in production")
        issuer = urlsplit(self.oidc_issuer)
        if issuer.scheme != "https" and issuer.hostname not in LOOPBACK_HOSTS:
            raise ValueError("OIDC_ISSUER must be an https:// URL in production")
{%- endif %}
        return self

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


class ConfigurationError(SystemExit):
    """Invalid settings: ends the process with a readable message instead of a traceback."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "\n".join(
            f"  - {'.'.join(str(part) for part in error['loc']).upper() or 'settings'}: "
            f"{error['msg']}"
            for error in exc.errors()
        )
        raise ConfigurationError(f"Invalid configuration:\n{problems}") from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
