"""Write docs/screenshot-docs.png: the /docs page of a freshly baked service, in Chromium.

    uv run python scripts/screenshot.py

Bakes the template (auth=jwt, everything else default) into a temporary directory, installs
it, starts its production command with the docs on, and photographs Swagger UI with Debian's
Chromium (`apt-get install chromium`). Nothing is drawn by hand: run it again after a change
that shows on the page.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from cookiecutter.main import cookiecutter
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "screenshot-docs.png"
CHROMIUM = "/usr/bin/chromium"
ANSWERS = {"auth": "jwt"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def bake(directory: Path) -> Path:
    project = Path(
        cookiecutter(
            str(ROOT),
            no_input=True,
            default_config=True,
            output_dir=str(directory),
            extra_context=ANSWERS,
        )
    )
    # The service's own interpreter and venv, not this repository's.
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    subprocess.run(["uv", "sync", "--quiet"], cwd=project, env=env, check=True)
    return project


def serve(project: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [str(project / ".venv" / "bin" / project.name), "serve"]
    subprocess.run(
        [str(project / ".venv" / "bin" / "alembic"), "upgrade", "head"],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
    )
    return subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.DEVNULL)


def wait_until_live(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the service exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/health/live", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    sys.exit("the service did not answer within 60 s")


def photograph(base_url: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(f"{base_url}/docs")
        page.locator(".opblock").first.wait_for()
        OUTPUT.parent.mkdir(exist_ok=True)
        page.screenshot(path=OUTPUT)
        browser.close()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="screenshot-") as directory:
        project = bake(Path(directory))
        port = free_port()
        env = {
            **{key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"},
            "ENVIRONMENT": "production",
            "DOCS_ENABLED": "true",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "DATABASE_URL": f"sqlite+aiosqlite:///{directory}/screenshot.db",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "METRICS_PORT": str(free_port()),
        }
        process = serve(project, env)
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_until_live(base_url, process)
            photograph(base_url)
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
