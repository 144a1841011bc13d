"""The offered load over time (a rate schedule or a closed population) behind a time chart."""

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes

from asyncflow_backend.schemas.results import SimulationResults

LOAD_COLOUR = "#7f7f7f"


def draw_load_curve(ax: Axes, results: SimulationResults, *, rate_axis_is_ax: bool) -> list[Artist]:
    """Draw the run's offered load as a dotted grey step line and return its legend entries
    (none when the workload has no schedule: users per window).

    An arrival rate goes on `ax` itself when `rate_axis_is_ax` (its unit is requests/s),
    else on a second y axis at the right; a population always on a second axis.
    """
    load = results.offered_load
    if load is None:
        return []
    if load.rate_per_s is not None:
        values, label, unit = load.rate_per_s, "offered rate λ(t)", "offered requests / s"
    elif load.users is not None:
        values, label, unit = load.users, "users N(t)", "users"
    else:
        return []
    target = ax if rate_axis_is_ax and load.rate_per_s is not None else ax.twinx()
    if target is not ax:
        target.set_ylabel(unit, color=LOAD_COLOUR)
        target.tick_params(axis="y", colors=LOAD_COLOUR)
        for side in ("top", "left"):
            target.spines[side].set_visible(False)
    starts = np.arange(len(values) + 1, dtype=float) * load.window_s
    starts[-1] = min(starts[-1], results.meta.simulated_seconds)
    (line,) = target.step(
        starts,
        np.append(values, values[-1]),
        where="post",
        color=LOAD_COLOUR,
        linestyle=":",
        linewidth=1.4,
        label=label,
        gid="offered-load",
    )
    target.set_ylim(bottom=0.0)
    return [] if target is ax else [line]
