"""Shared look of the charts: sizes, colours, axes labels and the "no data" note."""

from collections.abc import Sequence

from matplotlib.artist import Artist
from matplotlib.axes import Axes

SINGLE_FIGSIZE = (10.0, 4.2)
DASHBOARD_FIGSIZE = (15.0, 16.5)

SPIKE_COLOUR = "#f28e2b"
OUTAGE_COLOUR = "#d62728"
MEAN_COLOUR = "#333333"
NOTE_COLOUR = "#777777"

TIME_LABEL = "simulated time (s)"


def style_axes(ax: Axes, title: str, xlabel: str, ylabel: str) -> None:
    """Title, axis labels and a light grid behind the data."""
    ax.set_title(title, loc="left", fontsize="medium", fontweight="bold")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def no_data(ax: Axes, reason: str) -> None:
    """Mark an axes as empty on purpose, saying why, instead of leaving it blank."""
    ax.text(
        0.5,
        0.5,
        f"no data\n{reason}",
        transform=ax.transAxes,
        ha="center",
        va="center",
        color=NOTE_COLOUR,
        fontsize="large",
        gid="no-data",
    )
    ax.set_yticks([])


def legend_beside(ax: Axes, extra: Sequence[Artist] = ()) -> None:
    """A legend right of the plot area, where it cannot cover the data."""
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(
        handles=[*handles, *extra],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize="small",
        frameon=False,
        borderaxespad=0.0,
    )
