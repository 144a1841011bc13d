"""Injected events, and servers' random failures, drawn as shaded windows of simulated
time."""

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

from asyncflow_backend.config.constants import SlowdownScope
from asyncflow_backend.plots.style import (
    FAILURE_COLOUR,
    OUTAGE_COLOUR,
    SLOWDOWN_COLOUR,
    SPIKE_COLOUR,
    TIME_LABEL,
)
from asyncflow_backend.schemas.base import shorten
from asyncflow_backend.schemas.events import EventInjection
from asyncflow_backend.schemas.results import SimulationResults

LEGEND_LABEL_CHARS = 32
"""Longest id in a legend or a caption: a 64-character id would squeeze the plot."""
_SPAN_ALPHA = 0.16
_ROW_HEIGHT = 0.075  # of the axes height, per row of captions
_CAPTION_PT = 7.5
# Average glyph width of the bold sans-serif captions, as a share of the font size.
_GLYPH_WIDTH = 0.68


def event_caption(event: EventInjection) -> str:
    """What happened, to what: `ev-1: srv-1 down`, `ev-2: edge-3 +15 ms`, `ev-3: db x3`
    (a slowdown of CPU and I/O, or of an edge), `ev-4: db x2 cpu`.

    Ids longer than `LEGEND_LABEL_CHARS` are shortened, so that a legend of
    long ids does not squeeze the plot out of its figure.
    """
    what = f"{shorten(event.event_id, LEGEND_LABEL_CHARS)}: "
    what += shorten(event.target_id, LEGEND_LABEL_CHARS)
    if event.is_outage:
        return f"{what} down"
    if event.is_slowdown:
        scope = event.scope
        part = f" {scope}" if scope is not None and scope is not SlowdownScope.BOTH else ""
        return f"{what} x{event.start.factor:g}{part}"
    spike = event.start.spike_s or 0.0
    added = f"{spike * 1000:g} ms" if spike < 1 else f"{spike:g} s"
    return f"{what} +{added}"


def shade_events(ax: Axes, events: Sequence[EventInjection]) -> list[Patch]:
    """Shade every event window [t_start, t_end], tag it with its id; return legend entries.

    Spikes, outages and slowdowns get distinct colours. The id sits at the top left of
    its window; ids that would overlap go on lower rows, and the y range grows
    so that they stay clear of the data. The legend entries carry the full
    caption. Each span has the SVG id `event-<event_id>`.
    """
    if not events:
        return []
    left, right = ax.get_xlim()
    seconds_per_point = (right - left) / _axes_width_pt(ax)
    to_text = blended_transform_factory(ax.transData, ax.transAxes)
    row_ends: list[float] = []
    for event in sorted(events, key=lambda e: e.start.t_start):
        start, end = event.start.t_start, event.end.t_end
        colour = _colour(event)
        ax.axvspan(
            start,
            end,
            color=colour,
            alpha=_SPAN_ALPHA,
            linewidth=0,
            zorder=0,
            gid=f"event-{event.event_id}",
        )
        text = " " + shorten(event.event_id, LEGEND_LABEL_CHARS)
        text_end = start + len(text) * _GLYPH_WIDTH * _CAPTION_PT * seconds_per_point
        row = next((i for i, row_end in enumerate(row_ends) if row_end <= start), len(row_ends))
        if row == len(row_ends):
            row_ends.append(text_end)
        row_ends[row] = text_end
        ax.text(
            start,
            0.985 - row * _ROW_HEIGHT,
            text,
            transform=to_text,
            ha="left",
            va="top",
            fontsize=_CAPTION_PT,
            color=colour,
            fontweight="bold",
            clip_on=True,
        )
    _make_headroom(ax, len(row_ends))
    return event_legend_entries(events)


def shade_failures(fig: Figure, results: SimulationResults) -> None:
    """Shade every server's failure windows on every time axis of `fig`, untagged (a run
    may have hundreds). Time axes are those labelled with simulated time and those that
    share their x axis (small multiples keep the label on the bottom row only). Each span
    has the SVG id `failure-<server>-<k>`."""
    windows = [
        (f"failure-{server_id}-{k}", start, end)
        for server_id, stats in results.servers.items()
        for k, (start, end) in enumerate(stats.failure_windows)
    ]
    if not windows:
        return
    labelled = [ax for ax in fig.axes if ax.get_xlabel() == TIME_LABEL]
    for ax in fig.axes:
        if ax in labelled or any(ax.get_shared_x_axes().joined(ax, t) for t in labelled):
            for gid, start, end in windows:
                ax.axvspan(
                    start,
                    end,
                    color=FAILURE_COLOUR,
                    alpha=_SPAN_ALPHA,
                    linewidth=0,
                    zorder=0,
                    gid=gid,
                )


def event_legend_entries(events: Sequence[EventInjection]) -> list[Patch]:
    """One legend entry per event, in time order, in the colour of its shading."""
    return [
        Patch(color=_colour(event), alpha=_SPAN_ALPHA * 2, label=event_caption(event))
        for event in sorted(events, key=lambda e: e.start.t_start)
    ]


def _colour(event: EventInjection) -> str:
    if event.is_outage:
        return OUTAGE_COLOUR
    return SLOWDOWN_COLOUR if event.is_slowdown else SPIKE_COLOUR


def _axes_width_pt(ax: Axes) -> float:
    """Width of the axes in points, before layout: a slight overestimate, hence the slack."""
    figure = ax.get_figure(root=True)
    figure_width_in = figure.get_figwidth() if figure is not None else 10.0
    return float(ax.get_position().width * figure_width_in * 72.0 * 0.8)


def _make_headroom(ax: Axes, caption_rows: int) -> None:
    """Raise the top of the y range so the captions sit above the highest data point."""
    bottom, top = ax.get_ylim()
    share = min(0.9, 0.03 + caption_rows * _ROW_HEIGHT)
    ax.set_ylim(bottom, bottom + (top - bottom) / (1.0 - share))
