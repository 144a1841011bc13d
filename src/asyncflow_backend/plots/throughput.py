"""Throughput over time: completions in each second of the run, with their mean, and beside
them every other way requests ended and the attempts sent, when the run has them."""

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
OUTCOME_COLOURS = {
    "timed_out": "#f28e2b",
    "rejected": "#b07aa1",
    "dropped": "#9c755f",
    "failed": "#e15759",
}
"""Colours of the per-second outcome lines; the page draws with the same."""
ATTEMPTS_COLOUR = "#76b7b2"
GOODPUT_COLOUR = "#59a14f"


def draw_throughput(
    ax: Axes,
    results: SimulationResults,
    events: Sequence[EventInjection],
    *,
    event_legend: bool = True,
) -> None:
    """Answers in each second (late ones included) as a step line, plus the run's mean as a
    dashed line and the offered load (a rate schedule, or users on a second axis) as a dotted one.

    With `event_legend` off the event windows are still shaded and tagged, but
    their captions are left to a legend shared by several charts.
    """
    style_axes(ax, "Throughput", TIME_LABEL, "requests / s")
    ax.set_xlim(0.0, results.meta.simulated_seconds)
    per_second = np.asarray(results.throughput.per_second, dtype=float)
    if results.requests.completed == 0 or len(per_second) == 0:
        no_data(ax, "no request completed")
        shaded = shade_events(ax, events)
        legend_beside(ax, shaded if event_legend else [])
        return
    bucket_s = draw_series(ax, per_second, 1.0, "answers", colour=_LINE_COLOUR, steps=True)
    colours = [_LINE_COLOUR, *_draw_outcomes(ax, results)]
    mean = results.throughput.mean_rps
    ax.axhline(
        mean, color=MEAN_COLOUR, linestyle="--", linewidth=1.2, label=f"mean {mean:,.1f} req/s"
    )
    ax.set_ylim(bottom=0.0)
    load = draw_load_curve(ax, results, rate_axis_is_ax=True)
    band = [band_legend_entry(bucket_s, colours)] if bucket_s else []
    shaded = shade_events(ax, events)
    legend_beside(ax, [*band, *load, *(shaded if event_legend else [])])


def _draw_outcomes(ax: Axes, results: SimulationResults) -> list[str]:
    """The completions (the goodput) when some answers came late, each outcome but completion
    that happened, per second, and the attempts the client sent per second when it retries;
    returns the colours drawn."""
    requests = results.requests
    seconds = len(results.throughput.per_second)
    drawn = []
    if requests.late_answers:
        goodput = _fit(requests.per_second.get("completed", []), seconds)
        draw_series(ax, goodput, 1.0, "completed (goodput)", colour=GOODPUT_COLOUR, steps=True)
        drawn.append(GOODPUT_COLOUR)
    for outcome, colour in OUTCOME_COLOURS.items():
        series = requests.per_second.get(outcome)
        if series and any(series):
            label = outcome.replace("_", " ")
            draw_series(ax, _fit(series, seconds), 1.0, label, colour=colour, steps=True)
            drawn.append(colour)
    if requests.attempts_per_second:
        attempts = _fit(requests.attempts_per_second, seconds)
        draw_series(ax, attempts, 1.0, "attempts sent", colour=ATTEMPTS_COLOUR, steps=True)
        drawn.append(ATTEMPTS_COLOUR)
    return drawn


def _fit(series: Sequence[int], seconds: int) -> np.ndarray:
    values = np.zeros(seconds)
    values[: min(seconds, len(series))] = series[:seconds]
    return values
