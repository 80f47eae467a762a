"""Prune what was not chosen, write `.env` with fresh secrets, print the next steps.

Runs in cookiecutter's own interpreter (standard library only) with the generated project
as the working directory. `FEATURES` is the one declaration of which files belong to which
option; the template's tests read it too. The unrendered file stays valid Python.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Feature:
    """Paths that exist only when every `when` option has one of its listed values."""

    when: dict[str, tuple[Any, ...]]
    paths: tuple[str, ...]

    def is_chosen(self, context: dict[str, Any]) -> bool:
        return all(context[option] in values for option, values in self.when.items())


# Paths are relative to the project root; `{slug}` is the package name.
FEATURES: tuple[Feature, ...] = (
    Feature(
        when={"database": ("sqlite", "postgresql")},
        paths=(
            "alembic.ini",
            "migrations",
            "src/{slug}/db.py",
            "src/{slug}/items",
            "tests/test_database.py",
            "tests/test_items.py",
        ),
    ),
    Feature(
        when={"database": ("postgresql",)},
        paths=("tests/test_database_outage.py", "tests/tcp_proxy.py"),
    ),
    Feature(
        when={"auth": ("jwt", "oidc")},
        paths=("src/{slug}/auth", "tests/auth_support.py"),
    ),
    Feature(
        when={"auth": ("jwt",)},
        paths=(
            "src/{slug}/auth/models.py",
            "src/{slug}/auth/passwords.py",
            "src/{slug}/auth/rate_limit.py",
            "src/{slug}/auth/service.py",
            "src/{slug}/auth/tokens.py",
            "src/{slug}/users",
            "src/{slug}/accounts",
            "src/{slug}/mail",
            "migrations/versions/20260102_0002_account_mail.py",
            "migrations/versions/20260104_0004_users_token_version.py",
            "tests/test_auth_jwt.py",
            "tests/test_users.py",
            "tests/test_mail.py",
            "tests/mail_support.py",
        ),
    ),
    Feature(
        when={"auth": ("oidc",)},
        paths=("src/{slug}/auth/oidc.py", "tests/test_auth_oidc.py"),
    ),
    Feature(
        when={"docker": (True,)},
        paths=(".dockerignore", "Dockerfile", "compose.yaml"),
    ),
    Feature(
        when={"ci": ("github",)},
        paths=(".github",),
    ),
    Feature(
        when={"ci": ("gitlab",)},
        paths=(".gitlab-ci.yml",),
    ),
    Feature(
        when={"metrics": (True,)},
        paths=("src/{slug}/metrics.py", "tests/test_metrics.py"),
    ),
    Feature(
        when={"tracing": (True,)},
        paths=("src/{slug}/tracing.py", "tests/test_tracing.py"),
    ),
    Feature(
        when={"sentry": (True,)},
        paths=("src/{slug}/sentry.py", "tests/test_sentry.py"),
    ),
    Feature(
        when={"redis": (True,)},
        paths=(
            "src/{slug}/redis.py",
            "tests/redis_support.py",
            "tests/tcp_proxy.py",
            "tests/test_redis.py",
        ),
    ),
    Feature(
        when={"tasks": ("taskiq",)},
        paths=("src/{slug}/tasks", "tests/test_tasks.py", "tests/task_support.py"),
    ),
    Feature(
        when={"tasks": ("taskiq",), "database": ("sqlite", "postgresql")},
        paths=(
            "src/{slug}/items/tasks.py",
            "migrations/versions/20260103_0003_items_archived_at.py",
        ),
    ),
    Feature(
        when={"tasks": ("taskiq",), "auth": ("jwt",)},
        paths=("src/{slug}/auth/tasks.py", "src/{slug}/mail/tasks.py"),
    ),
    # `kubernetes` is in every condition below: with it off, the whole folder goes.
    Feature(
        when={"kubernetes": (True,)},
        paths=("deploy",),
    ),
    Feature(
        when={"kubernetes": (True,), "database": ("postgresql",)},
        paths=("deploy/k8s/migrate-job.yaml",),
    ),
    # Several replicas need a shared database: no autoscaler or disruption budget on SQLite.
    Feature(
        when={"kubernetes": (True,), "database": ("postgresql", "none")},
        paths=("deploy/k8s/hpa.yaml", "deploy/k8s/pdb.yaml"),
    ),
    Feature(
        when={"kubernetes": (True,), "database": ("sqlite",)},
        paths=("deploy/k8s/pvc.yaml",),
    ),
    Feature(
        when={"kubernetes": (True,), "tasks": ("taskiq",)},
        paths=("deploy/k8s/worker.yaml", "deploy/k8s/scheduler.yaml"),
    ),
)

SECRET_SETTINGS = ("SECRET_KEY",)


def feature_paths(feature: Feature, slug: str) -> list[str]:
    return [path.format(slug=slug) for path in feature.paths]


def paths_to_remove(context: dict[str, Any]) -> list[str]:
    """Every path that belongs to a feature that was not chosen, and to no chosen one."""
    slug = context["project_slug"]
    kept = {p for f in FEATURES if f.is_chosen(context) for p in feature_paths(f, slug)}
    dropped = {p for f in FEATURES if not f.is_chosen(context) for p in feature_paths(f, slug)}
    return sorted(dropped - kept)


def remove_paths(root: Path, paths: list[str]) -> None:
    for relative in paths:
        path = root / relative
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def fresh_secret() -> str:
    return secrets.token_urlsafe(48)  # 48 random bytes


def render_env(example: str, new_secret: Callable[[], str] = fresh_secret) -> str:
    """Copy `.env.example`, giving every secret setting a fresh random value."""
    lines = []
    for line in example.splitlines():
        key = line.split("=", 1)[0].strip()
        if key in SECRET_SETTINGS:
            line = f"{key}={new_secret()}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """Write `path` readable and writable by its owner only, from its first byte: created
    with mode 0600 (never wider, whatever the umask) and O_EXCL, so no existing file or
    symlink is reused. A file left by an earlier run is replaced."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)


def next_steps(context: dict[str, Any]) -> str:
    slug = context["project_slug"]
    steps = [
        f"cd {slug}",
        "uv sync                 # install (uv: https://docs.astral.sh/uv/)",
    ]
    if context["database"] == "postgresql":
        steps.append("# DATABASE_URL in .env names the PostgreSQL server and database")
        steps.append("make db                 # create that database (once, on a local server)")
    if context["database"] != "none":
        steps.append("make migrate            # create the database schema")
    if context["redis"]:
        steps.append("# REDIS_URL in .env names the Redis server (start one: see README, Test)")
    if context["auth"] == "jwt":
        steps.append(f"uv run {slug} create-superuser --email you@example.com")
    if context["auth"] == "oidc":
        steps.append("# set OIDC_ISSUER and OIDC_AUDIENCE in .env (your identity provider)")
    steps += [
        "make test               # lint-free, typed, tested from the first commit",
        "git init                # unless already in one: pre-commit needs a git repository",
        "uv run pre-commit install",
        "make dev                # http://127.0.0.1:8000/docs",
    ]
    if context["tasks"] != "none":
        steps.append("make worker             # and `make scheduler`: background tasks")
    return "\n".join(f"  {step}" for step in steps)


def main() -> int:
    context = json.loads(r"""{{ cookiecutter | jsonify }}""")
    root = Path.cwd()
    remove_paths(root, paths_to_remove(context))
    env_example = (root / ".env.example").read_text(encoding="utf-8")
    write_private(root / ".env", render_env(env_example))
    print(f"\nCreated {context['project_name']} in ./{context['project_slug']}\n")
    print("Next steps:")
    print(next_steps(context))
    if any(f"\n{key}=" in f"\n{env_example}" for key in SECRET_SETTINGS):
        print("\n.env holds a fresh SECRET_KEY and is git-ignored; never commit it.\n")
    else:
        print("\n.env holds your local settings and is git-ignored; never commit it.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
