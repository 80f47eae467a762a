"""The template repository itself: README promises, CI, and its own code style."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.template import COOKIECUTTER_JSON, TEMPLATE_DIR
from tests.variants import OPTIONS

README = (TEMPLATE_DIR / "README.md").read_text(encoding="utf-8")


def readme_section(title: str) -> str:
    match = re.search(rf"^## {title}\n(.*?)(?=^## |\Z)", README, flags=re.MULTILINE | re.DOTALL)
    assert match, title
    return match[1]


def quick_start_commands() -> list[str]:
    block = re.findall(r"```bash\n(.*?)```", readme_section("Quick start"), flags=re.DOTALL)[0]
    return [line.strip() for line in block.splitlines() if line.strip()]


def test_quick_start_is_two_commands_generate_then_test() -> None:
    generate, test = quick_start_commands()
    assert generate.startswith("uvx cookiecutter ")
    assert test == "uv run pytest"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = quick_start_commands()[1]
    ci_lines = (TEMPLATE_DIR / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in [line.strip() for line in ci_lines]


def test_options_table_lists_every_question_and_choice() -> None:
    rows = {
        match[1]: match[0]
        for match in re.finditer(r"^\| `([a-z_]+)` \|.*$", readme_section("Options"), re.MULTILINE)
    }
    questions = [key for key in COOKIECUTTER_JSON if not key.startswith("_")]
    assert sorted(rows) == sorted(questions)
    for key, values in OPTIONS.items():
        for value in values:
            shown = str(value).lower() if isinstance(value, bool) else value
            assert f"`{shown}`" in rows[key], (key, value)


def test_every_question_has_a_human_label() -> None:
    prompts = COOKIECUTTER_JSON["__prompts__"]
    for key in COOKIECUTTER_JSON:
        if key.startswith("_"):
            continue
        assert key in prompts, key
        if key in OPTIONS and not isinstance(COOKIECUTTER_JSON[key], bool):
            assert set(prompts[key]) == {"__prompt__", *OPTIONS[key]}, key


def test_hooks_tests_and_bench_are_lint_clean() -> None:
    paths = ["hooks", "tests", "bench"]
    for command in (["check", *paths], ["format", "--check", *paths]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command],
            cwd=TEMPLATE_DIR,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_benchmark_documents_its_command_and_options() -> None:
    """The README's benchmark command starts (a real run takes minutes: not a test)."""
    assert "uv run python bench/run.py" in readme_section("Benchmark")
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--help"],
        cwd=TEMPLATE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--rounds" in result.stdout
