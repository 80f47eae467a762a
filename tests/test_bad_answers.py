"""A bad answer stops generation with a clear message and leaves nothing behind.

Run through the real command line, as a user would.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
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
        (['project_name=The "Best" API', "project_slug=best_api"], "project_name"),
        (["description=C:\\services"], "description"),
        (["author_name=Ada\nLovelace"], "author_name"),
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


def test_apostrophes_and_accents_bake_into_files_that_parse(tmp_path: Path) -> None:
    """The characters the hook lets through land inside Python and TOML strings intact."""
    name, description = "Bob's Café API", "It's fast & <safe>: 100% typed"
    result = generate(
        tmp_path, f"project_name={name}", f"description={description}", "author_name=O'Brien"
    )
    assert result.returncode == 0, result.stderr
    (project,) = tmp_path.iterdir()
    package = project / "src" / project.name
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["description"] == description
    assert pyproject["project"]["authors"][0]["name"] == "O'Brien"
    module = ast.parse((package / "main.py").read_text(encoding="utf-8"))
    strings = {node.value for node in ast.walk(module) if isinstance(node, ast.Constant)}
    assert {name, description} <= strings
