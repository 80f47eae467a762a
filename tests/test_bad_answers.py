"""A bad answer stops generation with a clear message and leaves nothing behind.

Run through the real command line, as a user would.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.template import TEMPLATE_DIR


def generate(output: Path, *answers: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--no-input",
            "--default-config",
            "-o",
            str(output),
            str(TEMPLATE_DIR),
            *answers,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        (["project_slug=Not A Slug"], "project_slug"),
        (["project_slug=fastapi"], "project_slug"),
        (["project_slug=os"], "project_slug"),
        (["project_name=", "project_slug=billing"], "project_name"),
        (["author_email=nope"], "author_email"),
        (["kubernetes=true", "docker=false"], "kubernetes"),
        (["tasks=taskiq", "redis=false"], "tasks"),
    ],
)
def test_the_hook_stops_with_an_error_line_and_leaves_nothing(
    tmp_path: Path, answers: list[str], field: str
) -> None:
    result = generate(tmp_path, *answers)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ")]
    assert any(line.startswith(f"ERROR: {field}: ") for line in errors), result.stderr
    assert list(tmp_path.iterdir()) == []


def test_built_in_users_without_a_database_get_the_documented_message(tmp_path: Path) -> None:
    result = generate(tmp_path, "auth=jwt", "database=none")
    assert result.returncode != 0
    assert (
        "ERROR: auth: built-in users need a database. "
        "Choose database=sqlite or postgresql, or auth=oidc."
    ) in result.stderr.splitlines()
    assert list(tmp_path.iterdir()) == []


def test_a_task_queue_without_redis_gets_the_documented_message(tmp_path: Path) -> None:
    result = generate(tmp_path, "tasks=taskiq", "redis=false")
    assert result.returncode != 0
    assert (
        "ERROR: tasks: the task queue needs Redis. Choose redis=true."
    ) in result.stderr.splitlines()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ("database=mongodb", "choices are ['sqlite', 'postgresql', 'none']"),
        ("docker=maybe", "could not be converted to a boolean"),
    ],
)
def test_an_answer_outside_the_choices_is_refused_before_anything_is_written(
    tmp_path: Path, answer: str, says: str
) -> None:
    # cookiecutter itself checks choices, before any hook: its message is its last line.
    result = generate(tmp_path, answer)
    assert result.returncode != 0
    assert says in result.stderr.strip().splitlines()[-1]
    assert list(tmp_path.iterdir()) == []
