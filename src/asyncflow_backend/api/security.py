"""What the application exposes to browsers: security headers, CORS, the documentation pages.

The headers themselves are in `asyncflow_backend.api.headers`. CORS is off
unless `ASYNCFLOW_CORS_ORIGINS` lists origins.

`/docs` and `/redoc` are FastAPI's Swagger UI and ReDoc, which load their
scripts and styles from a CDN and start with an inline script. They get a
policy of their own: that CDN, and the inline script only by its SHA-256
(computed from the page served), never `'unsafe-inline'` scripts; styles may
be inline there (both libraries set style attributes).
"""

import base64
import hashlib
import re

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

from asyncflow_backend.api.auth import API_KEY_HEADER
from asyncflow_backend.api.headers import SecurityHeadersMiddleware
from asyncflow_backend.config.settings import Settings

DOCS_CDN = "https://cdn.jsdelivr.net"


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
    scripts = " ".join(["'self'", DOCS_CDN, *_inline_script_hashes(html)])
    return (
        f"default-src 'self'; script-src {scripts}; "
        f"style-src 'self' 'unsafe-inline' {DOCS_CDN} https://fonts.googleapis.com; "
        "font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https:; "
        "worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'"
    )


def _page(html: HTMLResponse) -> HTMLResponse:
    html.headers["Content-Security-Policy"] = _docs_policy(bytes(html.body).decode())
    return html


def _install_docs(app: FastAPI) -> None:
    """/docs and /redoc as FastAPI serves them, each with the policy its page needs."""
    title = app.title

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return _page(get_swagger_ui_html(openapi_url="/openapi.json", title=f"{title} - API"))

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return _page(get_redoc_html(openapi_url="/openapi.json", title=f"{title} - ReDoc"))
