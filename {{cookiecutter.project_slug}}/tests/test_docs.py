"""The docs pages load nothing from elsewhere: their assets come from this service, and
their Content-Security-Policy names no other host. (The template's harness drives them in
a real browser.)"""

from __future__ import annotations

import base64
import hashlib
import re

import httpx
import pytest

PAGES = ["/docs", "/redoc", "/docs/oauth2-redirect"]
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}


@pytest.mark.parametrize("path", PAGES)
async def test_docs_pages_load_only_from_this_service(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for url in re.findall(r'(?:src|href|spec-url)="([^"]*)"', response.text):
        assert url.startswith("/"), url
    policy = response.headers["content-security-policy"]
    assert "http" not in policy
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]


@pytest.mark.parametrize("path", PAGES)
async def test_inline_scripts_are_allowed_by_their_hash(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    for script in re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL):
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in response.headers["content-security-policy"]


@pytest.mark.parametrize(("name", "content_type"), ASSETS.items())
async def test_assets_are_served_and_revalidated(
    client: httpx.AsyncClient, name: str, content_type: str
) -> None:
    response = await client.get(f"/docs/assets/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(content_type)
    assert response.headers["cache-control"] == "no-cache"
    again = await client.get(
        f"/docs/assets/{name}", headers={"If-None-Match": response.headers["etag"]}
    )
    assert again.status_code == 304


async def test_redoc_asks_no_other_host_for_its_logo(client: httpx.AsyncClient) -> None:
    bundle = await client.get("/docs/assets/redoc.standalone.js")
    assert b"cdn.redoc.ly" not in bundle.content
    assert bundle.headers["content-length"] == str(len(bundle.content))


async def test_assets_are_only_read(client: httpx.AsyncClient) -> None:
    for name in ASSETS:
        assert (await client.post(f"/docs/assets/{name}")).status_code == 405
    assert (await client.get("/docs/assets/nothing.js")).status_code == 404
