"""Reading a baked project's own files: Makefile recipes, CI commands, the production command."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

TARGET = re.compile(r"^([a-z][a-z0-9-]*):(?!=)")


def makefile_recipes(makefile: Path) -> dict[str, list[str]]:
    """Each target's recipe lines, with make's `@` echo suppression removed."""
    recipes: dict[str, list[str]] = {}
    current: str | None = None
    for line in makefile.read_text(encoding="utf-8").splitlines():
        if line.startswith("\t") and current is not None:
            recipes[current].append(line.strip().lstrip("@"))
        elif match := TARGET.match(line):
            current = match[1]
            recipes[current] = []
        else:
            current = None
    return recipes


def production_command(project: Path) -> list[str]:
    """`make run`'s command without `uv run`: what the container runs as its CMD."""
    [line] = makefile_recipes(project / "Makefile")["run"]
    words = shlex.split(line)
    assert words[:2] == ["uv", "run"], line
    return words[2:]


def github_run_commands(workflow: Path) -> list[str]:
    document: dict[str, Any] = yaml.safe_load(workflow.read_text(encoding="utf-8"))
    return [
        step["run"].strip()
        for job in document["jobs"].values()
        for step in job.get("steps", [])
        if "run" in step
    ]


def gitlab_script_commands(ci_file: Path, *, image_jobs: tuple[str, ...]) -> list[str]:
    """Every `script` line of every job except those that build the image."""
    document: dict[str, Any] = yaml.safe_load(ci_file.read_text(encoding="utf-8"))
    return [
        line
        for name, job in document.items()
        if isinstance(job, dict) and "script" in job and name not in image_jobs
        for line in job["script"]
    ]


def dockerfile_cmd(dockerfile: Path) -> list[str]:
    [cmd] = [
        line.removeprefix("CMD").strip()
        for line in dockerfile.read_text(encoding="utf-8").splitlines()
        if line.startswith("CMD ")
    ]
    parsed: list[str] = yaml.safe_load(cmd)  # exec form is a JSON array
    return parsed
