"""Sampled series over time: queues and RAM per server, open connections per edge."""

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import blended_transform_factory

from asyncflow_backend.config.constants import SampledMetric
from asyncflow_backend.metrics.catalogue import METRICS, ComponentKind, MetricDefinition
from asyncflow_backend.plots.events import LEGEND_LABEL_CHARS, event_legend_entries, shade_events
from asyncflow_backend.plots.lines import band_alpha_for, band_legend_entry, draw_series
from asyncflow_backend.plots.style import (
    COMPONENT_PALETTE,
    MEAN_COLOUR,
    TIME_LABEL,
    component_colours,
    legend_beside,
    no_data,
    style_axes,
)
from asyncflow_backend.schemas.base import shorten
from asyncflow_backend.schemas.events import EventInjection
from asyncflow_backend.schemas.results import SimulationResults

READY_QUEUE = METRICS[SampledMetric.READY_QUEUE_LEN]
IO_QUEUE = METRICS[SampledMetric.EVENT_LOOP_IO_SLEEP]
RAM = METRICS[SampledMetric.RAM_IN_USE]
CONNECTIONS = METRICS[SampledMetric.EDGE_CONCURRENT_CONNECTION]
POOL_WAITING = METRICS[SampledMetric.POOL_WAITING]
_CAPACITY_STYLE = (0, (5, 3))
SPLIT_ABOVE = 4
"""A chart image of more components than this is drawn as small multiples, as on the page."""
MULTIPLE_COLUMNS = 2


def draw_sampled(
    ax: Axes,
    chart: MetricDefinition[Any],
    results: SimulationResults,
    events: Sequence[EventInjection],
    *,
    event_legend: bool = True,
    only: str | None = None,
    y_top: float | None = None,
) -> None:
    """One line per component over the horizon; long series as bucket means in a min-max band.

    With `only`, just that component, titled by its id, its y axis up to `y_top`: one panel
    of `draw_sampled_multiples`.

    Each component keeps its colour of every chart of the run (`component_colours`); a
    metric with a ceiling (RAM, pool connections) draws each component's capacity as a
    dashed line of its colour (components sharing a ceiling share a dark line), labelled at
    the right. `event_legend` as in `draw_throughput`.
    """
    title = shorten(only, LEGEND_LABEL_CHARS) if only else chart.title
    style_axes(ax, title, TIME_LABEL, chart.unit)
    ax.set_xlim(0.0, results.meta.simulated_seconds)
    period = results.time_series.sample_period_s
    per_component = results.time_series.series.get(chart.metric, {})
    bucket_s: float | None = None
    components = {
        name: series
        for name, series in per_component.items()
        if series and (only is None or name == only)
    }
    band_alpha = band_alpha_for(len(components))
    colours = component_colours(results)
    drawn: list[str] = []
    for component_id, series in sorted(components.items()):
        values = np.asarray(series, dtype=float)
        label = shorten(component_id, LEGEND_LABEL_CHARS)
        colour = colours.get(component_id, COMPONENT_PALETTE[0])
        drawn.append(colour)
        bucket_s = draw_series(ax, values, period, label, colour=colour, band_alpha=band_alpha)
    capacity = _draw_capacities(ax, chart, results, sorted(components), colours)
    if components:
        ax.set_ylim(0.0, y_top)  # y_top None: matplotlib's own top
    elif chart.kind is ComponentKind.POOL and not results.pools:
        no_data(ax, "no connection pool in this run")
    else:
        no_data(ax, f"'{chart.metric}' was not sampled")
    band: list[Artist] = [band_legend_entry(bucket_s, drawn, band_alpha)] if bucket_s else []
    shaded = shade_events(ax, events)
    legend_beside(ax, [*band, *capacity, *(shaded if event_legend else [])])


def _draw_capacities(
    ax: Axes,
    chart: MetricDefinition[Any],
    results: SimulationResults,
    component_ids: list[str],
    colours: dict[str, str],
) -> list[Line2D]:
    """Dashed capacity lines, each labelled with its value; the legend entry that explains
    them, or nothing when the metric has no ceiling."""
    if chart.capacity_field is None or not component_ids:
        return []
    by_value: dict[float, list[str]] = {}
    for component_id, value in _capacities(chart, results, component_ids).items():
        by_value.setdefault(value, []).append(component_id)
    to_text = blended_transform_factory(ax.transAxes, ax.transData)
    for value, owners in sorted(by_value.items()):
        # Components with the same ceiling share one line, so no label covers another.
        colour = colours.get(owners[0], COMPONENT_PALETTE[0]) if len(owners) == 1 else MEAN_COLOUR
        ax.axhline(value, color=colour, linestyle=_CAPACITY_STYLE, linewidth=1.2, zorder=1)
        ax.text(
            0.995,
            value,
            f"{', '.join(shorten(o, LEGEND_LABEL_CHARS) for o in owners)}: "
            f"{value:,.6g} {chart.unit}",
            transform=to_text,
            ha="right",
            va="bottom",
            fontsize="x-small",
            color=colour,
            parse_math=False,
            clip_on=False,
            gid="capacity",
        )
    drawn = bool(by_value)
    if not drawn:
        return []
    return [Line2D([], [], color=MEAN_COLOUR, linestyle=_CAPACITY_STYLE, label="capacity")]


def sampled_components(chart: MetricDefinition[Any], results: SimulationResults) -> list[str]:
    """The components with samples of the chart's metric, in the order charts draw them."""
    per_component = results.time_series.series.get(chart.metric, {})
    return sorted(name for name, series in per_component.items() if series)


def draw_sampled_multiples(
    fig: Figure,
    chart: MetricDefinition[Any],
    results: SimulationResults,
    events: Sequence[EventInjection],
) -> None:
    """Small multiples: one panel per component, two columns, one shared y range, so that
    many lines (eight edges) do not hide each other. The events are captioned once, under
    the panels."""
    components = sampled_components(chart, results)
    rows = math.ceil(len(components) / MULTIPLE_COLUMNS)
    # One y range for all, set before the event captions add their headroom once.
    series = results.time_series.series[chart.metric]
    top = max(max(series[c]) for c in components)
    top = max(top, *_capacities(chart, results, components).values(), 0.0)
    y_top = top * 1.05 if top > 0 else 1.0
    axes = fig.subplots(rows, MULTIPLE_COLUMNS, sharex=True, squeeze=False)
    for ax, component_id in zip(axes.flat, components, strict=False):
        draw_sampled(ax, chart, results, events, event_legend=False, only=component_id, y_top=y_top)
        ax.get_legend().remove()
        ax.label_outer()
    for ax in list(axes.flat)[len(components) :]:
        fig.delaxes(ax)
    if events:
        fig.legend(
            handles=event_legend_entries(events),
            loc="outside lower center",
            ncols=min(len(events), MULTIPLE_COLUMNS * 2),
            fontsize="small",
            frameon=False,
        )


def _capacities(
    chart: MetricDefinition[Any], results: SimulationResults, component_ids: list[str]
) -> dict[str, float]:
    """The ceiling of each component that has one, by id; empty for a metric without."""
    if chart.capacity_field is None:
        return {}
    by_kind: dict[ComponentKind, Mapping[str, object]] = {
        ComponentKind.SERVER: results.servers,
        ComponentKind.EDGE: results.edges,
        ComponentKind.POOL: results.pools,
    }
    summaries = by_kind[chart.kind]
    found: dict[str, float] = {}
    for component_id in component_ids:
        value = getattr(summaries.get(component_id), chart.capacity_field, None)
        if value is not None:
            found[component_id] = float(value)
    return found
