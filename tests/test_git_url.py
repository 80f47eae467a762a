"""Baking from a git URL, as `cookiecutter gh:OWNER/REPO` does for users, and keeping a
project up to date with the template through cruft."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from cookiecutter.main import cookiecutter

from tests.template import TEMPLATE_DIR


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def commit_template_copy(repository: Path) -> Path:
    """A git repository holding the template as it is now (tracked and new files)."""
    listed = git("ls-files", "--cached", "--others", "--exclude-standard", "-z", cwd=TEMPLATE_DIR)
    for name in filter(None, listed.split("\0")):
        source = TEMPLATE_DIR / name
        if source.is_file():
            (repository / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repository / name)
    git("init", "-q", cwd=repository)
    git("add", "-A", cwd=repository)
    git("commit", "-q", "-m", "template", cwd=repository)
    return repository


def test_bakes_from_a_git_url_of_a_committed_copy(tmp_path: Path) -> None:
    repository = commit_template_copy(tmp_path / "template")
    config = tmp_path / "cookiecutterrc.yaml"
    config.write_text(
        f"cookiecutters_dir: {tmp_path / 'clones'}\nreplay_dir: {tmp_path / 'replay'}\n"
    )

    project = Path(
        cookiecutter(
            f"git+file://{repository}",
            no_input=True,
            output_dir=str(tmp_path / "out"),
            config_file=str(config),
        )
    )

    assert project == tmp_path / "out" / "my_service"
    assert (project / "src" / "my_service" / "main.py").is_file()
    assert (project / ".env").is_file()
    assert not (project / "deploy").exists()  # pruned: kubernetes is off by default


def cruft(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "cruft"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_cruft_create_then_update_without_touching_secrets(tmp_path: Path) -> None:
    repository = commit_template_copy(tmp_path / "template")
    created = cruft(
        "create",
        "--no-input",
        "--output-dir",
        str(tmp_path / "out"),
        f"file://{repository}",
        cwd=tmp_path,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    project = tmp_path / "out" / "my_service"
    secrets_before = (project / ".env").read_text()
    git("init", "-q", cwd=project)
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "generated", cwd=project)

    # Right after creation the project is exactly what the template renders: no random
    # value in a tracked file (the secret lives in the git-ignored, cruft-skipped .env).
    diff = cruft("diff", "--exit-code", cwd=project)
    assert diff.returncode == 0, diff.stdout + diff.stderr

    readme = repository / "{{cookiecutter.project_slug}}" / "README.md"
    readme.write_text(readme.read_text() + "\nA line added by a template update.\n")
    git("commit", "-q", "-am", "template change", cwd=repository)
    updated = cruft("update", "--skip-apply-ask", "--allow-untracked-files", cwd=project)
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert "A line added by a template update." in (project / "README.md").read_text()
    assert (project / ".env").read_text() == secrets_before


def test_a_replay_reproduces_the_answers(tmp_path: Path) -> None:
    config = tmp_path / "cookiecutterrc.yaml"
    config.write_text(f"replay_dir: {tmp_path / 'replay'}\n")
    first = cookiecutter(
        str(TEMPLATE_DIR),
        no_input=True,
        extra_context={
            "project_name": "Ledger",
            "database": "postgresql",
            "auth": "jwt",  # the option with a secret in .env
            "ci": "gitlab",
        },
        output_dir=str(tmp_path / "first"),
        config_file=str(config),
    )
    replayed = Path(
        cookiecutter(
            str(TEMPLATE_DIR),
            replay=True,
            output_dir=str(tmp_path / "second"),
            config_file=str(config),
        )
    )
    assert replayed.name == Path(first).name == "ledger"
    assert (replayed / "tests" / "test_database_outage.py").is_file()  # postgresql kept
    assert (replayed / ".gitlab-ci.yml").is_file()
    assert not (replayed / ".github").exists()
    assert (replayed / ".env").read_text() != (Path(first) / ".env").read_text()  # new secret
