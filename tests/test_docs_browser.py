"""Each variant's API docs in a real browser: Debian's Chromium, driven by Playwright.

The production command serves with DOCS_ENABLED=true. Swagger UI must list the variant's
operations (read from /openapi.json), run a request from the page, log in through its
Authorize dialog where the variant has auth, and ReDoc must render; the browser may ask no
host but the service, and its console must stay free of errors (a Content-Security-Policy
violation is one). Screenshots are kept in the test's tmp_path: docs.png and redoc.png, or
failed.png, the page as it was when a check failed.

One browser per xdist worker, one server per variant for every check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, sync_playwright

from tests import oidc_provider
from tests.conftest import Baked, run
from tests.oidc_provider import running_provider
from tests.test_variants import ALL, fresh_database, production_env, production_server
from tests.variants import Variant

# Debian's package (.ci/run installs it); Playwright's own browser download is not used.
CHROMIUM = Path("/usr/bin/chromium")
ACCOUNT = {"email": "docs@example.com", "password": "a long enough passphrase"}
# Where a signed-in caller is shown to itself, per auth choice.
WHO_AM_I = {"jwt": "/api/v1/users/me", "oidc": "/api/v1/me"}
TIMEOUT_MS = 10_000


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"Chromium is not at {CHROMIUM}: `apt-get install chromium` (.ci/run does)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


class Recorder:
    """Every request the page makes, and every console error or uncaught exception."""

    def __init__(self, page: Page) -> None:
        self.urls: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda request: self.urls.append(request.url))
        page.on(
            "console",
            lambda message: self.errors.append(message.text) if message.type == "error" else None,
        )
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def foreign(self, base_url: str) -> list[str]:
        origin = urlsplit(base_url)[:2]
        return [
            url
            for url in self.urls
            if not url.startswith("data:") and urlsplit(url.removeprefix("blob:"))[:2] != origin
        ]


def operation(page: Page, schema: dict[str, Any], path: str, method: str = "get") -> Locator:
    """Swagger UI's block for an operation (its id is `operations-<tag>-<operationId>`)."""
    spec = schema["paths"][path][method]
    return page.locator(f"[id='operations-{spec['tags'][0]}-{spec['operationId']}']")


def execute(block: Locator) -> str:
    """Try it out, Execute, and return the status the page shows."""
    block.locator(".opblock-summary").click()
    block.get_by_role("button", name="Try it out").click()
    block.get_by_role("button", name="Execute").click()
    status = block.locator(".live-responses-table tbody .response-col_status")
    status.wait_for()
    return status.inner_text().strip()


def authorize(page: Page, auth: str, credential: str) -> None:
    """Log in through the Authorize dialog: the password form (jwt) or the bearer field."""
    page.locator(".auth-wrapper .authorize").click()
    dialog = page.locator(".dialog-ux .modal-ux")
    if auth == "jwt":
        dialog.locator("#oauth_username").fill(ACCOUNT["email"])
        dialog.locator("#oauth_password").fill(credential)
    else:
        dialog.locator("input").first.fill(credential)
    buttons = dialog.locator(".auth-btn-wrapper")
    buttons.locator(".authorize").click()
    buttons.locator("button", has_text="Logout").wait_for()  # shown once authorized
    buttons.locator(".btn-done").click()


def check_swagger_ui(
    page: Page, base_url: str, auth: str, credential: str | None, shots: Path
) -> None:
    schema = httpx.get(f"{base_url}/openapi.json", timeout=10).json()
    page.goto(f"{base_url}/docs")
    page.locator(".opblock").first.wait_for()
    shown = page.locator(".opblock-summary-description").all_inner_texts()
    expected = [spec["summary"] for item in schema["paths"].values() for spec in item.values()]
    assert sorted(shown) == sorted(expected)

    assert execute(operation(page, schema, "/api/v1/info")) == "200"
    if credential is not None:
        authorize(page, auth, credential)
        assert execute(operation(page, schema, WHO_AM_I[auth])) == "200"
    page.screenshot(path=shots / "docs.png", full_page=True)


def check_redoc(page: Page, base_url: str, title: str, shots: Path) -> None:
    page.goto(f"{base_url}/redoc")
    page.locator("h1", has_text=title).wait_for()
    page.locator("[role=menuitem]").first.wait_for()
    page.screenshot(path=shots / "redoc.png")


def docs_env(
    stack: ExitStack, project: Baked, variant: Variant, tmp_path: Path
) -> tuple[dict[str, str], str | None]:
    """Production settings with the docs on and what the variant needs to start; and an
    access token where an identity provider issues them."""
    context = variant.context
    env = production_env() | {"DOCS_ENABLED": "true"}
    if context["database"] != "none":
        env["DATABASE_URL"] = stack.enter_context(fresh_database(variant, tmp_path))
    if context["auth"] == "jwt":  # its users need tables; the docs themselves read no data
        run([str(project.path / ".venv/bin/alembic"), "upgrade", "head"], cwd=project.path, **env)
    if context["auth"] == "oidc":
        provider = stack.enter_context(running_provider())
        env |= {"OIDC_ISSUER": provider.issuer, "OIDC_AUDIENCE": oidc_provider.AUDIENCE}
        return env, provider.token("docs-user")
    return env, None


@pytest.mark.parametrize("variant", ALL)
def test_docs_work_in_a_browser(
    bake: Callable[[Variant], Baked], variant: Variant, browser: Browser, tmp_path: Path
) -> None:
    project = bake(variant)
    auth = variant.context["auth"]
    with ExitStack() as stack:
        env, credential = docs_env(stack, project, variant, tmp_path)
        _process, port = stack.enter_context(production_server(project, env, tmp_path / "log"))
        base_url = f"http://127.0.0.1:{port}"
        if auth == "jwt":
            registered = httpx.post(f"{base_url}/api/v1/auth/register", json=ACCOUNT, timeout=10)
            assert registered.status_code == 202, registered.text
            credential = ACCOUNT["password"]

        page = browser.new_page()
        stack.callback(page.close)
        page.set_default_timeout(TIMEOUT_MS)
        recorder = Recorder(page)
        try:
            check_swagger_ui(page, base_url, auth, credential, tmp_path)
            check_redoc(page, base_url, variant.context["project_name"], tmp_path)
        except Exception:
            page.screenshot(path=tmp_path / "failed.png", full_page=True)
            raise

        assert recorder.foreign(base_url) == []
        assert recorder.errors == []
