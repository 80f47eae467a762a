"""Validate the answers before anything is written.

Runs in cookiecutter's own interpreter, so it uses the standard library only. The
unrendered file stays valid Python: the template's tests import `validate` directly.
A bad answer prints `ERROR: <field>: <what is wrong>. <how to fix>` and exits 1;
cookiecutter then removes the half-made project directory.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
from typing import Any

SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# Import names that a generated package must not shadow: its own dependencies and
# the names pytest and tooling treat specially.
RESERVED_NAMES = frozenset(
    {
        "alembic",
        "anyio",
        "app",
        "asyncpg",
        "aiosqlite",
        "fastapi",
        "httpx",
        "email_validator",
        "jwt",
        "multipart",
        "migrations",
        "mypy",
        "python_multipart",
        "pwdlib",
        "pydantic",
        "pydantic_settings",
        "pytest",
        "ruff",
        "schemathesis",
        "sqlalchemy",
        "src",
        "starlette",
        "structlog",
        "test",
        "tests",
        "uvicorn",
    }
)


def slug_problem(slug: str) -> str | None:
    """What is wrong with a package name, and how to fix it (None when it is fine). The
    default slug is derived to pass this (`local_extensions.package_name`)."""
    if not SLUG_PATTERN.match(slug):
        return (
            f"{slug!r} is not a lowercase Python identifier. Use lowercase letters, digits "
            "and underscores, starting with a letter, e.g. 'billing_api'."
        )
    if keyword.iskeyword(slug) or slug in sys.stdlib_module_names or slug in RESERVED_NAMES:
        return (
            f"{slug!r} would shadow the Python module of the same name. "
            f"Choose another name, e.g. '{slug}_service'."
        )
    return None


# Answers written inside quoted strings of the generated files (Python, TOML) and into
# Markdown: a double quote or a backslash would end or change the string, a line break
# would split it.
FREE_TEXT_FIELDS = ("project_name", "description", "author_name")
UNQUOTABLE = re.compile(r'["\\\x00-\x1f\x7f]')


def free_text_problem(value: str) -> str | None:
    """What is wrong with a free-text answer (None when it is fine)."""
    if found := UNQUOTABLE.search(value):
        return (
            f"{value!r} contains {found.group()!r}, which the generated files cannot quote. "
            "Leave out double quotes, backslashes and line breaks (apostrophes are fine)."
        )
    return None


def validate(context: dict[str, Any]) -> list[str]:
    """Return one `<field>: <problem>. <fix>` message per bad answer (empty when all is well)."""
    errors: list[str] = []
    name = str(context.get("project_name", "")).strip()
    if not name:
        errors.append("project_name: it is empty. Give the project a name, e.g. 'Billing API'.")

    if problem := slug_problem(str(context.get("project_slug", ""))):
        errors.append(f"project_slug: {problem}")

    if context.get("kubernetes") and not context.get("docker"):
        errors.append(
            "kubernetes: the manifests deploy the image that the Dockerfile builds. "
            "Choose docker=true, or kubernetes=false."
        )

    if context.get("auth") == "jwt" and context.get("database") == "none":
        errors.append(
            "auth: built-in users need a database. "
            "Choose database=sqlite or postgresql, or auth=oidc."
        )

    if context.get("tasks", "none") != "none" and not context.get("redis"):
        errors.append("tasks: the task queue needs Redis. Choose redis=true.")

    for field in FREE_TEXT_FIELDS:
        if problem := free_text_problem(str(context.get(field, ""))):
            errors.append(f"{field}: {problem}")

    email = str(context.get("author_email", ""))
    if not EMAIL_PATTERN.match(email):
        errors.append(
            f"author_email: {email!r} does not look like an email address. "
            "Use the form name@example.com."
        )
    return errors


def main() -> int:
    context = json.loads(r"""{{ cookiecutter | jsonify }}""")
    errors = validate(context)
    for error in errors:
        print(f"ERROR: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
