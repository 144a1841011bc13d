"""Throughput over time: completions in each second of the run, with their mean."""

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes

from asyncflow_backend.plots.events import shade_events
from asyncflow_backend.plots.lines import band_legend_entry, draw_series
from asyncflow_backend.plots.load_curve import draw_load_curve
from asyncflow_backend.plots.style import (
    MEAN_COLOUR,
    TIME_LABEL,
    legend_beside,
    no_data,
    style_axes,
)
from asyncflow_backend.schemas.events import EventInjection
from asyncflow_backend.schemas.results import SimulationResults

_LINE_COLOUR = "#4e79a7"


def draw_throughput(
    ax: Axes,
    results: SimulationResults,
    events: Sequence[EventInjection],
    *,
    event_legend: bool = True,
) -> None:
    """Completions in each second as a step line, plus the run's mean as a dashed line and
    the offered load (a rate schedule, or users on a second axis) as a dotted one.

    With `event_legend` off the event windows are still shaded and tagged, but
    their captions are left to a legend shared by several charts.
    """
    style_axes(ax, "Throughput", TIME_LABEL, "completed requests / s")
    ax.set_xlim(0.0, results.meta.simulated_seconds)
    per_second = np.asarray(results.throughput.per_second, dtype=float)
    if results.requests.completed == 0 or len(per_second) == 0:
        no_data(ax, "no request completed")
        shaded = shade_events(ax, events)
        legend_beside(ax, shaded if event_legend else [])
        return
    bucket_s = draw_series(ax, per_second, 1.0, "per second", colour=_LINE_COLOUR, steps=True)
    mean = results.throughput.mean_rps
    ax.axhline(
        mean, color=MEAN_COLOUR, linestyle="--", linewidth=1.2, label=f"mean {mean:,.1f} req/s"
    )
    ax.set_ylim(bottom=0.0)
    load = draw_load_curve(ax, results, rate_axis_is_ax=True)
    band = [band_legend_entry(bucket_s, [_LINE_COLOUR])] if bucket_s else []
    shaded = shade_events(ax, events)
    legend_beside(ax, [*band, *load, *(shaded if event_legend else [])])
