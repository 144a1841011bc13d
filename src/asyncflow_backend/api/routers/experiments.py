"""/api/v1/experiments: submit experiments, follow them with their partial reports, cancel them."""

import json
from typing import Annotated, Any, Literal

import anyio
import yaml
from fastapi import APIRouter, Path, Query, Request, Response, status

from asyncflow_backend.api.auth import OwnerDep
from asyncflow_backend.api.dependencies import DispatcherDep, ServiceDep, SettingsDep
from asyncflow_backend.api.errors import (
    COMMON_RESPONSES,
    INVALID_SCENARIO,
    ApiError,
    ScenarioRejected,
    ServiceUnavailable,
)
from asyncflow_backend.api.experiment_models import (
    ExperimentLinks,
    ExperimentPage,
    ExperimentView,
)
from asyncflow_backend.api.models import ErrorResponse, ValidationErrorResponse
from asyncflow_backend.api.openapi import EXPERIMENT_REQUEST_BODY, SCENARIO_BODY_RESPONSES
from asyncflow_backend.api.parser_process import load_yaml_elsewhere
from asyncflow_backend.api.rate_limit import RATE_LIMITED_RESPONSE, SubmissionQuota
from asyncflow_backend.api.scenario_input import JSON, body_format, document_problems, read_body
from asyncflow_backend.api.storage_quota import QUOTA_RESPONSE, StorageQuota
from asyncflow_backend.api.views import API_PREFIX, run_key
from asyncflow_backend.config.settings import Settings
from asyncflow_backend.db.experiments import ExperimentRepository
from asyncflow_backend.db.models import Experiment
from asyncflow_backend.db.repository import RunStatus
from asyncflow_backend.db.storage import Storage
from asyncflow_backend.experiments.prepare import (
    ExperimentValidationError,
    PreparedExperiment,
    parse_experiment,
    prepare,
)
from asyncflow_backend.experiments.report import ExperimentReport
from asyncflow_backend.jobs import QueueUnavailableError
from asyncflow_backend.jobs import experiments as experiment_jobs
from asyncflow_backend.jobs.experiments import start_experiment
from asyncflow_backend.plots.experiment import UnknownMetricError, render_experiment_plot
from asyncflow_backend.schemas.validation import Problem

PAGE_SIZE_DEFAULT = 20
PAGE_SIZE_MAX = 100
IMAGE_TYPES = {"png": "image/png", "svg": "image/svg+xml"}

ExperimentId = Annotated[str, Path(description="The id returned when it was submitted.")]

router = APIRouter(prefix="/experiments", tags=["experiments"], responses=COMMON_RESPONSES)


class ExperimentNotFound(ApiError):
    """404: no experiment has this id (or it belongs to another API key)."""

    status_code = status.HTTP_404_NOT_FOUND

    def __init__(self, experiment_id: str) -> None:
        super().__init__(f"no experiment with id {experiment_id}")


NOT_FOUND: dict[int | str, dict[str, Any]] = {
    status.HTTP_404_NOT_FOUND: {
        "model": ErrorResponse,
        "description": "No experiment has this id (or it belongs to another API key).",
    }
}


def experiment_path(experiment_id: str) -> str:
    """Where an experiment's status lives; the `Location` of a submitted one."""
    return f"{API_PREFIX}/experiments/{experiment_id}"


def experiment_view(experiment: Experiment, *, with_report: bool) -> ExperimentView:
    """The status document of an experiment."""
    path = experiment_path(experiment.id)
    planned = experiment.replications_planned
    done = experiment.replications_done
    report = experiment.report if with_report else None
    kind = "replications"
    if experiment.spec.get("sweep"):
        kind = "sweep"
    elif experiment.spec.get("search"):
        kind = "search"
    return ExperimentView(
        id=experiment.id,
        status=RunStatus(experiment.status),
        kind=kind,
        seed=experiment.seed,
        progress=1.0 if experiment.status == RunStatus.SUCCEEDED else done / max(1, planned),
        replications_done=done,
        replications_planned=planned,
        created_at=experiment.created_at,
        finished_at=experiment.finished_at,
        error=experiment.error,
        links=ExperimentLinks(
            self_=path, cancel=f"{path}/cancel", page=f"/experiments/{experiment.id}"
        ),
        report=None if report is None else ExperimentReport.model_validate(report),
    )


def _rejected(problems: list[Problem]) -> ScenarioRejected:
    return ScenarioRejected([(p, INVALID_SCENARIO) for p in problems])


def _decode(body: bytes, fmt: str, settings: Settings) -> tuple[PreparedExperiment, dict[str, Any]]:
    """The checked experiment in `body` and its document to store, or `ScenarioRejected`.

    `ScenarioRejected` lists every problem. CPU work proportional to the body:
    called on a thread.
    """
    try:
        text = body.decode("utf-8-sig")
        data = json.loads(text) if fmt == JSON else load_yaml_elsewhere(text)
    except (UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError, RecursionError) as exc:
        reason = type(exc).__name__ if isinstance(exc, RecursionError) else str(exc).split("\n")[0]
        raise _rejected([Problem((), f"the body is not valid {fmt.upper()}: {reason}")]) from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise _rejected([Problem((), f"the body is not valid {fmt.upper()}: {exc}")]) from None
    problems = document_problems(data, settings.max_body_bytes)
    if problems:
        raise _rejected(problems)
    if isinstance(data, dict) and isinstance(data.get("scenario"), str):
        message = "the scenario must be given inline, not as a path, to the API"
        raise _rejected([Problem(("scenario",), message)])
    try:
        prepared = prepare(
            parse_experiment(data),
            max_replications=settings.max_experiment_replications,
            limits=settings.limits(),
            max_sweep_validation_mb=settings.max_sweep_validation_mb,
        )
    except ExperimentValidationError as exc:
        raise _rejected(exc.problems) from None
    return prepared, prepared.spec.model_dump(mode="json")


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Submit an experiment",
    response_description="Stored, and its first replications queued; follow `Location`.",
    responses={
        status.HTTP_202_ACCEPTED: {
            "headers": {
                "Location": {
                    "description": "Path of the experiment's status.",
                    "schema": {"type": "string"},
                }
            }
        },
        **SCENARIO_BODY_RESPONSES,
        **QUOTA_RESPONSE,
        status.HTTP_422_UNPROCESSABLE_CONTENT: {
            "model": ValidationErrorResponse,
            "description": "The experiment or its scenario is invalid, or over a limit "
            "(ASYNCFLOW_MAX_EXPERIMENT_REPLICATIONS and ASYNCFLOW_MAX_SWEEP_VALIDATION_MB "
            "among them); every problem by path.",
        },
        status.HTTP_429_TOO_MANY_REQUESTS: {"model": ErrorResponse, **RATE_LIMITED_RESPONSE},
    },
    openapi_extra=EXPERIMENT_REQUEST_BODY,
)
async def submit_experiment(
    request: Request,
    response: Response,
    service: ServiceDep,
    settings: SettingsDep,
    dispatcher: DispatcherDep,
    owner: OwnerDep,
    _quota: SubmissionQuota,
    _storage: StorageQuota,
) -> ExperimentView:
    """Check an experiment document (JSON, or YAML with `Content-Type: application/yaml`;
    see docs/experiments.md) and queue its replications as runs.

    The scenario goes inline. Nothing invalid is stored or queued.
    """
    fmt = body_format(request.headers.get("content-type"))
    body = await read_body(request, settings.max_body_bytes)
    prepared, document = await anyio.to_thread.run_sync(_decode, body, fmt, settings)
    experiment, run_ids = await start_experiment(
        service.database,
        document,
        seed=prepared.seed,
        owner=owner,
        limits=settings.limits(),
        queue_ahead=settings.experiment_queue_ahead,
        prepared=prepared,
    )
    try:
        for run_id in run_ids:
            await dispatcher.submit(run_id)
    except QueueUnavailableError:
        async with service.database.session() as session:
            await ExperimentRepository(session).request_cancel(experiment.id)
        raise ServiceUnavailable(
            "the job queue is unavailable, so the experiment was cancelled; submit it again"
        ) from None
    response.headers["Location"] = experiment_path(experiment.id)
    async with service.database.autocommit() as session:
        stored = await ExperimentRepository(session).get(experiment.id)
    return experiment_view(stored or experiment, with_report=True)


@router.get("", summary="List experiments, newest first")
async def list_experiments(
    service: ServiceDep,
    owner: OwnerDep,
    status_filter: Annotated[
        RunStatus | None, Query(alias="status", description="Only experiments in this status.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX, description="Page size.")] = (
        PAGE_SIZE_DEFAULT
    ),
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Experiments to skip.")] = 0,
) -> ExperimentPage:
    """One page of the caller's experiments (without their reports) and how many match."""
    async with service.database.autocommit() as session:
        found, total = await ExperimentRepository(session).list(
            status=status_filter, limit=limit, offset=offset, owner=owner
        )
    return ExperimentPage(
        items=[experiment_view(e, with_report=False) for e in found],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{experiment_id}", summary="Status and report of an experiment", responses=NOT_FOUND)
async def get_experiment(
    experiment_id: ExperimentId, service: ServiceDep, owner: OwnerDep
) -> ExperimentView:
    """Status, progress in replications, and the report so far: every point with its
    finished replications and the mean and interval of each metric."""
    key = run_key(experiment_id)
    async with service.database.autocommit() as session:
        found = await ExperimentRepository(session).get(key, owner=owner) if key else None
    if found is None:
        raise ExperimentNotFound(experiment_id)
    return experiment_view(found, with_report=True)


@router.post(
    "/{experiment_id}/cancel", summary="Cancel an experiment and all its runs", responses=NOT_FOUND
)
async def cancel_experiment(
    experiment_id: ExperimentId, service: ServiceDep, settings: SettingsDep, owner: OwnerDep
) -> ExperimentView:
    """Cancel every queued replication and stop the running ones within a progress report.

    The report then counts every replication finished so far. A finished
    experiment is left as it is (its status says how it ended).
    """
    key = run_key(experiment_id)
    found = None
    if key:
        found = await experiment_jobs.cancel_experiment(
            service.database, key, owner=owner, limits=settings.limits()
        )
    if found is None:
        raise ExperimentNotFound(experiment_id)
    return experiment_view(found, with_report=True)


@router.delete(
    "/{experiment_id}",
    summary="Delete an experiment with its replications, results and series",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={
        status.HTTP_204_NO_CONTENT: {"description": "The experiment and all it stored are gone."},
        **NOT_FOUND,
    },
)
async def delete_experiment(
    experiment_id: ExperimentId, service: ServiceDep, owner: OwnerDep
) -> Response:
    """Remove the experiment, every replication run, their results, series and report, in any
    status. Running replications stop at their next progress report. To stop an experiment
    and keep it, `POST .../cancel` instead."""
    key = run_key(experiment_id)
    deleted = False
    if key:
        async with service.database.session() as session:
            deleted = await Storage(session).delete_experiment(key, owner=owner)
    if not deleted:
        raise ExperimentNotFound(experiment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class MetricNotFound(ApiError):
    """404: the experiment reports no such metric; the answer lists those it does."""

    status_code = status.HTTP_404_NOT_FOUND


@router.get(
    "/{experiment_id}/plot",
    summary="A metric against the swept value or load factor, with confidence bands",
    response_class=Response,
    responses={
        status.HTTP_200_OK: {
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in IMAGE_TYPES.values()
            },
            "description": "The chart.",
        },
        status.HTTP_404_NOT_FOUND: {
            "model": ErrorResponse,
            "description": "No such experiment, or no such metric (the valid names are listed).",
        },
    },
)
async def get_experiment_plot(
    experiment_id: ExperimentId,
    service: ServiceDep,
    owner: OwnerDep,
    metric: Annotated[
        str, Query(max_length=300, description="A metric name, e.g. latency.p95.")
    ] = "latency.p95",
    image_format: Annotated[
        Literal["png", "svg"], Query(alias="format", description="Image format.")
    ] = "png",
) -> Response:
    """Each point's mean and t interval of `metric`; a search adds its objective's bound and
    the capacity found with its interval. Drawn from the report so far, so it can be
    followed while the experiment runs."""
    key = run_key(experiment_id)
    async with service.database.autocommit() as session:
        found = await ExperimentRepository(session).get(key, owner=owner) if key else None
    if found is None:
        raise ExperimentNotFound(experiment_id)
    if found.report is None:
        raise MetricNotFound(f"experiment {found.id} has no report yet")
    try:
        image = await anyio.to_thread.run_sync(
            lambda: render_experiment_plot(found.report or {}, metric, fmt=image_format)
        )
    except UnknownMetricError as exc:
        raise MetricNotFound(str(exc)) from None
    return Response(
        content=image,
        media_type=IMAGE_TYPES[image_format],
        headers={"Cache-Control": "no-store"},
    )
