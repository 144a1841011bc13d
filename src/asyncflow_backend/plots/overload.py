"""Overload over time: the goodput and the offered attempts per second of runs side by side,
as the retry-storm figure of docs/overload.md shows them."""

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from asyncflow_backend.plots.style import COMPONENT_PALETTE, TIME_LABEL, legend_beside, style_axes
from asyncflow_backend.schemas.results import SimulationResults

_SLOWDOWN_COLOUR = "#f28e2b"


def goodput_series(results: SimulationResults) -> np.ndarray:
    """Requests completed within their timeout in each second of the run (shape: seconds,)."""
    seconds = int(results.meta.simulated_seconds)
    series = np.zeros(seconds)
    completed = results.requests.per_second.get("completed", [])
    series[: len(completed)] = completed[:seconds]
    return series


def attempts_series(results: SimulationResults) -> np.ndarray:
    """Attempts the client sent in each second (shape: seconds,): the offered load, retries
    included; without client retries, the completions and every other end stand in for it
    (one attempt per request)."""
    seconds = int(results.meta.simulated_seconds)
    sent = results.requests.attempts_per_second
    if not sent:
        ends = [np.asarray(v[:seconds], dtype=float) for v in results.requests.per_second.values()]
        return np.sum(ends, axis=0) if ends else np.zeros(seconds)
    series = np.zeros(seconds)
    series[: len(sent)] = sent[:seconds]
    return series


def draw_over_time(
    ax: Axes,
    runs: Sequence[tuple[str, np.ndarray]],
    title: str,
    ylabel: str,
    shaded: tuple[float, float] | None,
    xlabel: str = TIME_LABEL,
) -> None:
    """One step line per (label, per-second series), the window `shaded` (start, end) in
    seconds marked as the slowdown."""
    style_axes(ax, title, xlabel, ylabel)
    for k, (label, series) in enumerate(runs):
        seconds = np.arange(len(series) + 1)
        # The first run on top: where the runs agree (before the slowdown) it shows.
        ax.stairs(
            series,
            seconds,
            baseline=None,
            label=label,
            color=COMPONENT_PALETTE[k],
            linewidth=1.4,
            zorder=3 + len(runs) - k,
        )
    if shaded is not None:
        ax.axvspan(*shaded, color=_SLOWDOWN_COLOUR, alpha=0.18, linewidth=0, label="slowdown")
    ax.set_xlim(0.0, max((len(series) for _, series in runs), default=1))
    ax.set_ylim(bottom=0.0)
    legend_beside(ax)


def overload_figure(
    runs: Sequence[tuple[str, SimulationResults]], slowdown: tuple[float, float] | None
) -> Figure:
    """Two panels over time for each (label, results): goodput above, offered attempts below."""
    figure = Figure(figsize=(10.0, 6.4), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True)
    draw_over_time(
        top,
        [(label, goodput_series(results)) for label, results in runs],
        "Goodput",
        "completed (goodput) / s",
        slowdown,
        xlabel="",
    )
    draw_over_time(
        bottom,
        [(label, attempts_series(results)) for label, results in runs],
        "Offered load",
        "attempts sent / s",
        slowdown,
    )
    return figure
