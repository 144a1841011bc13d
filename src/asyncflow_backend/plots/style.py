"""Shared look of the charts: sizes, colours, axes labels and the "no data" note."""

from collections.abc import Sequence

from matplotlib.artist import Artist
from matplotlib.axes import Axes

from asyncflow_backend.schemas.results import SimulationResults

SINGLE_FIGSIZE = (10.0, 4.2)
DASHBOARD_FIGSIZE = (15.0, 20.5)

SPIKE_COLOUR = "#f28e2b"
OUTAGE_COLOUR = "#d62728"
SLOWDOWN_COLOUR = "#00897b"
"""Slowdowns of a server or of an edge: teal, as on the web page."""
FAILURE_COLOUR = "#9467bd"
"""A server's random failures: purple, as on the web page."""
MEAN_COLOUR = "#333333"
NOTE_COLOUR = "#777777"

TIME_LABEL = "simulated time (s)"

COMPONENT_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#d62728",
)
"""Colours of the components' lines, in order (matplotlib's tab10 with its red last, so the
first nine never read as an outage's shading). The page draws with the same list."""


def run_caption(results: SimulationResults, scenario_name: str | None) -> str:
    """`name · seed N`, or `seed N` for a scenario without a name: which run a chart shows."""
    seed = f"seed {results.meta.seed}"
    return f"{scenario_name} · {seed}" if scenario_name else seed


def component_colours(results: SimulationResults) -> dict[str, str]:
    """One colour per server, edge and pool of a run, the same in every chart of it.

    Each kind is numbered in the sorted order of its ids (servers, edges and pools
    never share a chart), so the page, which numbers them the same way, agrees.
    """
    colours: dict[str, str] = {}
    for ids in (results.servers, results.edges, results.pools):
        for k, component_id in enumerate(sorted(ids)):
            colours[component_id] = COMPONENT_PALETTE[k % len(COMPONENT_PALETTE)]
    return colours


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
