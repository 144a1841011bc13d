"""The charts by name, and rendering one of them to PNG or SVG bytes."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from io import BytesIO
from typing import Any, Literal

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from asyncflow_backend.metrics.catalogue import METRICS, MetricDefinition
from asyncflow_backend.plots.breakdown import draw_breakdown
from asyncflow_backend.plots.dashboard import draw_dashboard
from asyncflow_backend.plots.events import shade_failures
from asyncflow_backend.plots.latency import draw_latency
from asyncflow_backend.plots.latency_over_time import draw_latency_over_time
from asyncflow_backend.plots.replicas import draw_replicas
from asyncflow_backend.plots.sampled import (
    MULTIPLE_COLUMNS,
    SPLIT_ABOVE,
    draw_sampled,
    draw_sampled_multiples,
    sampled_components,
)
from asyncflow_backend.plots.style import DASHBOARD_FIGSIZE, SINGLE_FIGSIZE, run_caption
from asyncflow_backend.plots.throughput import draw_throughput
from asyncflow_backend.schemas.events import EventInjection
from asyncflow_backend.schemas.results import SimulationResults

PlotFormat = Literal["png", "svg"]
MULTIPLE_ROW_INCHES = 2.2
Events = Sequence[EventInjection]


@dataclass(frozen=True)
class Chart:
    """A named chart: how big its figure is and what draws into it."""

    figsize: tuple[float, float]
    draw: Callable[[Figure, SimulationResults, Events, str | None], None]


def _single(draw_on_axes: Callable[[Axes, SimulationResults, Events], None]) -> Chart:
    def draw(fig: Figure, results: SimulationResults, events: Events, name: str | None) -> None:
        draw_on_axes(fig.add_subplot(), results, events)
        # An image saved on its own still says which run it shows.
        fig.suptitle(
            run_caption(results, name), x=0.01, ha="left", fontsize="small", parse_math=False
        )

    return Chart(SINGLE_FIGSIZE, draw)


def _sampled(definition: MetricDefinition[Any]) -> Chart:
    """One axes for a few components; small multiples, in a taller figure, for many."""
    single = _single(partial(_overlaid, definition))

    def draw(fig: Figure, results: SimulationResults, events: Events, name: str | None) -> None:
        components = sampled_components(definition, results)
        if len(components) <= SPLIT_ABOVE:
            single.draw(fig, results, events, name)
            return
        rows = -(-len(components) // MULTIPLE_COLUMNS)
        fig.set_size_inches(SINGLE_FIGSIZE[0], MULTIPLE_ROW_INCHES * rows + 1.2)
        draw_sampled_multiples(fig, definition, results, events)
        fig.suptitle(
            f"{definition.title} ({run_caption(results, name)})",
            x=0.01,
            ha="left",
            fontsize="medium",
            fontweight="bold",
            parse_math=False,
        )

    return Chart(SINGLE_FIGSIZE, draw)


def _overlaid(
    definition: MetricDefinition[Any], ax: Axes, results: SimulationResults, events: Events
) -> None:
    draw_sampled(ax, definition, results, events)


def _latency(ax: Axes, results: SimulationResults, _events: Events) -> None:
    draw_latency(ax, results)


def _breakdown(ax: Axes, results: SimulationResults, _events: Events) -> None:
    draw_breakdown(ax, results)


_CHARTS: dict[str, Chart] = {
    "dashboard": Chart(DASHBOARD_FIGSIZE, draw_dashboard),
    "latency": _single(_latency),
    "latency_over_time": _single(draw_latency_over_time),
    "throughput": _single(draw_throughput),
    "breakdown": _single(_breakdown),
    "replicas": _single(draw_replicas),
    **{d.chart: _sampled(d) for d in METRICS.values()},
}

PLOT_NAMES: tuple[str, ...] = tuple(_CHARTS)


class UnknownPlotError(ValueError):
    """Raised for a chart name that is not one of `PLOT_NAMES`."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown plot '{name}'; valid names: {', '.join(PLOT_NAMES)}")
        self.name = name
        self.valid_names = PLOT_NAMES


def build_figure(
    name: str,
    results: SimulationResults,
    *,
    events: Events | None = None,
    scenario_name: str | None = None,
) -> Figure:
    """The figure of chart `name`, drawn and not yet rendered; its title names the scenario
    (`scenario_name`, if any) and the seed."""
    chart = _CHARTS.get(name)
    if chart is None:
        raise UnknownPlotError(name)
    fig = Figure(figsize=chart.figsize, layout="constrained")
    FigureCanvasAgg(fig)
    chart.draw(fig, results, events or (), scenario_name)
    shade_failures(fig, results)
    return fig


def render_plot(
    name: str,
    results: SimulationResults,
    *,
    events: Events | None = None,
    scenario_name: str | None = None,
    fmt: PlotFormat = "png",
    dpi: int = 110,
) -> bytes:
    """Chart `name` of a run as PNG or SVG bytes; injected events are shaded on time axes.

    Uses the object API on the Agg canvas only (no pyplot, no global figure
    registry), so concurrent calls from several threads do not share state.
    """
    fig = build_figure(name, results, events=events, scenario_name=scenario_name)
    buffer = BytesIO()
    # No creation date or version stamp: the same results give the same PNG bytes. SVG
    # element ids stay salted at random unless the process sets rcParams["svg.hashsalt"].
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    fig.savefig(buffer, format=fmt, dpi=dpi, metadata=metadata)
    return buffer.getvalue()
