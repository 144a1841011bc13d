"""The retry-storm examples show what they claim: with aggressive retries the system stays
overloaded long after a 30-second slowdown (metastable), with a retry budget it recovers."""

from pathlib import Path

import numpy as np
import pytest

from asyncflow_backend.plots.overload import attempts_series, goodput_series, overload_figure
from asyncflow_backend.runtime.runner import run_scenario
from asyncflow_backend.schemas import load_scenario_file
from asyncflow_backend.schemas.results import SimulationResults

EXAMPLES = Path(__file__).parents[2] / "example"
ARRIVAL_RATE = 40.0
"""Requests per second of both examples."""


@pytest.fixture(scope="module")
def storm() -> SimulationResults:
    return run_scenario(load_scenario_file(EXAMPLES / "retry_storm.yml"), seed=4)


@pytest.fixture(scope="module")
def budgeted() -> SimulationResults:
    return run_scenario(load_scenario_file(EXAMPLES / "retry_storm_budget.yml"), seed=4)


def mean(series: np.ndarray, start: int, end: int) -> float:
    return float(series[start:end].mean())


def test_both_serve_everything_before_the_slowdown(
    storm: SimulationResults, budgeted: SimulationResults
) -> None:
    for results in (storm, budgeted):
        assert mean(goodput_series(results), 5, 60) == pytest.approx(ARRIVAL_RATE, rel=0.1)
        assert mean(attempts_series(results), 5, 60) == pytest.approx(ARRIVAL_RATE, rel=0.1)


def test_without_a_budget_the_overload_outlives_the_slowdown(storm: SimulationResults) -> None:
    goodput, attempts = goodput_series(storm), attempts_series(storm)
    # From 60 s to 90 s the server has half its cores; from 150 s to the end it has all of
    # them again, yet almost nothing completes in time: every request is tried five times
    # and the server works through attempts nobody waits for any more.
    assert mean(goodput, 150, 300) < 0.05 * ARRIVAL_RATE
    assert mean(attempts, 150, 300) > 4 * ARRIVAL_RATE
    assert storm.requests.late_answers > storm.requests.completed


def test_with_a_budget_the_system_recovers(budgeted: SimulationResults) -> None:
    goodput, attempts = goodput_series(budgeted), attempts_series(budgeted)
    assert mean(goodput, 150, 300) == pytest.approx(ARRIVAL_RATE, rel=0.1)
    # Retries are at most 10 % of first attempts, plus the 10 tokens the bucket starts with.
    requests = budgeted.requests
    assert requests.retries <= 10 + 0.1 * requests.generated
    assert mean(attempts, 60, 300) < 1.15 * ARRIVAL_RATE
    assert requests.retries_refused > 0


def test_the_storm_is_reported_as_a_metastable_failure(storm: SimulationResults) -> None:
    [verdict] = storm.recovery or []
    assert verdict.trigger == "api:capacity@60"
    assert (verdict.started_at_s, verdict.ended_at_s) == (60.0, 90.0)
    assert verdict.recovered is False
    assert verdict.judged_until_s == 300.0
    assert verdict.baseline_goodput_rps == pytest.approx(ARRIVAL_RATE, rel=0.1)
    assert verdict.note.startswith("metastable failure")


def test_with_a_budget_the_recovery_is_reported_with_its_time(budgeted: SimulationResults) -> None:
    [verdict] = budgeted.recovery or []
    assert verdict.recovered is True
    assert verdict.recovery_s is not None
    # The backlog of 30 s at 140 % drains at 23 % spare capacity: within a minute or so.
    assert 10 < verdict.recovery_s < 90
    goodput = goodput_series(budgeted)
    at = int(verdict.recovered_at_s or 0)
    assert mean(goodput, at, at + 10) >= 0.9 * (verdict.baseline_goodput_rps or 0)


def test_the_figure_draws_both_runs(storm: SimulationResults, budgeted: SimulationResults) -> None:
    figure = overload_figure([("storm", storm), ("budget", budgeted)], (60.0, 90.0))
    top, bottom = figure.axes
    assert [line.get_label() for line in top.patches if line.get_label() != "slowdown"][:2] == [
        "storm",
        "budget",
    ]
    assert len(bottom.patches) == 3
