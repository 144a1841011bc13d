"""Latency over time: p50, p95 and p99 of the requests completed in each window."""

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes

from asyncflow_backend.plots.events import shade_events
from asyncflow_backend.plots.load_curve import draw_load_curve
from asyncflow_backend.plots.style import TIME_LABEL, legend_beside, no_data, style_axes
from asyncflow_backend.schemas.events import EventInjection
from asyncflow_backend.schemas.results import SimulationResults

PERCENTILE_COLOURS = {"p50": "#4e79a7", "p95": "#f28e2b", "p99": "#e15759"}
"""One colour per percentile, the same on the page's chart."""


def draw_latency_over_time(
    ax: Axes,
    results: SimulationResults,
    events: Sequence[EventInjection],
    *,
    event_legend: bool = True,
) -> None:
    """p50, p95 and p99 per window as step lines in milliseconds, events shaded, and the
    offered load on a second axis when the workload follows a schedule; a window with
    no completion leaves a gap. `event_legend` as in `draw_throughput`.
    """
    over_time = results.latency.over_time
    window = over_time.window_s if over_time else 1.0
    style_axes(ax, f"Latency over time ({window:g} s windows)", TIME_LABEL, "latency (ms)")
    ax.set_xlim(0.0, results.meta.simulated_seconds)
    if over_time is None or not any(over_time.count):
        no_data(ax, "no request completed")
    else:
        starts = np.arange(len(over_time.count) + 1, dtype=float) * window
        for name, colour in PERCENTILE_COLOURS.items():
            values = np.array(
                [np.nan if v is None else v * 1000.0 for v in getattr(over_time, name)]
            )
            # The last value repeated closes the last window's step at its end.
            ax.step(
                starts,
                np.append(values, values[-1]),
                where="post",
                color=colour,
                linewidth=1.2,
                label=name,
            )
        ax.set_ylim(bottom=0.0)
    load = draw_load_curve(ax, results, rate_axis_is_ax=False)
    shaded = shade_events(ax, events)
    legend_beside(ax, [*load, *(shaded if event_legend else [])])
