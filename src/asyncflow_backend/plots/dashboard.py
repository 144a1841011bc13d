"""Every chart of a run in one figure, with a headline of the run's totals."""

from collections.abc import Sequence

from matplotlib.figure import Figure

from asyncflow_backend.plots.breakdown import draw_breakdown
from asyncflow_backend.plots.events import event_legend_entries
from asyncflow_backend.plots.latency import draw_latency
from asyncflow_backend.plots.latency_over_time import draw_latency_over_time
from asyncflow_backend.plots.sampled import (
    CONNECTIONS,
    IO_QUEUE,
    POOL_WAITING,
    RAM,
    READY_QUEUE,
    draw_sampled,
)
from asyncflow_backend.plots.throughput import draw_throughput
from asyncflow_backend.schemas.events import EventInjection
from asyncflow_backend.schemas.results import SimulationResults

_EVENT_LEGEND_COLUMNS = 5
_BREAKDOWN_PLACES = 10


def draw_dashboard(
    fig: Figure,
    results: SimulationResults,
    events: Sequence[EventInjection],
    scenario_name: str | None = None,
) -> None:
    """A 4 x 2 grid: the latency distribution and latency over time, throughput and the
    ready queue, the I/O queue and RAM, then connections and, for a run with connection
    pools, the requests waiting for a connection; under it, across, where the mean
    response time goes (the largest places).

    The injected events are captioned once, in a legend under the grid.
    """
    layout = fig.add_gridspec(5, 2, height_ratios=[1, 1, 1, 1, 1.1])
    grid = [[fig.add_subplot(layout[row, column]) for column in range(2)] for row in range(4)]
    draw_breakdown(fig.add_subplot(layout[4, :]), results, max_places=_BREAKDOWN_PLACES)
    draw_latency(grid[0][0], results)
    draw_latency_over_time(grid[0][1], results, events, event_legend=False)
    draw_throughput(grid[1][0], results, events, event_legend=False)
    charts = [READY_QUEUE, IO_QUEUE, RAM, CONNECTIONS]
    if results.pools:
        charts.append(POOL_WAITING)
    else:
        fig.delaxes(grid[3][1])
    for ax, chart in zip([ax for row in grid for ax in row][3:], charts, strict=False):
        draw_sampled(ax, chart, results, events, event_legend=False)
    fig.suptitle(
        _headline(results, scenario_name), fontsize="large", fontweight="bold", parse_math=False
    )
    if events:
        fig.legend(
            handles=event_legend_entries(events),
            loc="outside lower center",
            ncols=min(len(events), _EVENT_LEGEND_COLUMNS),
            title="injected events",
            title_fontsize="small",
            fontsize="small",
            frameon=False,
        )


def _headline(results: SimulationResults, scenario_name: str | None) -> str:
    requests, meta = results.requests, results.meta
    named = f"{scenario_name}: " if scenario_name else ""
    # "completed" and its goodput, never the answers (late ones included) under that name.
    goodput = results.throughput.goodput_rps
    rate = results.throughput.mean_rps if goodput is None else goodput
    return (
        f"{named}{meta.simulated_seconds:g} s simulated (seed {meta.seed}): "
        f"{requests.completed:,} of {requests.generated:,} requests completed "
        f"({requests.generated - requests.completed:,} did not), goodput {rate:,.1f} req/s"
    )
