"""The throughput and latency-over-time charts show the load a schedule offered."""

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from asyncflow_backend.builder import exponential
from asyncflow_backend.plots import build_figure, render_plot
from asyncflow_backend.runtime.runner import run_scenario
from asyncflow_backend.schemas.results import SimulationResults
from support.scenarios import server_to_feed


@pytest.fixture(scope="module")
def ramp_run() -> SimulationResults:
    return run_scenario(
        server_to_feed(cpu_mean_s=0.002, horizon_s=120)
        .arrival_rate("gen", "ramp", [(0, 0), (120, 60)])
        .build(),
        seed=5,
    )


@pytest.fixture(scope="module")
def closed_run() -> SimulationResults:
    scenario = (
        server_to_feed(cpu_mean_s=0.002, horizon_s=120)
        .closed_users("gen", [(0, 2), (60, 8)], think_time=exponential(0.5))
        .build()
    )
    return run_scenario(scenario, seed=6)


def load_line(axes: list[Axes]) -> Line2D:
    (line,) = [ln for ax in axes for ln in ax.get_lines() if ln.get_gid() == "offered-load"]
    return line


def test_the_offered_rate_is_drawn_on_the_throughput_axis(ramp_run: SimulationResults) -> None:
    load = ramp_run.offered_load
    assert load is not None
    assert load.rate_per_s is not None
    assert load.rate_per_s[0] == pytest.approx(0.25)
    assert load.rate_per_s[-1] == pytest.approx(59.75)
    (ax,) = build_figure("throughput", ramp_run).axes
    line = load_line([ax])
    assert np.asarray(line.get_ydata())[60] == pytest.approx(30.25)
    assert "offered rate λ(t)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_a_population_gets_its_own_axis(closed_run: SimulationResults) -> None:
    load = closed_run.offered_load
    assert load is not None
    assert load.users == [2.0] * 60 + [8.0] * 60
    for chart in ("throughput", "latency_over_time"):
        axes = build_figure(chart, closed_run).axes
        assert len(axes) == 2
        assert axes[1].get_ylabel() == "users"
        assert max(load_line(axes).get_ydata()) == 8
        legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
        assert "users N(t)" in legend
    assert render_plot("dashboard", closed_run, fmt="png")[:4] == b"\x89PNG"


def test_users_per_window_draw_no_load_curve() -> None:
    results = run_scenario(
        server_to_feed(cpu_mean_s=0.002, horizon_s=120).generator("gen", users=5, rpm=60).build(),
        seed=7,
    )
    assert results.offered_load is None
    for chart in ("throughput", "latency_over_time"):
        axes = build_figure(chart, results).axes
        assert len(axes) == 1
        assert not [ln for ln in axes[0].get_lines() if ln.get_gid() == "offered-load"]
