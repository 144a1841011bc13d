"""/api/v1/scenarios/validate: the submission checks, without storing or running anything."""

from fastapi import APIRouter, Request, status

from asyncflow_backend.api import openapi
from asyncflow_backend.api.dependencies import SettingsDep
from asyncflow_backend.api.errors import INTERNAL_ERROR
from asyncflow_backend.api.models import (
    ErrorResponse,
    ScenarioSummary,
    ValidationReport,
    WarningItem,
)
from asyncflow_backend.api.openapi import SCENARIO_BODY_RESPONSES
from asyncflow_backend.api.rate_limit import RATE_LIMITED_RESPONSE, SubmissionQuota
from asyncflow_backend.api.scenario_input import receive_scenario
from asyncflow_backend.schemas.replicas import edge_count
from asyncflow_backend.schemas.warnings import find_warnings

router = APIRouter(prefix="/scenarios", tags=["scenarios"], responses=INTERNAL_ERROR)


@router.post(
    "/validate",
    summary="Validate a scenario",
    responses={
        **SCENARIO_BODY_RESPONSES,
        status.HTTP_429_TOO_MANY_REQUESTS: {"model": ErrorResponse, **RATE_LIMITED_RESPONSE},
    },
    openapi_extra=openapi.SCENARIO_REQUEST_BODY,
)
async def validate_scenario(
    request: Request, settings: SettingsDep, _quota: SubmissionQuota
) -> ValidationReport:
    """Run every check `POST /api/v1/simulations` runs, limits included, and summarise.

    `warnings` lists what is legal but probably not meant, as the submission does.
    It costs as much as a submission, and spends one of the caller's
    submissions (`ASYNCFLOW_SUBMIT_RATE_LIMIT`).
    """
    scenario = await receive_scenario(request, settings.limits(), settings.max_body_bytes)
    nodes = scenario.topology_graph.nodes
    return ValidationReport(
        summary=ScenarioSummary(
            servers=sum(server.copies for server in nodes.servers),
            endpoints=sum(len(server.endpoints) * server.copies for server in nodes.servers),
            edges=edge_count(scenario),
            load_balancer=bool(nodes.balancers()),
            load_balancers=len(nodes.balancers()),
            events=len(scenario.events or ()),
            horizon_s=scenario.sim_settings.total_simulation_time,
            sample_period_s=scenario.sim_settings.sample_period_s,
            expected_requests=scenario.expected_requests,
            seed=scenario.seed,
        ),
        warnings=WarningItem.of(find_warnings(scenario)),
    )
