"""/api/v1/scenarios/validate: the submission checks, without storing or running anything."""

import anyio
from fastapi import APIRouter, Request, status

from asyncflow_backend.api import openapi
from asyncflow_backend.api.dependencies import SettingsDep
from asyncflow_backend.api.errors import INTERNAL_ERROR
from asyncflow_backend.api.models import (
    ErrorResponse,
    ScenarioSummary,
    ValidationErrorResponse,
    ValidationReport,
)
from asyncflow_backend.api.scenario_input import body_format, decode_scenario, read_body

router = APIRouter(prefix="/scenarios", tags=["scenarios"], responses=INTERNAL_ERROR)


@router.post(
    "/validate",
    summary="Validate a scenario",
    responses={
        status.HTTP_413_CONTENT_TOO_LARGE: {
            "model": ErrorResponse,
            "description": "The body is larger than ASYNCFLOW_MAX_BODY_BYTES.",
        },
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: {
            "model": ErrorResponse,
            "description": "The body is neither JSON nor YAML.",
        },
        status.HTTP_422_UNPROCESSABLE_CONTENT: {
            "model": ValidationErrorResponse,
            "description": "The scenario is invalid or exceeds a limit; every problem is listed.",
            "content": {"application/json": {"examples": openapi.INVALID_EXAMPLES}},
        },
    },
    openapi_extra=openapi.SCENARIO_REQUEST_BODY,
)
async def validate_scenario(request: Request, settings: SettingsDep) -> ValidationReport:
    """Run every check `POST /api/v1/simulations` runs, limits included, and summarise."""
    fmt = body_format(request.headers.get("content-type"))
    body = await read_body(request, settings.max_body_bytes)
    scenario = await anyio.to_thread.run_sync(
        decode_scenario, body, fmt, settings.limits(), settings.max_body_bytes
    )
    nodes = scenario.topology_graph.nodes
    return ValidationReport(
        summary=ScenarioSummary(
            servers=len(nodes.servers),
            endpoints=sum(len(server.endpoints) for server in nodes.servers),
            edges=len(scenario.topology_graph.edges),
            load_balancer=nodes.load_balancer is not None,
            events=len(scenario.events or ()),
            horizon_s=scenario.sim_settings.total_simulation_time,
            sample_period_s=scenario.sim_settings.sample_period_s,
            expected_requests=scenario.expected_requests,
            seed=scenario.seed,
        )
    )
