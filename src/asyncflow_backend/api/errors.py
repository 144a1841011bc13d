"""Errors the API answers with, and the handlers that turn exceptions into JSON.

Every error body is JSON with a `detail` field: a sentence, or for 422 a list
of located problems in the same shape for a bad scenario and for a bad query
parameter, so a client handles both alike. Nothing internal (tracebacks, SQL,
file paths, connection strings) ever reaches a client.
"""

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from asyncflow_backend.api.headers import security_headers
from asyncflow_backend.api.models import ErrorResponse, ProblemItem, ValidationErrorResponse
from asyncflow_backend.db.repository import RunStatus
from asyncflow_backend.jobs import QueueUnavailableError
from asyncflow_backend.schemas.validation import Problem

logger = logging.getLogger(__name__)

RETRY_AFTER_S = "5"

INVALID_SCENARIO = "invalid_scenario"
LIMIT_EXCEEDED = "limit_exceeded"


class ApiError(Exception):
    """An answer other than 2xx, with a sentence for the client."""

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def body(self) -> dict[str, Any]:
        """The JSON body of the answer."""
        return {"detail": self.detail}

    def headers(self) -> dict[str, str]:
        """Headers the answer carries besides the usual ones."""
        return {}


MAX_ECHOED_CHARS = 64
"""Most characters of a client's own input an error message repeats."""


def clip(text: str, limit: int = MAX_ECHOED_CHARS) -> str:
    """`text` as an error may echo it: at most `limit` characters, then an ellipsis."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class RunNotFound(ApiError):
    """404: no run has this id."""

    status_code = status.HTTP_404_NOT_FOUND

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no simulation run with id {clip(run_id)}")


class RunStateConflict(ApiError):
    """409: the run's status does not allow the request."""

    status_code = status.HTTP_409_CONFLICT

    def __init__(self, run_status: RunStatus, detail: str) -> None:
        super().__init__(detail)
        self.run_status = run_status

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, "status": self.run_status.value}


class PayloadTooLarge(ApiError):
    """413: the body is over the configured maximum."""

    status_code = status.HTTP_413_CONTENT_TOO_LARGE

    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            f"the request body is larger than {max_bytes} bytes (ASYNCFLOW_MAX_BODY_BYTES)"
        )


class UnsupportedMediaType(ApiError):
    """415: neither JSON nor YAML."""

    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE


class ServiceUnavailable(ApiError):
    """503: a dependency (database or queue) does not answer."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE

    def headers(self) -> dict[str, str]:
        return {"Retry-After": RETRY_AFTER_S}


class ScenarioRejected(Exception):
    """422: the scenario is invalid or too large; carries every problem found."""

    def __init__(self, problems: Sequence[tuple[Problem, str]]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = list(problems)


def problem_items(problems: Iterable[tuple[Problem, str]]) -> list[ProblemItem]:
    """Problems of a scenario as 422 items; their `loc` starts with `body` like FastAPI's."""
    return [
        ProblemItem(loc=["body", *p.loc], path=p.path, msg=p.message, type=kind)
        for p, kind in problems
    ]


def _unprocessable(items: list[ProblemItem], what: str) -> JSONResponse:
    count = f"{len(items)} problem{'s' if len(items) != 1 else ''}"
    body = ValidationErrorResponse(detail=items, message=f"{what} has {count}")
    return JSONResponse(jsonable_encoder(body), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def _path_of(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


async def _scenario_rejected(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ScenarioRejected)
    return _unprocessable(problem_items(exc.problems), "the scenario")


async def _request_invalid(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    items = []
    for error in exc.errors():
        loc = [p if isinstance(p, int) else str(p) for p in error.get("loc", ())]
        items.append(
            ProblemItem(
                loc=loc,
                path=_path_of(loc),
                msg=str(error.get("msg", "invalid value")),
                type=str(error.get("type", "value_error")),
            )
        )
    return _unprocessable(items, "the request")


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers())


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        headers["Allow"] = ", ".join(sorted(_allowed_methods(request)))
    return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=headers)


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> set[str]:
    # Starlette names only the methods of the first route whose path matches; a path
    # such as /api/v1/simulations has one route per method, and `Allow` must list all.
    allowed = set()
    for method in HTTP_METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.add(method)
    if "GET" in allowed:
        allowed.add("HEAD")  # answered as GET without its body (api.head)
    return allowed


async def _database_down(request: Request, exc: Exception) -> JSONResponse:
    # The exception text may hold the host, the user or SQL: log it, never send it.
    logger.warning("database unavailable on %s %s: %r", request.method, request.url.path, exc)
    return await _api_error(
        request, ServiceUnavailable("the database is unavailable; try again shortly")
    )


async def _queue_down(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("queue unavailable on %s %s: %r", request.method, request.url.path, exc)
    return await _api_error(
        request, ServiceUnavailable("the job queue is unavailable; try again shortly")
    )


async def _dbapi_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if exc.connection_invalidated:
        return await _database_down(request, exc)
    return await _unexpected(request, exc)


async def _client_gone(request: Request, exc: Exception) -> Response:
    # Not an error: the client closed the connection before its body arrived
    # (a cancelled upload). Nobody reads the answer; uvicorn drops it.
    logger.info("client went away during %s %s", request.method, request.url.path)
    return Response(status_code=status.HTTP_400_BAD_REQUEST)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    body = ErrorResponse(detail="internal error; the incident was logged")
    response = JSONResponse(body.model_dump(), status_code=status.HTTP_500_INTERNAL_SERVER_ERROR)
    # Starlette answers unhandled errors outside every middleware: add the headers here.
    response.raw_headers = security_headers(response.raw_headers)
    return response


DATABASE_DOWN: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    DisconnectionError,
    PoolTimeoutError,
    OSError,  # refused or reset connections and socket time-outs
)
"""Exceptions meaning the database cannot be reached, as opposed to a bug."""


def install_error_handlers(app: FastAPI) -> None:
    """Register every handler on `app`; the most specific exception class wins."""
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(ScenarioRejected, _scenario_rejected)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(QueueUnavailableError, _queue_down)
    for kind in DATABASE_DOWN:
        app.add_exception_handler(kind, _database_down)
    app.add_exception_handler(DBAPIError, _dbapi_error)
    app.add_exception_handler(Exception, _unexpected)


INTERNAL_ERROR: dict[int | str, dict[str, Any]] = {
    status.HTTP_500_INTERNAL_SERVER_ERROR: {
        "model": ErrorResponse,
        "description": "Unexpected error; the body never holds internals.",
    },
}
"""The answer any endpoint may give if something unforeseen breaks."""

COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    **INTERNAL_ERROR,
    status.HTTP_503_SERVICE_UNAVAILABLE: {
        "model": ErrorResponse,
        "description": "The database or the job queue is unavailable; try again shortly "
        "(see `Retry-After`).",
    },
}
"""Answers any endpoint that touches the database or the queue may give."""
