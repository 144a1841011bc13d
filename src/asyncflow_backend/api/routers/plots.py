"""/api/v1/simulations/{id}/plots/{name}: a succeeded run's charts as PNG or SVG images.

The charts are the ones `asyncflow run --plots` writes, drawn with matplotlib
from the stored results at full resolution, with the scenario's injected
events shaded. Rendering takes tens of milliseconds of CPU or more, so it
runs in a worker thread and never blocks the event loop; rendered charts are
cached, and a client that went away gets nothing drawn (`api.chart_cache`).
"""

from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status

from asyncflow_backend.api.auth import OwnerDep
from asyncflow_backend.api.dependencies import AutocommitRepositoryDep, get_service
from asyncflow_backend.api.errors import COMMON_RESPONSES, ApiError, RunStateConflict, clip
from asyncflow_backend.api.models import ErrorResponse, RunConflict
from asyncflow_backend.api.views import find_run, scenario_name
from asyncflow_backend.db.repository import RunStatus
from asyncflow_backend.plots import PLOT_NAMES, render_plot
from asyncflow_backend.schemas.events import EventInjection
from asyncflow_backend.schemas.results import SimulationResults

router = APIRouter(prefix="/simulations", tags=["simulations"], responses=COMMON_RESPONSES)

MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml"}
# A succeeded run's results never change: its charts may be cached.
CACHE_CONTROL = "private, max-age=86400"


class PlotNotFound(ApiError):
    """404: no chart has this name; the answer lists the names there are."""

    status_code = status.HTTP_404_NOT_FOUND

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown plot '{clip(name)}'; valid names: {', '.join(PLOT_NAMES)}")


def _image_content() -> dict[str, Any]:
    return {
        media_type: {"schema": {"type": "string", "format": "binary"}}
        for media_type in MEDIA_TYPES.values()
    }


@router.get(
    "/{run_id}/plots/{name}",
    summary="A chart of a succeeded run, as PNG or SVG",
    response_class=Response,
    responses={
        status.HTTP_200_OK: {"content": _image_content(), "description": "The chart."},
        status.HTTP_404_NOT_FOUND: {
            "model": ErrorResponse,
            "description": "No run has this id, or no chart has this name (the valid names "
            "are listed).",
        },
        status.HTTP_409_CONFLICT: {
            "model": RunConflict,
            "description": "The run has not succeeded (yet); `status` says where it stands.",
        },
    },
)
async def get_plot(
    request: Request,
    run_id: Annotated[str, Path(description="The id returned when the run was submitted.")],
    name: Annotated[
        str,
        Path(description=f"The chart: one of {', '.join(PLOT_NAMES)}.", examples=["dashboard"]),
    ],
    repository: AutocommitRepositoryDep,
    owner: OwnerDep,
    image_format: Annotated[
        Literal["png", "svg"], Query(alias="format", description="Image format.")
    ] = "png",
) -> Response:
    """Chart `name` of the run, injected events shaded on its time axes.

    `dashboard` puts every chart on one page; the others are the latency
    histogram, throughput per second, the ready and I/O queues, RAM and the
    edges' open connections.
    """
    run = await find_run(repository, run_id, owner)
    if name not in PLOT_NAMES:
        raise PlotNotFound(name)
    state = RunStatus(run.status)
    if state != RunStatus.SUCCEEDED:
        raise RunStateConflict(
            state, f"run {run.id} is {state.value}; its charts exist only once it has succeeded"
        )
    key = (run.id, name, image_format)
    charts = get_service(request).charts
    image = charts.get(key)
    if image is None:
        document = await repository.get_document(run.id)
        if document is None:
            raise RunStateConflict(
                state, f"run {run.id} is {state.value}; its results are not stored"
            )
        raw_events = (await repository.scenario_of(run)).get("events") or []
        image = await charts.get_or_render(
            key,
            partial(_render, name, document, raw_events, image_format, scenario_name(run)),
            request.is_disconnected,
        )
    return Response(
        content=image,
        media_type=MEDIA_TYPES[image_format],
        headers={
            "Cache-Control": CACHE_CONTROL,
            "Content-Disposition": f'inline; filename="{run.id}-{name}.{image_format}"',
        },
    )


def _render(
    name: str,
    document: dict[str, Any],
    raw_events: list[Any],
    image_format: Literal["png", "svg"],
    title: str | None,
) -> bytes:
    """Parse the stored results and events and draw the chart (CPU-bound: in a thread)."""
    results = SimulationResults.model_validate(document)
    events = [EventInjection.model_validate(raw) for raw in raw_events]
    return render_plot(name, results, events=events, scenario_name=title, fmt=image_format)
