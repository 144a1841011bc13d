"""Every chart of a run in one figure, with a headline of the run's totals."""

from collections.abc import Sequence

from matplotlib.figure import Figure

from asyncflow_backend.plots.events import event_legend_entries
from asyncflow_backend.plots.latency import draw_latency
from asyncflow_backend.plots.sampled import CONNECTIONS, IO_QUEUE, RAM, READY_QUEUE, draw_sampled
from asyncflow_backend.plots.throughput import draw_throughput
from asyncflow_backend.schemas.events import EventInjection
from asyncflow_backend.schemas.results import SimulationResults

_EVENT_LEGEND_COLUMNS = 5


def draw_dashboard(
    fig: Figure, results: SimulationResults, events: Sequence[EventInjection]
) -> None:
    """A 3 x 2 grid: latency and throughput, then the two queues, then RAM and connections.

    The injected events are captioned once, in a legend under the grid.
    """
    grid = fig.subplots(3, 2)
    draw_latency(grid[0, 0], results)
    draw_throughput(grid[0, 1], results, events, event_legend=False)
    for ax, chart in zip(grid[1:].flat, (READY_QUEUE, IO_QUEUE, RAM, CONNECTIONS), strict=True):
        draw_sampled(ax, chart, results, events, event_legend=False)
    fig.suptitle(_headline(results), fontsize="large", fontweight="bold")
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


def _headline(results: SimulationResults) -> str:
    requests, meta = results.requests, results.meta
    return (
        f"{meta.simulated_seconds:g} s simulated (seed {meta.seed}): "
        f"{requests.completed:,} of {requests.generated:,} requests completed, "
        f"{requests.dropped:,} dropped, {results.throughput.mean_rps:,.1f} req/s"
    )
