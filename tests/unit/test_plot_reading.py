"""What a reader needs from the images: which run, stable colours, ceilings, legible labels."""

from typing import Any

import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from asyncflow_backend.plots import PLOT_NAMES, build_figure
from asyncflow_backend.plots.style import COMPONENT_PALETTE, component_colours
from asyncflow_backend.runtime.runner import run_scenario
from asyncflow_backend.schemas import Scenario, parse_scenario
from asyncflow_backend.schemas.results import SimulationResults
from support.documents import spike
from support.scenarios import plotted_scenario

CROWDED_EVENTS = 8


@pytest.fixture(scope="module")
def crowded() -> tuple[Scenario, SimulationResults]:
    """Eight latency spikes 0.4 s apart with long ids, the two servers with different RAM."""
    document: dict[str, Any] = plotted_scenario()
    document["sim_settings"]["sample_period_s"] = 0.1
    document["topology_graph"]["nodes"]["servers"][1]["server_resources"]["ram_mb"] = 1024
    document["events"] = [
        spike(f"event-number-{k}", "client-lb", start=2.0 + k * 0.4, end=20.0, spike_s=0.01)
        for k in range(CROWDED_EVENTS)
    ]
    scenario = parse_scenario(document)
    return scenario, run_scenario(scenario)


def _drawn(fig: Figure) -> Figure:
    fig.canvas.draw()
    return fig


def _overlaps(texts: list[Text], fig: Figure) -> list[tuple[str, str]]:
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    return [
        (a, b)
        for i, (a, box_a) in enumerate(boxes)
        for b, box_b in boxes[i + 1 :]
        if box_a.overlaps(box_b)
    ]


@pytest.mark.parametrize("chart", ["throughput", "ram", "latency_over_time", "dashboard"])
def test_event_captions_never_overlap(
    crowded: tuple[Scenario, SimulationResults], chart: str
) -> None:
    scenario, results = crowded
    fig = _drawn(build_figure(chart, results, events=scenario.events))
    for ax in fig.axes:
        captions = [t for t in ax.texts if t.get_text().strip().startswith("event-number-")]
        # The two charts without a time axis carry no event.
        if not ax.get_title(loc="left").startswith(("Latency distribution", "Where the mean")):
            assert len(captions) == CROWDED_EVENTS
        assert _overlaps(captions, fig) == []


@pytest.mark.parametrize("chart", [n for n in PLOT_NAMES if n != "dashboard"])
def test_single_charts_name_the_scenario_and_the_seed(
    crowded: tuple[Scenario, SimulationResults], chart: str
) -> None:
    _, results = crowded
    fig = build_figure(chart, results, scenario_name="ram $pressure$ [x]")
    assert f"ram $pressure$ [x] · seed {results.meta.seed}" in fig.get_suptitle()
    _drawn(fig)  # dollar signs are text, not a formula
    assert f"seed {results.meta.seed}" in build_figure(chart, results).get_suptitle()


def test_the_dashboard_headline_names_the_scenario(
    crowded: tuple[Scenario, SimulationResults],
) -> None:
    _, results = crowded
    fig = build_figure("dashboard", results, scenario_name="two servers")
    headline = fig.get_suptitle()
    assert headline.startswith("two servers: 30 s simulated (seed 11)")
    requests = results.requests
    assert f"({requests.generated - requests.completed:,} did not), goodput" in headline


def test_components_keep_their_colour_in_every_chart(
    crowded: tuple[Scenario, SimulationResults],
) -> None:
    _, results = crowded
    colours = component_colours(results)
    assert colours["srv-1"] == COMPONENT_PALETTE[0]
    assert colours["srv-2"] == COMPONENT_PALETTE[1]
    for chart in ("ready_queue", "io_queue", "ram"):
        (ax, *_) = build_figure(chart, results).axes
        lines = {line.get_label(): line.get_color() for line in ax.get_lines()}
        assert lines["srv-1"] == colours["srv-1"], chart
        assert lines["srv-2"] == colours["srv-2"], chart
    # Six edges: one panel each, titled and coloured by the edge, on one y range.
    panels = build_figure("connections", results).axes
    assert [ax.get_title(loc="left") for ax in panels] == sorted(results.edges)
    for ax in panels:
        (line,) = [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]
        assert line.get_label() == ax.get_title(loc="left")
        assert line.get_color() == colours[line.get_label()]
    assert len({ax.get_ylim() for ax in panels}) == 1
    top = max(max(v) for v in results.time_series.series["edge_concurrent_connection"].values())
    assert panels[0].get_ylim()[1] >= top


def test_a_few_components_share_one_axes(crowded: tuple[Scenario, SimulationResults]) -> None:
    _, results = crowded
    (ax,) = build_figure("ram", results).axes
    assert sorted(ln.get_label() for ln in ax.get_lines() if ln.get_label()[0] != "_") == [
        "srv-1",
        "srv-2",
    ]


def test_ram_chart_draws_each_servers_capacity(
    crowded: tuple[Scenario, SimulationResults],
) -> None:
    _, results = crowded
    (ax,) = build_figure("ram", results).axes
    labels = sorted(t.get_text() for t in ax.texts if t.get_gid() == "capacity")
    assert labels == ["srv-1: 2,048 MB", "srv-2: 1,024 MB"]
    levels = {line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"}
    assert levels == {2048.0, 1024.0}
    assert ax.get_ylim()[1] > 2048.0
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "capacity" in legend


def test_the_band_swatch_takes_the_colours_of_the_lines() -> None:
    scenario = parse_scenario(plotted_scenario())  # 3,000 samples per series: drawn as bands
    results = run_scenario(scenario)
    (ax,) = build_figure("ram", results).axes
    swatches = {
        to_hex(child.get_facecolor())
        for child in ax.get_legend().findobj(Rectangle)
        if child.get_alpha() not in (None, 1.0)
    }
    colours = component_colours(results)
    assert {colours["srv-1"], colours["srv-2"]} <= swatches
    assert "#808080" not in swatches
