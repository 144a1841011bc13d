"""The size of each autoscaled replica group over time, over the offered load."""

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from asyncflow_backend.plots.events import shade_events
from asyncflow_backend.plots.load_curve import draw_load_curve
from asyncflow_backend.plots.style import (
    COMPONENT_PALETTE,
    TIME_LABEL,
    legend_beside,
    no_data,
    style_axes,
)
from asyncflow_backend.schemas.events import EventInjection
from asyncflow_backend.schemas.results import SimulationResults


def draw_replicas(ax: Axes, results: SimulationResults, events: Sequence[EventInjection]) -> None:
    """Per autoscaled group, the replicas in service as a solid step line and those taking
    traffic (ready) as a dashed one in the same colour; the offered load dotted on a second
    axis. SVG ids: `replicas-<group>`, `ready-<group>`."""
    style_axes(ax, "Replicas", TIME_LABEL, "replicas")
    ax.set_xlim(0.0, results.meta.simulated_seconds)
    scaled = {
        name: group.autoscaling
        for name, group in results.replica_groups.items()
        if group.autoscaling is not None
    }
    if not scaled:
        no_data(ax, "no replica group has an autoscaler")
        legend_beside(ax, shade_events(ax, events))
        return
    top = 1
    for k, (name, stats) in enumerate(scaled.items()):
        colour = COMPONENT_PALETTE[k % len(COMPONENT_PALETTE)]
        for series, style, label, gid in (
            (stats.replicas_over_time, "-", f"{name}: in service", f"replicas-{name}"),
            (stats.ready_over_time, "--", f"{name}: ready", f"ready-{name}"),
        ):
            times = [t for t, _ in series]
            counts = [n for _, n in series]
            top = max(top, *counts)
            ax.step(
                times,
                counts,
                where="post",
                color=colour,
                linestyle=style,
                linewidth=1.6,
                label=label,
                gid=gid,
            )
    ax.set_ylim(0, top + 1)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    load = draw_load_curve(ax, results, rate_axis_is_ax=False)
    legend_beside(ax, [*load, *shade_events(ax, events)])
    legend = ax.get_legend()
    if load and legend is not None:  # clear of the load's axis at the right
        legend.set_bbox_to_anchor((1.09, 1.0), transform=ax.transAxes)
