"""Unit tests of the hooks' pure functions (imported from the unrendered files)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.template import FREE_TEXT_DEFAULTS, PROJECT_TEMPLATE, post_gen, pre_gen
from tests.variants import DEFAULTS


def answers(**changes: Any) -> dict[str, Any]:
    return {**FREE_TEXT_DEFAULTS, **DEFAULTS, **changes}


def test_the_defaults_are_valid() -> None:
    assert pre_gen.validate(answers()) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"project_name": "  "}, "project_name"),
        ({"project_slug": "Not A Slug"}, "project_slug"),
        ({"project_slug": "MyService"}, "project_slug"),
        ({"project_slug": "1service"}, "project_slug"),
        ({"project_slug": "my-service"}, "project_slug"),
        ({"project_slug": "class"}, "project_slug"),
        ({"project_slug": "os"}, "project_slug"),
        ({"project_slug": "json"}, "project_slug"),
        ({"project_slug": "fastapi"}, "project_slug"),
        ({"project_slug": "test"}, "project_slug"),
        ({"project_slug": "sqlalchemy"}, "project_slug"),
        ({"author_email": "nope"}, "author_email"),
        ({"author_email": "a@b"}, "author_email"),
        ({"kubernetes": True, "docker": False}, "kubernetes"),
        ({"auth": "jwt", "database": "none"}, "auth"),
    ],
)
def test_each_rule_names_the_field_and_the_fix(changes: dict[str, Any], field: str) -> None:
    [message] = pre_gen.validate(answers(**changes))
    assert message.startswith(f"{field}: ")
    # "field: what is wrong. How to fix it." (the fix may give an example, "e.g. ...").
    problem, _, fix = message.removeprefix(f"{field}: ").partition(". ")
    assert problem, message
    assert fix[:1].isupper(), message
    assert fix.endswith("."), message


def test_valid_slugs_pass() -> None:
    for slug in ("billing", "billing_api", "api2"):
        assert pre_gen.validate(answers(project_slug=slug)) == []


@pytest.mark.parametrize("database", ["sqlite", "postgresql", "none"])
def test_database_paths_are_pruned_by_the_choice(database: str) -> None:
    removed = set(post_gen.paths_to_remove(answers(database=database)))
    db_paths = {"alembic.ini", "migrations", "src/my_service/db.py", "src/my_service/items"}
    if database == "none":
        assert db_paths <= removed
    else:
        assert not db_paths & removed
    assert ("tests/test_database_outage.py" in removed) == (database != "postgresql")


def test_kubernetes_off_removes_the_whole_folder() -> None:
    removed = post_gen.paths_to_remove(answers(kubernetes=False))
    assert "deploy" in removed
    kept = post_gen.paths_to_remove(answers(kubernetes=True, database="sqlite"))
    assert "deploy" not in kept
    assert "deploy/k8s/hpa.yaml" in kept
    assert "deploy/k8s/pvc.yaml" not in kept


def test_every_declared_path_exists_in_the_template() -> None:
    for feature in post_gen.FEATURES:
        for path in post_gen.feature_paths(feature, "{{cookiecutter.project_slug}}"):
            assert (PROJECT_TEMPLATE / path).exists(), path


def test_every_feature_names_real_options() -> None:
    for feature in post_gen.FEATURES:
        for option, values in feature.when.items():
            assert option in DEFAULTS, option
            assert values, option


def test_render_env_replaces_only_the_secret() -> None:
    example = "ENVIRONMENT=development\n# SECRET_KEY=comment\nSECRET_KEY=change-me\nPORT=8000"
    rendered = post_gen.render_env(example, new_secret=lambda: "s3cr3t")
    assert (
        rendered == "ENVIRONMENT=development\n# SECRET_KEY=comment\nSECRET_KEY=s3cr3t\nPORT=8000\n"
    )


def test_render_env_makes_a_new_long_secret_each_time() -> None:
    example = "SECRET_KEY=change-me"
    first, second = post_gen.render_env(example), post_gen.render_env(example)
    assert first != second
    assert len(first.strip().split("=", 1)[1]) >= 64  # token_urlsafe(48): 48 random bytes


@pytest.mark.parametrize(("database", "mentions"), [("none", False), ("sqlite", True)])
def test_next_steps_follow_the_choices(database: str, mentions: bool) -> None:
    steps = post_gen.next_steps(answers(database=database))
    assert ("make migrate" in steps) is mentions
    assert "make test" in steps
    # pre-commit installs into a git repository, which a fresh project is not yet.
    assert steps.index("git init") < steps.index("uv run pre-commit install")


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask: a file created without an explicit mode is world-readable."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("open_umask")
def test_env_is_private_from_its_first_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is created with 0600 (not made private afterwards): its mode is checked
    the moment it exists, before a byte is written."""
    target = tmp_path / ".env"
    real_open = os.open
    modes_at_creation: list[int] = []

    def watching_open(path: Any, flags: int, mode_bits: int = 0o777) -> int:
        descriptor = real_open(path, flags, mode_bits)
        if Path(path) == target:
            assert flags & os.O_CREAT
            assert flags & os.O_EXCL
            modes_at_creation.append(stat.S_IMODE(os.fstat(descriptor).st_mode))
        return descriptor

    monkeypatch.setattr(os, "open", watching_open)
    post_gen.write_private(target, "SECRET_KEY=abc\n")
    assert modes_at_creation == [0o600]
    assert mode(target) == 0o600
    assert target.read_text() == "SECRET_KEY=abc\n"


@pytest.mark.usefixtures("open_umask")
def test_env_replaces_an_earlier_file_and_never_follows_a_link(tmp_path: Path) -> None:
    target, elsewhere = tmp_path / ".env", tmp_path / "elsewhere"
    elsewhere.write_text("untouched")
    target.symlink_to(elsewhere)
    post_gen.write_private(target, "SECRET_KEY=new\n")
    assert not target.is_symlink()
    assert elsewhere.read_text() == "untouched"
    assert mode(target) == 0o600
