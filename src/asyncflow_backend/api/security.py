"""What the application exposes to browsers: security headers, CORS, the documentation pages.

The headers themselves are in `asyncflow_backend.api.headers`. CORS is off
unless `ASYNCFLOW_CORS_ORIGINS` lists origins.

`/docs` and `/redoc` are FastAPI's Swagger UI and ReDoc pages, with their
scripts, styles and icon served by the service itself from the
`fastapi-offline` package (under `/docs-assets`), so they work on a network
with no way out. Each page starts with an inline script; they get a policy
of their own: the service's own files, and the inline script only by its
SHA-256 (computed from the page served), never `'unsafe-inline'` scripts;
styles may be inline there (both libraries set style attributes).
"""

import base64
import hashlib
import re
from importlib import resources

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from asyncflow_backend.api.auth import API_KEY_HEADER
from asyncflow_backend.api.headers import SecurityHeadersMiddleware
from asyncflow_backend.config.settings import Settings

DOCS_ASSETS = "/docs-assets"
"""Where Swagger UI's and ReDoc's files are served from."""


def install_security(app: FastAPI, settings: Settings) -> None:
    """Security headers on every answer, CORS if `settings.cors_origins`, CSP-aware doc pages."""
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Content-Type", API_KEY_HEADER],
            expose_headers=["Location", "Retry-After"],
            max_age=600,
        )
    # Added last, so it is the outermost middleware: CORS answers get the headers too.
    app.add_middleware(SecurityHeadersMiddleware)
    _install_docs(app)


def _inline_script_hashes(html: str) -> list[str]:
    scripts = re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in scripts
    ]


def _docs_policy(html: str) -> str:
    scripts = " ".join(["'self'", *_inline_script_hashes(html)])
    return (
        f"default-src 'self'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
        "font-src 'self'; img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )


def _page(html: HTMLResponse) -> HTMLResponse:
    html.headers["Content-Security-Policy"] = _docs_policy(bytes(html.body).decode())
    return html


def _install_docs(app: FastAPI) -> None:
    """/docs and /redoc, their assets served from the `fastapi-offline` package."""
    title = app.title
    assets = resources.files("fastapi_offline") / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=str(assets)), name="docs-assets")
    favicon = f"{DOCS_ASSETS}/favicon.png"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return _page(
            get_swagger_ui_html(
                openapi_url="/openapi.json",
                title=f"{title} - API",
                swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                swagger_favicon_url=favicon,
            )
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return _page(
            get_redoc_html(
                openapi_url="/openapi.json",
                title=f"{title} - ReDoc",
                redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
                redoc_favicon_url=favicon,
                with_google_fonts=False,
            )
        )
