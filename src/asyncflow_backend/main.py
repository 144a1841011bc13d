"""The application `asyncflow serve` runs: the API with the web pages on top.

Composed here, above both, so that the API never imports the pages (the layers
go one way: web uses api, api knows nothing of web).
"""

from fastapi import FastAPI

from asyncflow_backend import web
from asyncflow_backend.api import create_api
from asyncflow_backend.config.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API for `settings` (default: from `ASYNCFLOW_*` variables) and its web pages."""
    app = create_api(settings)
    app.include_router(web.router)
    return app
