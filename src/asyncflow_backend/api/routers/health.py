"""/health and /ready, at the root: for load balancers and orchestrators."""

import asyncio

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from asyncflow_backend.api.dependencies import ServiceDep
from asyncflow_backend.api.errors import INTERNAL_ERROR
from asyncflow_backend.api.models import Health, Readiness

router = APIRouter(tags=["health"], responses=INTERNAL_ERROR)

CHECK_TIMEOUT_S = 3.0
OK = "ok"
DOWN = "down"


@router.get("/health", summary="The process is up")
async def health() -> Health:
    """Answers without any I/O: a failure here means the process itself is stuck."""
    return Health()


@router.get(
    "/ready",
    summary="The database and the queue answer",
    response_model=Readiness,
    responses={
        status.HTTP_503_SERVICE_UNAVAILABLE: {
            "model": Readiness,
            "description": "Something is down; `checks` and `detail` say what.",
        }
    },
)
async def ready(service: ServiceDep) -> Readiness | JSONResponse:
    """200 when both the database and the job queue answer within a few seconds, else 503."""
    database_ok, queue_ok = await asyncio.gather(
        service.database.ping(CHECK_TIMEOUT_S), _queue_answers(service)
    )
    checks = {"database": OK if database_ok else DOWN, "queue": OK if queue_ok else DOWN}
    down = [name for name, state in checks.items() if state == DOWN]
    if not down:
        return Readiness(status="ready", checks=checks)
    body = Readiness(status="unavailable", checks=checks, detail=f"{' and '.join(down)} down")
    return JSONResponse(body.model_dump(), status_code=status.HTTP_503_SERVICE_UNAVAILABLE)


async def _queue_answers(service: ServiceDep) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            return await service.dispatcher.ping()
    except Exception:  # any failure means "not ready"; /ready reports it, not raises it
        return False
