"""Baking from a git URL, as `cookiecutter gh:OWNER/REPO` does for users."""

from __future__ import annotations

import shutil
import subprocess
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


def test_bakes_from_a_git_url_of_a_committed_copy(tmp_path: Path) -> None:
    repository = tmp_path / "template"
    listed = git("ls-files", "--cached", "--others", "--exclude-standard", "-z", cwd=TEMPLATE_DIR)
    for name in filter(None, listed.split("\0")):
        source = TEMPLATE_DIR / name
        if source.is_file():
            (repository / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repository / name)
    git("init", "-q", cwd=repository)
    git("add", "-A", cwd=repository)
    git("commit", "-q", "-m", "template", cwd=repository)
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
