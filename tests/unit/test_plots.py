"""Charts of a results document: every chart renders, shows the events, survives missing data."""

import subprocess
import sys
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.image import imread
from typer.testing import CliRunner

from asyncflow_backend.builder import exponential
from asyncflow_backend.cli import app
from asyncflow_backend.plots import PLOT_NAMES, UnknownPlotError, build_figure, render_plot
from asyncflow_backend.plots.lines import MAX_BUCKETS, draw_series
from asyncflow_backend.runtime.runner import run_scenario
from asyncflow_backend.schemas import Scenario, parse_scenario
from asyncflow_backend.schemas.events import EventInjection
from asyncflow_backend.schemas.results import SimulationResults
from support.scenarios import cpu_station, plotted_scenario

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIME_CHARTS = ("throughput", "ready_queue", "io_queue", "ram", "connections")
HORIZON_S = 30.0


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return parse_scenario(plotted_scenario())


@pytest.fixture(scope="module")
def events(scenario: Scenario) -> list[EventInjection]:
    assert scenario.events is not None
    return scenario.events


@pytest.fixture(scope="module")
def results(scenario: Scenario) -> SimulationResults:
    return run_scenario(scenario)


@pytest.fixture
def empty_results(results: SimulationResults) -> SimulationResults:
    """A run in which nothing completed and no metric was sampled."""
    document = results.model_dump()
    document["requests"].update(generated=0, completed=0, dropped=0, in_flight=0, dropped_at={})
    document["latency"] = {
        **dict.fromkeys(("mean", "std", "min", "p50", "p90", "p95", "p99", "max")),
        "count": 0,
        "histogram": {"edges": [], "counts": []},
    }
    document["throughput"] = {"mean_rps": 0.0, "per_second": [0] * int(HORIZON_S)}
    document["time_series"]["series"] = {}
    document["breakdown"] = []
    return SimulationResults.model_validate(document)


def _axes_by_title(fig: Figure) -> dict[str, Axes]:
    return {ax.get_title(loc="left"): ax for ax in fig.axes}


def _event_spans(ax: Axes) -> list[str]:
    return [p.get_gid() for p in ax.patches if (p.get_gid() or "").startswith("event-")]


def _notes(ax: Axes) -> list[str]:
    return [t.get_text() for t in ax.texts if t.get_gid() == "no-data"]


def test_the_charts_have_the_documented_names() -> None:
    assert PLOT_NAMES == (
        "dashboard",
        "latency",
        "latency_over_time",
        "throughput",
        "breakdown",
        "replicas",
        "ready_queue",
        "io_queue",
        "ram",
        "connections",
        "pool_in_use",
        "pool_waiting",
    )


@pytest.mark.parametrize("name", PLOT_NAMES)
def test_png_is_a_real_non_blank_image(
    name: str, results: SimulationResults, events: list[EventInjection]
) -> None:
    image = render_plot(name, results, events=events, fmt="png", dpi=60)
    assert image.startswith(PNG_SIGNATURE)
    pixels = imread(BytesIO(image), format="png")
    assert pixels.ndim == 3
    assert pixels.shape[0] > 100
    assert pixels.shape[1] > 100
    # A blank canvas has zero variance; a chart has axes, text and data in colour.
    assert pixels[..., :3].var() > 0.005
    assert len(np.unique(pixels[..., :3].reshape(-1, 3), axis=0)) > 50


@pytest.mark.parametrize("name", PLOT_NAMES)
def test_svg_parses_and_carries_the_event_windows(
    name: str, results: SimulationResults, events: list[EventInjection]
) -> None:
    root = ET.fromstring(render_plot(name, results, events=events, fmt="svg"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    ids = {element.get("id") for element in root.iter()}
    if name in ("latency", "breakdown"):
        assert not {"event-ev-spike", "event-ev-down"} & ids
    else:
        assert {"event-ev-spike", "event-ev-down"} <= ids


def test_every_time_axis_shades_every_event_and_the_histogram_none(
    results: SimulationResults, events: list[EventInjection]
) -> None:
    axes = _axes_by_title(build_figure("dashboard", results, events=events))
    # No pools in this run: seven panels, the pool panel left out, and the breakdown.
    assert len(axes) == 8
    untimed = ("Latency distribution", "Where the mean response time goes")
    for title, ax in axes.items():
        expected = [] if title.startswith(untimed) else ["event-ev-spike", "event-ev-down"]
        assert sorted(_event_spans(ax)) == sorted(expected), title


def test_event_windows_span_their_times_in_their_kind_colour(
    results: SimulationResults, events: list[EventInjection]
) -> None:
    (ax,) = build_figure("ram", results, events=events).axes
    spans = {p.get_gid(): p for p in ax.patches if p.get_gid()}
    spike, outage = spans["event-ev-spike"], spans["event-ev-down"]
    spike_x = spike.get_path().transformed(spike.get_patch_transform()).vertices[:, 0]
    assert (spike_x.min(), spike_x.max()) == pytest.approx((5.0, 12.0))
    assert spike.get_facecolor()[:3] != outage.get_facecolor()[:3]


def test_overlapping_events_have_captions_on_separate_rows(
    results: SimulationResults, events: list[EventInjection]
) -> None:
    (ax,) = build_figure("throughput", results, events=events).axes
    captions = {t.get_text().strip(): t.get_position() for t in ax.texts}
    assert captions["ev-spike"][0] == 5.0
    assert captions["ev-down"][0] == 6.0
    assert captions["ev-spike"][1] != captions["ev-down"][1]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "ev-spike: client-lb +50 ms" in legend
    assert "ev-down: srv-1 down" in legend


def test_the_dashboard_captions_events_once_in_a_shared_legend(
    results: SimulationResults, events: list[EventInjection]
) -> None:
    fig = build_figure("dashboard", results, events=events)
    (shared,) = fig.legends
    assert [t.get_text() for t in shared.get_texts()] == [
        "ev-spike: client-lb +50 ms",
        "ev-down: srv-1 down",
    ]
    for ax in fig.axes:
        assert not any(t.get_text().startswith("ev-") for t in ax.get_legend().get_texts())


def test_without_events_nothing_is_shaded(results: SimulationResults) -> None:
    fig = build_figure("dashboard", results)
    assert all(not _event_spans(ax) for ax in fig.axes)
    assert not fig.legends


def test_latency_marks_the_percentiles_in_milliseconds(results: SimulationResults) -> None:
    (ax,) = build_figure("latency", results).axes
    assert ax.get_xlabel() == "latency (ms)"
    marks = {line.get_label().split()[0]: line.get_xdata()[0] for line in ax.get_lines()}
    latency = results.latency
    assert marks == pytest.approx(
        {"p50": latency.p50 * 1000, "p95": latency.p95 * 1000, "p99": latency.p99 * 1000}
    )


def test_sampled_charts_draw_one_line_per_component_over_the_horizon(
    results: SimulationResults,
) -> None:
    axes = _axes_by_title(build_figure("dashboard", results))
    ram = axes["RAM in use"]
    # Capacity lines are not series: matplotlib keeps `_`-labelled artists out of legends.
    series = [line.get_label() for line in ram.get_lines() if not line.get_label().startswith("_")]
    assert sorted(series) == ["srv-1", "srv-2"]
    assert ram.get_xlim() == (0.0, HORIZON_S)
    assert ram.get_ylabel() == "MB"
    connections = axes["Open connections per edge"]
    assert len(connections.get_lines()) == len(results.edges)


def test_missing_data_gives_empty_charts_with_a_note(
    empty_results: SimulationResults, events: list[EventInjection]
) -> None:
    axes = _axes_by_title(build_figure("dashboard", empty_results, events=events))
    for title, ax in axes.items():
        assert _notes(ax), title
    assert "'ram_in_use' was not sampled" in _notes(axes["RAM in use"])[0]
    assert "no request completed" in _notes(axes["Latency distribution"])[0]
    for name in PLOT_NAMES:
        assert render_plot(name, empty_results, events=events).startswith(PNG_SIGNATURE)


def test_latency_over_time_draws_each_percentile_per_window_in_milliseconds(
    results: SimulationResults,
) -> None:
    (ax,) = build_figure("latency_over_time", results).axes
    over_time = results.latency.over_time
    assert over_time is not None
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"p50", "p95", "p99"}
    first = next(k for k, p99 in enumerate(over_time.p99) if p99 is not None)
    assert lines["p99"].get_ydata()[first] == pytest.approx(over_time.p99[first] * 1000)
    assert ax.get_ylabel() == "latency (ms)"


def test_charts_with_data_carry_no_note(results: SimulationResults) -> None:
    assert all(not _notes(ax) for ax in build_figure("dashboard", results).axes)


def test_an_unknown_name_lists_the_valid_ones(results: SimulationResults) -> None:
    with pytest.raises(UnknownPlotError, match="valid names: dashboard, latency") as caught:
        render_plot("cpu", results)
    assert isinstance(caught.value, ValueError)
    assert caught.value.valid_names == PLOT_NAMES


def test_long_series_are_bucketed_without_losing_a_one_sample_spike() -> None:
    values = np.zeros(300_000)
    values[123_457] = 42.0
    ax = Figure().add_subplot()
    bucket_s = draw_series(ax, values, 0.001, "srv-1")
    (line,) = ax.get_lines()
    assert len(line.get_xdata()) <= MAX_BUCKETS
    assert bucket_s == pytest.approx(0.5)
    (band,) = (c for c in ax.collections if isinstance(c, PolyCollection))
    assert band.get_paths()[0].vertices[:, 1].max() == 42.0
    assert line.get_ydata().max() == pytest.approx(42.0 / 500)


def test_short_series_are_drawn_whole() -> None:
    ax = Figure().add_subplot()
    assert draw_series(ax, np.arange(50.0), 0.1, "srv-1") is None
    (line,) = ax.get_lines()
    assert list(line.get_ydata()) == list(range(50))
    assert not ax.collections


def test_png_rendering_is_deterministic_and_safe_across_threads(
    results: SimulationResults, events: list[EventInjection]
) -> None:
    names = ("latency", "ram", "throughput", "connections", "ready_queue", "io_queue")

    def render(name: str) -> bytes:
        return render_plot(name, results, events=events, dpi=50)

    alone = [render(name) for name in names]
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        together = list(pool.map(render, names))
    assert together == alone


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "scenario.yml"
    path.write_text(yaml.safe_dump(plotted_scenario()), encoding="utf-8")
    return path


def test_cli_run_plots_writes_every_chart_as_png(scenario_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "charts" / "nested"
    outcome = CliRunner().invoke(app, ["run", str(scenario_file), "-q", "--plots", str(out)])
    assert outcome.exit_code == 0, outcome.output
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{name}.png" for name in PLOT_NAMES)
    dashboard = (out / "dashboard.png").read_bytes()
    assert dashboard.startswith(PNG_SIGNATURE)
    assert imread(BytesIO(dashboard), format="png")[..., :3].var() > 0.005


@pytest.mark.parametrize(
    ("choice", "formats"), [("png", {"png"}), ("svg", {"svg"}), ("both", {"png", "svg"})]
)
def test_cli_plot_format_picks_the_files(
    choice: str,
    formats: set[str],
    scenario_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, str, int]] = []

    def fake_render(
        name: str, results: Any, *, events: Any = None, scenario_name: Any = None, fmt: str = "png"
    ) -> bytes:
        assert scenario_name == "scenario"  # the file's name, the scenario having none
        calls.append((name, fmt, len(events or [])))
        return fmt.encode()

    # Rendering itself is covered above; here only which files the options ask for.
    monkeypatch.setattr("asyncflow_backend.plots.render_plot", fake_render)
    out = tmp_path / "charts"
    outcome = CliRunner().invoke(
        app, ["run", str(scenario_file), "-q", "--plots", str(out), "--plot-format", choice]
    )
    assert outcome.exit_code == 0, outcome.output
    expected = {f"{name}.{fmt}" for name in PLOT_NAMES for fmt in formats}
    assert {p.name for p in out.iterdir()} == expected
    assert all((out / f).read_bytes() == f.rsplit(".", 1)[1].encode() for f in expected)
    assert {events for _, _, events in calls} == {2}


def test_cli_rejects_an_unknown_plot_format(scenario_file: Path, tmp_path: Path) -> None:
    outcome = CliRunner().invoke(
        app, ["run", str(scenario_file), "--plots", str(tmp_path), "--plot-format", "gif"]
    )
    assert outcome.exit_code == 2


def test_the_cli_module_does_not_load_matplotlib() -> None:
    probe = "import sys, asyncflow_backend.cli; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0


def test_per_second_steps_reach_the_end_of_the_last_second() -> None:
    ax = Figure().add_subplot()
    draw_series(ax, np.array([4.0, 6.0, 5.0]), 1.0, "per second", steps=True)
    (line,) = ax.get_lines()
    assert list(line.get_xdata()) == [0.0, 1.0, 2.0, 3.0]
    assert list(line.get_ydata()) == [4.0, 6.0, 5.0, 5.0]


def test_the_breakdown_stacks_each_places_categories_to_its_time(
    results: SimulationResults,
) -> None:
    (ax,) = build_figure("breakdown", results).axes
    assert ax.get_title(loc="left").startswith("Where the mean response time goes")
    seconds: dict[str, float] = {}
    for part in results.breakdown:
        seconds[part.place] = seconds.get(part.place, 0.0) + part.mean_s
    labels = [label.get_text() for label in ax.get_yticklabels()]
    assert labels == list(seconds)
    ends: dict[int, float] = {}
    for bar in ax.patches:
        row = round(bar.get_y() + bar.get_height() / 2)
        ends[row] = max(ends.get(row, 0.0), bar.get_x() + bar.get_width())
    for row, place in enumerate(labels):
        assert ends[row] == pytest.approx(seconds[place] * 1000)


def test_the_dashboard_breakdown_sums_the_smallest_places(results: SimulationResults) -> None:
    axes = _axes_by_title(build_figure("dashboard", results))
    (ax,) = [a for title, a in axes.items() if title.startswith("Where the mean")]
    labels = [label.get_text() for label in ax.get_yticklabels()]
    places = {part.place for part in results.breakdown}
    assert len(labels) == min(len(places), 10)


def test_failure_windows_are_shaded_on_every_time_axis_and_nowhere_else() -> None:
    document = plotted_scenario()
    server = document["topology_graph"]["nodes"]["servers"][0]
    server["failures"] = {
        "time_to_failure": {"mean": 4, "distribution": "deterministic"},
        "time_to_repair": {"mean": 1, "distribution": "deterministic"},
    }
    results = run_scenario(parse_scenario(document))
    windows = results.servers[server["id"]].failure_windows
    assert windows

    axes = _axes_by_title(build_figure("dashboard", results))
    for title, ax in axes.items():
        shaded = [p.get_gid() for p in ax.patches if (p.get_gid() or "").startswith("failure-")]
        timeless = title == "Latency distribution" or title.startswith("Where the mean")
        assert len(shaded) == (0 if timeless else len(windows)), title
    (single,) = build_figure("ram", results).axes
    assert len([p for p in single.patches if (p.get_gid() or "").startswith("failure-")]) == len(
        windows
    )


def test_the_throughput_chart_shows_every_outcome_and_the_attempts_per_second() -> None:
    scenario = (
        cpu_station(
            rate=20,
            cpu=exponential(0.06),
            horizon_s=20,
            endpoint="/api",
            dropout=0.05,
            max_ready_queue=2,
        )
        .timeout(0.2)
        .retry(3, base_s=0.01, cap_s=0.05)
        .build()
    )
    results = run_scenario(scenario, seed=3)
    (ax,) = build_figure("throughput", results).axes
    labels = {line.get_label() for line in ax.get_lines()}
    # One name per quantity: answers (late ones included), completed (the goodput).
    assert labels >= {"answers", "completed (goodput)", "timed out", "rejected", "dropped"}
    assert "attempts sent" in labels
    lossless = cpu_station(rate=10, cpu=0.001, horizon_s=20, endpoint="/api", dropout=0.0).build()
    (plain,) = build_figure("throughput", run_scenario(lossless, seed=3)).axes
    assert plain.get_lines()[0].get_label() == "answers"
    assert len(plain.get_lines()) == 2  # and the mean
