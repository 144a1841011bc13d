"""Latency distribution: the histogram of completed requests with its percentiles."""

import numpy as np
from matplotlib.axes import Axes

from asyncflow_backend.plots.style import legend_beside, no_data, style_axes
from asyncflow_backend.schemas.results import SimulationResults

_MS = 1000.0
_BAR_COLOUR = "#4e79a7"
_PERCENTILES = (("p50", "#59a14f", "-"), ("p95", "#f28e2b", "--"), ("p99", "#e15759", ":"))
# Beyond this ratio between the tallest and the smallest non-empty bin, a
# linear axis flattens the tail to nothing, so counts go on a log axis.
_LOG_RATIO = 200


def draw_latency(ax: Axes, results: SimulationResults) -> None:
    """Bars of the latency histogram in ms, p50/p95/p99 as labelled vertical lines."""
    latency = results.latency
    hist = latency.histogram
    style_axes(ax, "Latency distribution", "latency (ms)", "requests")
    counts = np.asarray(hist.counts, dtype=float)
    if latency.count == 0 or counts.sum() == 0 or len(hist.edges) != len(counts) + 1:
        no_data(ax, "no request completed")
        ax.set_xticks([])
        return
    edges = np.asarray(hist.edges) * _MS
    ax.stairs(counts, edges, fill=True, color=_BAR_COLOUR, alpha=0.85, label="requests")
    nonzero = counts[counts > 0]
    if nonzero.max() / nonzero.min() > _LOG_RATIO:
        ax.set_yscale("log")
        ax.set_ylabel("requests (log scale)")
    for name, colour, style in _PERCENTILES:
        value = getattr(latency, name)
        if value is not None:
            ax.axvline(
                value * _MS,
                color=colour,
                linestyle=style,
                linewidth=1.8,
                label=f"{name} {value * _MS:,.1f} ms",
            )
    legend_beside(ax)
