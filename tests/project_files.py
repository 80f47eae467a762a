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


def dockerfile_instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            instruction, _, arguments = pending.strip().partition(" ")
            instructions.append((instruction.upper(), " ".join(arguments.split())))
            pending = ""
    return instructions


def dockerfile_final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    """The instructions after the last FROM: what the shipped image is made of."""
    instructions = dockerfile_instructions(dockerfile)
    last_from = max(i for i, (instruction, _) in enumerate(instructions) if instruction == "FROM")
    return instructions[last_from:]


def github_jobs(workflow: Path) -> dict[str, dict[str, Any]]:
    document: dict[str, Any] = yaml.safe_load(workflow.read_text(encoding="utf-8"))
    jobs: dict[str, dict[str, Any]] = document["jobs"]
    return jobs


def gitlab_jobs(ci_file: Path) -> dict[str, dict[str, Any]]:
    document: dict[str, Any] = yaml.safe_load(ci_file.read_text(encoding="utf-8"))
    return {
        name: job
        for name, job in document.items()
        if isinstance(job, dict) and not name.startswith(".") and "script" in job
    }
