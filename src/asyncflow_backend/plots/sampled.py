"""Sampled series over time: queues and RAM per server, open connections per edge."""

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes

from asyncflow_backend.config.constants import SampledMetric
from asyncflow_backend.metrics.catalogue import METRICS, ComponentKind, MetricDefinition
from asyncflow_backend.plots.events import LEGEND_LABEL_CHARS, shade_events
from asyncflow_backend.plots.lines import band_alpha_for, band_legend_entry, draw_series
from asyncflow_backend.plots.style import (
    TIME_LABEL,
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


def draw_sampled(
    ax: Axes,
    chart: MetricDefinition[Any],
    results: SimulationResults,
    events: Sequence[EventInjection],
    *,
    event_legend: bool = True,
) -> None:
    """One line per component over the horizon; long series as bucket means in a min-max band.

    `event_legend` as in `draw_throughput`.
    """
    style_axes(ax, chart.title, TIME_LABEL, chart.unit)
    ax.set_xlim(0.0, results.meta.simulated_seconds)
    period = results.time_series.sample_period_s
    per_component = results.time_series.series.get(chart.metric, {})
    bucket_s: float | None = None
    components = {name: series for name, series in per_component.items() if series}
    band_alpha = band_alpha_for(len(components))
    for component_id, series in sorted(components.items()):
        values = np.asarray(series, dtype=float)
        label = shorten(component_id, LEGEND_LABEL_CHARS)
        bucket_s = draw_series(ax, values, period, label, band_alpha=band_alpha)
    if components:
        ax.set_ylim(bottom=0.0)
    elif chart.kind is ComponentKind.POOL and not results.pools:
        no_data(ax, "no connection pool in this run")
    else:
        no_data(ax, f"'{chart.metric}' was not sampled")
    band = [band_legend_entry(bucket_s, band_alpha)] if bucket_s else []
    shaded = shade_events(ax, events)
    legend_beside(ax, band + (shaded if event_legend else []))
