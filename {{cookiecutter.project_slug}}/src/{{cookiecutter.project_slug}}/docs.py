"""The API docs, Swagger UI (/docs) and ReDoc (/redoc), served by the service itself.

Their scripts, styles and favicon come from the pinned `fastapi-offline` package, mounted
under /docs/assets: no CDN at run time, so the pages work on a network without internet,
and their Content-Security-Policy names no host but this one. The pages' inline scripts
are allowed by their hashes, not by 'unsafe-inline'.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.staticfiles import NotModifiedResponse
from starlette.types import Scope

OPENAPI_PATH = "/openapi.json"
SWAGGER_UI_PATH = "/docs"
REDOC_PATH = "/redoc"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"
ASSETS_PATH = "/docs/assets"
# (package, folder) holding swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon.png
ASSETS_PACKAGE = ("fastapi_offline", "static")

INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


# ReDoc's sidebar shows Redocly's logo from Redocly's CDN, an address written into its
# bundle: served here with an empty inline image in its place, so the page asks no other host.
REDOC_BUNDLE = "redoc.standalone.js"
REDOCLY_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
BLANK_IMAGE = b"data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw=="


class DocsAssets(StaticFiles):
    """The packaged files, revalidated by ETag rather than downloaded again on every visit
    (the security headers would otherwise mark them no-store)."""

    def __init__(self) -> None:
        super().__init__(packages=[ASSETS_PACKAGE])
        bundle, _ = self.lookup_path(REDOC_BUNDLE)
        self.redoc = Path(bundle).read_bytes().replace(REDOCLY_LOGO, BLANK_IMAGE)
        self.redoc_etag = f'"{hashlib.sha256(self.redoc).hexdigest()[:32]}"'

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)  # 404 and 405 as for any file
        if path == REDOC_BUNDLE:
            response = self.redoc_response(scope)
        response.headers.setdefault("Cache-Control", "no-cache")
        return response

    def redoc_response(self, scope: Scope) -> Response:
        headers = Headers({"ETag": self.redoc_etag})
        if self.is_not_modified(headers, Headers(scope=scope)):
            return NotModifiedResponse(headers)
        return Response(self.redoc, media_type="text/javascript", headers=dict(headers))


def content_security_policy(html: str) -> str:
    """This page's policy: everything from this origin only; inline scripts by hash."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'self'; script-src 'self' {hashes}; "
        # Both UIs set styles inline; ReDoc's search runs in a worker made from a blob.
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; worker-src 'self' blob:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


def with_policy(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = content_security_policy(bytes(page.body).decode())
    return page


def install_docs(app: FastAPI) -> None:
    """Add the docs pages and their assets, for an app whose `openapi_url` is OPENAPI_PATH."""
    app.mount(ASSETS_PATH, DocsAssets(), name="docs-assets")

    @app.get(SWAGGER_UI_PATH, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return with_policy(
            get_swagger_ui_html(
                openapi_url=f"{root}{OPENAPI_PATH}",
                title=f"{app.title} - Swagger UI",
                oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_PATH}",
                swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
                swagger_ui_parameters=app.swagger_ui_parameters,
                init_oauth=app.swagger_ui_init_oauth,
            )
        )

    @app.get(OAUTH2_REDIRECT_PATH, include_in_schema=False)
    async def swagger_ui_oauth2_redirect() -> HTMLResponse:
        return with_policy(get_swagger_ui_oauth2_redirect_html())

    @app.get(REDOC_PATH, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return with_policy(
            get_redoc_html(
                openapi_url=f"{root}{OPENAPI_PATH}",
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
                with_google_fonts=False,
            )
        )
