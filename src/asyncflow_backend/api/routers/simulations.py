"""/api/v1/simulations: submit runs, follow them, read their results, cancel them."""

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError

from asyncflow_backend.api import openapi
from asyncflow_backend.api.auth import OwnerDep
from asyncflow_backend.api.dependencies import (
    AutocommitRepositoryDep,
    DispatcherDep,
    RepositoryDep,
    SettingsDep,
)
from asyncflow_backend.api.errors import (
    COMMON_RESPONSES,
    ApiError,
    RunNotFound,
    RunStateConflict,
    ServiceUnavailable,
    clip,
)
from asyncflow_backend.api.models import (
    ErrorResponse,
    RunConflict,
    RunPage,
    RunView,
    SubmittedRun,
    TimeSeriesView,
    WarningItem,
)
from asyncflow_backend.api.openapi import SCENARIO_BODY_RESPONSES
from asyncflow_backend.api.rate_limit import RATE_LIMITED_RESPONSE, SubmissionQuota
from asyncflow_backend.api.scenario_input import receive_scenario
from asyncflow_backend.api.storage_quota import QUOTA_RESPONSE, StorageQuota
from asyncflow_backend.api.views import (
    find_run,
    results_document,
    run_key,
    run_path,
    run_view,
    series_window,
)
from asyncflow_backend.config.constants import SampledMetric
from asyncflow_backend.db.models import Run
from asyncflow_backend.db.repository import RunRepository, RunStatus
from asyncflow_backend.db.storage import Deleted, Storage
from asyncflow_backend.jobs import QueueUnavailableError
from asyncflow_backend.samplers.streams import draw_seed
from asyncflow_backend.schemas.results import SimulationResults
from asyncflow_backend.schemas.scenario import ScenarioName
from asyncflow_backend.schemas.warnings import find_warnings

MAX_POINTS_DEFAULT = 1000
MAX_POINTS_CEILING = 100_000
PAGE_SIZE_DEFAULT = 20
PAGE_SIZE_MAX = 100
OFFSET_MAX = 10_000_000

RunId = Annotated[
    str,
    Path(
        description="The id returned when the run was submitted.",
        examples=["5b0c7e1a2f4d4c559a3e7d1f0b2c9e11"],
    ),
]
MaxPoints = Annotated[
    int,
    Query(
        ge=2,
        le=MAX_POINTS_CEILING,
        description="Most points returned per series; longer series are downsampled.",
    ),
]

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    status.HTTP_404_NOT_FOUND: {
        "model": ErrorResponse,
        "description": "No run has this id (or it belongs to another API key).",
    }
}
SERIES_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    status.HTTP_404_NOT_FOUND: {
        "model": ErrorResponse,
        "description": "No run has this id (or it belongs to another API key), or the run "
        "has no series of this component.",
    }
}
router = APIRouter(prefix="/simulations", tags=["simulations"], responses=COMMON_RESPONSES)


class SeriesNotFound(ApiError):
    """404: the run has no series of the component asked for."""

    status_code = status.HTTP_404_NOT_FOUND


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Submit a scenario to run",
    response_description="The run was stored and queued; follow `Location` for its status.",
    responses={
        status.HTTP_202_ACCEPTED: {
            "headers": {
                "Location": {
                    "description": "Path of the run's status.",
                    "schema": {"type": "string"},
                }
            }
        },
        **SCENARIO_BODY_RESPONSES,
        **QUOTA_RESPONSE,
        status.HTTP_429_TOO_MANY_REQUESTS: {"model": ErrorResponse, **RATE_LIMITED_RESPONSE},
    },
    openapi_extra=openapi.SCENARIO_REQUEST_BODY,
)
async def submit_simulation(
    request: Request,
    response: Response,
    settings: SettingsDep,
    repository: AutocommitRepositoryDep,
    dispatcher: DispatcherDep,
    owner: OwnerDep,
    _quota: SubmissionQuota,
    _storage: StorageQuota,
    seed: Annotated[
        int | None,
        Query(ge=0, lt=2**63, description="Seed of the run; overrides the scenario's `seed`."),
    ] = None,
    default_name: Annotated[
        ScenarioName | None,
        Query(
            description="Name of the run when the scenario has no `name` (the page sends the "
            "file's name)."
        ),
    ] = None,
) -> SubmittedRun:
    """Validate a scenario (JSON, or YAML with `Content-Type: application/yaml`) and queue it.

    Nothing invalid is stored or queued; `warnings` lists what is legal but
    probably not meant (it runs as written). Without a `seed` here or in the
    scenario, one is drawn now and reported, so every run can be replayed.
    """
    scenario = await receive_scenario(request, settings.limits(), settings.max_body_bytes)
    if seed is None:
        seed = scenario.seed if scenario.seed is not None else draw_seed()
    document = scenario.model_dump(mode="json")
    if document.get("name") is None and default_name is not None:
        document["name"] = default_name
    run = await repository.create(document, seed=seed, owner=owner)
    try:
        await dispatcher.submit(run.id)
    except QueueUnavailableError:
        await repository.delete(run.id)
        raise ServiceUnavailable(
            "the job queue is unavailable, so the run was not accepted; submit it again shortly"
        ) from None
    response.headers["Location"] = run_path(run.id)
    return SubmittedRun(
        **dict(run_view(run)),
        warnings=WarningItem.of(find_warnings(scenario)),
    )


@router.get(
    "",
    summary="List runs, newest first",
)
async def list_simulations(
    repository: AutocommitRepositoryDep,
    owner: OwnerDep,
    status_filter: Annotated[
        RunStatus | None, Query(alias="status", description="Only runs in this status.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX, description="Page size.")] = (
        PAGE_SIZE_DEFAULT
    ),
    offset: Annotated[int, Query(ge=0, le=OFFSET_MAX, description="Runs to skip.")] = 0,
) -> RunPage:
    """One page of the caller's runs with the total number of matching runs, for pagination."""
    runs, total = await repository.list(
        status=status_filter, limit=limit, offset=offset, owner=owner
    )
    return RunPage(items=[run_view(r) for r in runs], total=total, limit=limit, offset=offset)


@router.get("/{run_id}", summary="Status of a run", responses=NOT_FOUND)
async def get_simulation(
    run_id: RunId, repository: AutocommitRepositoryDep, owner: OwnerDep
) -> RunView:
    """Status, progress (simulated time done / horizon), timestamps, error and seed."""
    return run_view(await find_run(repository, run_id, owner))


@router.get(
    "/{run_id}/scenario",
    summary="The scenario of a run",
    response_model=None,
    responses={**openapi.SCENARIO_RESPONSE, **NOT_FOUND},
)
async def get_scenario(
    run_id: RunId, repository: AutocommitRepositoryDep, owner: OwnerDep
) -> dict[str, Any]:
    """The scenario as it was accepted, in any status: with the run's `seed`,
    `asyncflow run` replays it."""
    run = await find_run(repository, run_id, owner)
    return await repository.scenario_of(run)


def _conflict(run: Run, wanted: str) -> RunStateConflict:
    state = RunStatus(run.status)
    return RunStateConflict(state, f"run {run.id} has status {state.value}; {wanted}")


@router.get(
    "/{run_id}/results",
    summary="Results of a succeeded run",
    responses={
        **NOT_FOUND,
        status.HTTP_409_CONFLICT: {
            "model": RunConflict,
            "description": "The run has not succeeded (yet); `status` says where it stands.",
        },
    },
)
async def get_results(
    run_id: RunId,
    repository: AutocommitRepositoryDep,
    owner: OwnerDep,
    max_points: MaxPoints = MAX_POINTS_DEFAULT,
) -> SimulationResults:
    """The results document, as `asyncflow run --json` writes it.

    Each sampled series is averaged into at most `max_points` equal buckets;
    `time_series.sample_period_s` is then the bucket width.
    """
    run = await find_run(repository, run_id, owner)
    if run.status != RunStatus.SUCCEEDED:
        raise _conflict(run, "results exist only once it has succeeded")
    document = await repository.get_results(run.id)
    if document is None:
        raise _conflict(run, "its results are not stored (yet)")
    series = await repository.get_series(run.id)
    return await anyio.to_thread.run_sync(results_document, document, series, max_points)


@router.get(
    "/{run_id}/timeseries",
    summary="A window of a run's sampled series",
    responses={
        **SERIES_NOT_FOUND,
        status.HTTP_409_CONFLICT: {
            "model": RunConflict,
            "description": "The run has not succeeded (yet).",
        },
    },
)
async def get_timeseries(
    run_id: RunId,
    repository: AutocommitRepositoryDep,
    owner: OwnerDep,
    metric: Annotated[SampledMetric | None, Query(description="Only this metric.")] = None,
    component: Annotated[
        str | None,
        Query(max_length=255, description="Only this server or edge id."),
    ] = None,
    start: Annotated[
        float, Query(ge=0, allow_inf_nan=False, description="From this simulated second.")
    ] = 0.0,
    end: Annotated[
        float | None,
        Query(ge=0, allow_inf_nan=False, description="Up to this simulated second (included)."),
    ] = None,
    max_points: MaxPoints = MAX_POINTS_DEFAULT,
) -> TimeSeriesView:
    """Series filtered by metric and component, cut to [start, end], reduced with LTTB.

    LTTB keeps real samples, the first and the last of the window among them,
    chosen to preserve the shape (spikes included); `t` gives their times.
    `end` before `start` is a 422; a `component` the run has no series of
    (of this `metric`, if given) is a 404.
    """
    if end is not None and end < start:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", "end"),
                    "msg": f"end ({end:g}) must not be before start ({start:g})",
                    "type": "value_error",
                }
            ]
        )
    run = await find_run(repository, run_id, owner)
    if run.status != RunStatus.SUCCEEDED:
        raise _conflict(run, "its series exist only once it has succeeded")
    rows = await repository.get_series(
        run.id, metric=metric.value if metric else None, component=component
    )
    if component is not None and not rows:
        of_metric = f" of metric {metric.value}" if metric else ""
        raise SeriesNotFound(
            f"run {run.id} has no series{of_metric} for component {clip(component)!r}"
        )
    views = await anyio.to_thread.run_sync(
        lambda: [series_window(row, start, end, max_points) for row in rows]
    )
    return TimeSeriesView(run_id=run.id, max_points=max_points, start=start, end=end, series=views)


CANCEL_RESPONSES: dict[int | str, dict[str, Any]] = {
    status.HTTP_200_OK: {"description": "The run is cancelled (or already was)."},
    status.HTTP_202_ACCEPTED: {
        "model": RunView,
        "description": "The run is running; its worker stops it at its next progress report.",
    },
    **NOT_FOUND,
    status.HTTP_409_CONFLICT: {
        "model": RunConflict,
        "description": "The run already finished (succeeded or failed).",
    },
}


async def _cancel(
    run_id: str, repository: RunRepository, owner: str | None, response: Response
) -> RunView:
    key = run_key(run_id)
    run = await repository.request_cancel(key, owner=owner) if key is not None else None
    if run is None:
        raise RunNotFound(run_id)
    if run.status in (RunStatus.SUCCEEDED, RunStatus.FAILED):
        raise _conflict(run, "only queued or running runs can be cancelled")
    if run.status != RunStatus.CANCELLED:
        response.status_code = status.HTTP_202_ACCEPTED
    return run_view(run)


@router.post("/{run_id}/cancel", summary="Cancel a run", responses=CANCEL_RESPONSES)
async def cancel_simulation(
    run_id: RunId, repository: RepositoryDep, owner: OwnerDep, response: Response
) -> RunView:
    """Stop a queued or running run.

    A queued run is cancelled at once (200). A running run is flagged (202)
    and its worker stops it within one progress report; poll the run to see
    `cancelled`. Cancelling a cancelled run is harmless (200).
    """
    return await _cancel(run_id, repository, owner, response)


class ReplicationConflict(ApiError):
    """409: the run is a replication of an experiment, which only goes with its experiment."""

    status_code = status.HTTP_409_CONFLICT


DELETE_RESPONSES: dict[int | str, dict[str, Any]] = {
    status.HTTP_204_NO_CONTENT: {"description": "The run and everything it stored are gone."},
    **NOT_FOUND,
    status.HTTP_409_CONFLICT: {
        "model": ErrorResponse,
        "description": "The run is a replication of an experiment: delete the experiment.",
    },
}


@router.delete(
    "/{run_id}",
    summary="Delete a run with its results and series",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=DELETE_RESPONSES,
)
async def delete_simulation(run_id: RunId, repository: RepositoryDep, owner: OwnerDep) -> Response:
    """Remove the run, its results and its sampled series, in any status.

    A running run is stopped: its worker finds it gone at its next progress
    report. To stop a run and keep its record, `POST .../cancel` instead. A
    replication of an experiment goes only with its experiment (409).
    """
    key = run_key(run_id)
    outcome = (
        await Storage(repository.session).delete_run(key, owner=owner)
        if key is not None
        else Deleted.NOT_FOUND
    )
    if outcome is Deleted.NOT_FOUND:
        raise RunNotFound(run_id)
    if outcome is Deleted.REPLICATION:
        raise ReplicationConflict(
            f"run {key} is a replication of an experiment; delete the experiment instead"
        )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
