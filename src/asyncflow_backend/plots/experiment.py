"""An experiment's chart: a metric against the swept value or load factor, with confidence bands.

The x axis is the load factor for a search, the first swept field for a
sweep (one line per combination of the others), or the replication index
for plain replications. Each point is its mean with the t interval as a
band (and error bars); a search adds the objective's bound (the SLO line)
and the capacity found with its interval shaded.
"""

from collections import defaultdict
from io import BytesIO
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from asyncflow_backend.experiments.report import ExperimentReport, PointReport
from asyncflow_backend.plots.registry import PlotFormat
from asyncflow_backend.plots.style import (
    MEAN_COLOUR,
    OUTAGE_COLOUR,
    SINGLE_FIGSIZE,
    legend_beside,
    no_data,
    style_axes,
)

_COLOURS = ("#4e79a7", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#edc948")
_CAPACITY_COLOUR = "#59a14f"
OFF_SCALE = 3.0


class UnknownMetricError(ValueError):
    """The report has no such metric; `valid_names` lists those it has."""

    def __init__(self, name: str, valid: list[str]) -> None:
        super().__init__(f"unknown metric '{name}'; valid names: {', '.join(valid)}")
        self.valid_names = valid


def _x_label(report: ExperimentReport) -> tuple[str, str | None]:
    if report.search is not None:
        return f"load factor on {report.search.load}", None
    first = next((p for p in report.points if p.values), None)
    if first is None:
        return "replication", None
    path = next(iter(first.values))
    return path, path


def _series(
    report: ExperimentReport, metric: str, path: str | None
) -> dict[str, list[tuple[float, PointReport]]]:
    lines: dict[str, list[tuple[float, PointReport]]] = defaultdict(list)
    for point in report.points:
        if report.search is not None and point.factor is not None:
            lines[""].append((point.factor, point))
        elif path is not None:
            others = ", ".join(f"{p}={v}" for p, v in point.values.items() if p != path)
            value = point.values.get(path)
            if isinstance(value, int | float):
                lines[others].append((float(value), point))
    for line in lines.values():
        line.sort(key=lambda pair: pair[0])
    return lines


def _draw_line(
    ax: Axes, line: list[tuple[float, PointReport]], metric: str, colour: str, label: str
) -> bool:
    rows: list[tuple[float, float, float, float]] = []
    for x, point in line:
        summary = point.summary.get(metric)
        if summary is None or summary.mean is None:
            continue
        low = summary.low if summary.low is not None else summary.mean
        high = summary.high if summary.high is not None else summary.mean
        rows.append((x, summary.mean, low, high))
    if not rows:
        return False
    table = np.asarray(rows, dtype=np.float64)
    xs, means, lows, highs = table[:, 0], table[:, 1], table[:, 2], table[:, 3]
    ax.fill_between(xs, lows, highs, color=colour, alpha=0.2, linewidth=0)
    ax.errorbar(
        xs,
        means,
        yerr=[means - lows, highs - means],
        color=colour,
        marker="o",
        markersize=4,
        capsize=3,
        linewidth=1.4,
        label=label,
    )
    return True


def draw_experiment(ax: Axes, report: ExperimentReport, metric: str) -> None:
    """Draw `metric` of every point; raises `UnknownMetricError` for a metric not reported."""
    if metric not in report.metrics:
        raise UnknownMetricError(metric, report.metrics)
    level = f"{report.confidence:.0%}"
    xlabel, path = _x_label(report)
    style_axes(ax, f"{metric}: mean and {level} t interval", xlabel, metric)
    drawn = False
    if report.search is None and path is None:
        point = report.points[0] if report.points else None
        values = [] if point is None else [r.metrics.get(metric) for r in point.replications]
        xs = [i for i, v in enumerate(values) if v is not None]
        ys = [v for v in values if v is not None]
        if ys and point is not None:
            ax.plot(xs, ys, "o", color=_COLOURS[0], label="replications")
            summary = point.summary[metric]
            if summary.mean is not None:
                ax.axhline(summary.mean, color=MEAN_COLOUR, linestyle="--", label="mean")
            if summary.low is not None and summary.high is not None:
                ax.axhspan(
                    summary.low,
                    summary.high,
                    color=_COLOURS[0],
                    alpha=0.15,
                    label=f"{level} interval",
                )
            drawn = True
    else:
        lines = _series(report, metric, path)
        for k, (name, line) in enumerate(sorted(lines.items())):
            drawn |= _draw_line(ax, line, metric, _COLOURS[k % len(_COLOURS)], name or "mean")
    search = report.search
    if search is not None and search.objective.metric == metric:
        # Overloaded points run off by orders of magnitude: keep the bound readable.
        top = ax.get_ylim()[1]
        if search.objective.at_most > 0 and top > OFF_SCALE * search.objective.at_most:
            ax.set_ylim(bottom=0.0, top=OFF_SCALE * search.objective.at_most)
            xlabel += f" (values above {OFF_SCALE:g} x the bound are off the chart)"
            ax.set_xlabel(xlabel)
        ax.axhline(
            search.objective.at_most,
            color=OUTAGE_COLOUR,
            linestyle="--",
            label=f"objective ≤ {search.objective.at_most:g}",
        )
    if search is not None and search.capacity is not None:
        if search.high is not None:
            ax.axvspan(
                search.capacity,
                search.high,
                color=_CAPACITY_COLOUR,
                alpha=0.15,
                label="capacity interval",
            )
        ax.axvline(
            search.capacity,
            color=_CAPACITY_COLOUR,
            linewidth=1.6,
            label=f"capacity {search.capacity:g}",
        )
    if not drawn:
        no_data(ax, "no replication measured it yet")
    legend_beside(ax)


def headline_metrics(report: ExperimentReport) -> list[str]:
    """The metrics worth a chart: the search's objective first, then latency and throughput."""
    names = ["latency.p95", "latency.mean", "throughput.mean_rps"]
    if report.search is not None:
        objective = report.search.objective.metric
        names = [objective, *(n for n in names if n != objective)]
    return [n for n in names if n in report.metrics]


def render_experiment_plot(
    report: ExperimentReport | dict[str, Any],
    metric: str,
    *,
    fmt: PlotFormat = "png",
    dpi: int = 110,
) -> bytes:
    """The chart of `metric` as PNG or SVG bytes; raises `UnknownMetricError`."""
    parsed = ExperimentReport.model_validate(report)
    fig = Figure(figsize=SINGLE_FIGSIZE, layout="constrained")
    FigureCanvasAgg(fig)
    draw_experiment(fig.add_subplot(), parsed, metric)
    buffer = BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    fig.savefig(buffer, format=fmt, dpi=dpi, metadata=metadata)
    return buffer.getvalue()
