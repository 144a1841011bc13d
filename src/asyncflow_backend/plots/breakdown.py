"""Where the mean response time goes: one horizontal bar per place, stacked by category."""

from matplotlib.axes import Axes
from matplotlib.patches import Patch

from asyncflow_backend.plots.style import legend_beside, no_data, style_axes
from asyncflow_backend.schemas.results import BreakdownPart, SimulationResults

CATEGORY_COLOURS = {
    "network": "#bab0ac",
    "wait": "#e15759",
    "cpu": "#4e79a7",
    "io": "#59a14f",
    "pool_wait": "#f28e2b",
    "calls": "#b07aa1",
}
"""One colour per category of `BreakdownPart`, in the order a request meets them."""
OTHER = "other places"


def draw_breakdown(ax: Axes, results: SimulationResults, *, max_places: int | None = None) -> None:
    """A bar per place (edges and servers, in the order requests meet them, top down), its
    length the seconds of the mean latency spent there, stacked by category.

    With `max_places`, the places beyond the largest `max_places` are summed in one bar.
    """
    mean = results.latency.mean
    title = "Where the mean response time goes"
    style_axes(ax, f"{title} (mean {mean * 1000:.3g} ms)" if mean else title, "milliseconds", "")
    if not results.breakdown or not mean:
        no_data(ax, "no request completed")
        return
    places = _places(results.breakdown, max_places)
    labels = list(places)
    for category, colour in CATEGORY_COLOURS.items():
        widths = [places[label].get(category, 0.0) * 1000 for label in labels]
        lefts = [
            sum(places[label].get(c, 0.0) for c in _before(category)) * 1000 for label in labels
        ]
        ax.barh(labels, widths, left=lefts, color=colour, height=0.7)
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize="small")
    ax.grid(True, axis="x", color="#e5e5e5", linewidth=0.8)
    ax.grid(False, axis="y")
    used = {category for by_category in places.values() for category in by_category}
    legend_beside(
        ax,
        [Patch(color=colour, label=c) for c, colour in CATEGORY_COLOURS.items() if c in used],
    )


def _before(category: str) -> list[str]:
    names = list(CATEGORY_COLOURS)
    return names[: names.index(category)]


def _places(parts: list[BreakdownPart], max_places: int | None) -> dict[str, dict[str, float]]:
    """Seconds by place and category, places in order; the smallest beyond `max_places`
    summed as `OTHER`."""
    places: dict[str, dict[str, float]] = {}
    for part in parts:
        places.setdefault(part.place, {})[part.category] = part.mean_s
    if max_places is None or len(places) <= max_places:
        return places
    by_size = sorted(places, key=lambda place: sum(places[place].values()), reverse=True)
    kept = set(by_size[: max_places - 1])
    shown = {place: seconds for place, seconds in places.items() if place in kept}
    other: dict[str, float] = {}
    for place, seconds in places.items():
        if place not in kept:
            for category, value in seconds.items():
                other[category] = other.get(category, 0.0) + value
    return shown | {OTHER: other}
