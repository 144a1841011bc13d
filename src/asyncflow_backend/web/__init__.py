"""The web page served by the service: a scenario editor, the live runs list and run pages.

`router` holds the pages (`/`, `/runs/{id}`) and the static files (`/static`),
including the vendored charting library; include it in the FastAPI app.
"""

from asyncflow_backend.web.pages import router

__all__ = ["router"]
