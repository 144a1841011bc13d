"""Arrival-rate schedules against the non-homogeneous Poisson process they define.

For a Poisson process of rate λ(t), the counts in disjoint windows are
independent Poisson variables of mean Λ_k = ∫ λ over window k (e.g. Ross,
*Stochastic Processes*, 2nd ed., §2.4). So Σ (N_k - Λ_k)² / Λ_k is
approximately χ² with K degrees of freedom (Pearson's statistic), and within
a stretch of constant rate the counts' index of dispersion (n - 1) s² / x̄ is
χ² with n - 1 (Cox and Lewis, *The Statistical Analysis of Series of Events*,
§6.3). Both must be unremarkable at the 0.1% level, both ways: a generator
that re-drew its rate per window, or was too regular, fails them. The arrival
times are read exactly, at the generator's edge.
"""

from typing import Any

import numpy as np
import pytest
from queue_models import one_server
from scipy import stats

from asyncflow_backend.runtime.runner import SimulationRunner
from asyncflow_backend.schemas import Scenario
from asyncflow_backend.schemas.arrival_rate import DailyRate, PiecewiseRate
from support.documents import cpu

pytestmark = pytest.mark.statistical

SIGNIFICANCE = 0.001


class Recorder:
    """Stands in for the generator's edge: keeps the time of every arrival."""

    def __init__(self, runner: SimulationRunner) -> None:
        self.env = runner.model.env
        self.times: list[float] = []

    def send(self, request: Any) -> None:
        self.times.append(self.env.now)


def arrival_times(schedule: dict[str, Any], horizon_s: float, seed: int) -> np.ndarray:
    scenario = scenario_with(schedule, horizon_s)
    runner = SimulationRunner(scenario, seed=seed)
    generator: Any = runner.model.nodes["gen"]
    recorder = Recorder(runner)
    generator.out_edge = recorder
    runner.run()
    return np.asarray(recorder.times)


def scenario_with(schedule: dict[str, Any], horizon_s: float) -> Scenario:
    return one_server(
        0,
        [cpu(0.0001)],
        horizon_s=horizon_s,
        resources={},
        metrics=[],
        workload={"id": "gen", "arrival_rate": schedule},
    )


def expected_counts(schedule: PiecewiseRate | DailyRate, edges: np.ndarray) -> np.ndarray:
    cumulative = np.array([schedule.integral(t) for t in edges])
    return np.diff(cumulative)


def pearson(counts: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    """Pearson's statistic and its two-sided p-value against χ²(K)."""
    statistic = float(((counts - expected) ** 2 / expected).sum())
    k = counts.size
    p = 2 * min(stats.chi2.sf(statistic, k), stats.chi2.cdf(statistic, k))
    return statistic, float(p)


def assert_poisson_counts(schedule: dict[str, Any], horizon_s: float, window_s: float, seed: int):
    times = arrival_times(schedule, horizon_s, seed)
    model = scenario_with(schedule, horizon_s).rqs_input.arrival_rate
    assert model is not None
    edges = np.arange(0, horizon_s + window_s / 2, window_s)
    counts, _ = np.histogram(times, bins=edges)
    expected = expected_counts(model, edges)
    statistic, p = pearson(counts, expected)
    total, mean = counts.sum(), expected.sum()
    report = (
        f"{schedule['shape']}: {total} arrivals, expected {mean:.1f}; Pearson "
        f"{statistic:.1f} on {counts.size} windows, p = {p:.3f}"
    )
    print(report)
    assert abs(total - mean) <= 3 * np.sqrt(mean), report
    assert p > SIGNIFICANCE, report


def test_a_daily_sine_gives_poisson_counts_of_its_integral_per_window() -> None:
    schedule = {
        "shape": "daily",
        "period_s": 600,
        "peak_rate_per_s": 40,
        "trough_rate_per_s": 2,
        "peak_at_s": 100,
    }
    assert_poisson_counts(schedule, 1800, 10, seed=1301)


def test_a_ramp_gives_poisson_counts_of_its_integral_per_window() -> None:
    schedule = {
        "shape": "ramp",
        "points": [
            {"at_s": 0, "rate_per_s": 0},
            {"at_s": 600, "rate_per_s": 60},
            {"at_s": 900, "rate_per_s": 5},
        ],
    }
    assert_poisson_counts(schedule, 1200, 10, seed=1302)


def test_a_trace_gives_poisson_counts_of_its_integral_per_window() -> None:
    rates = [3, 9, 30, 12, 0, 25, 7, 18]
    schedule = {
        "shape": "trace",
        "interpolation": "linear",
        "points": [{"at_s": 150 * i, "rate_per_s": r} for i, r in enumerate(rates)],
    }
    assert_poisson_counts(schedule, 1200, 10, seed=1303)


def test_steps_have_the_dispersion_of_a_poisson_process() -> None:
    schedule = {
        "shape": "steps",
        "points": [{"at_s": 0, "rate_per_s": 5}, {"at_s": 600, "rate_per_s": 50}],
    }
    times = arrival_times(schedule, 1200, seed=1304)
    for start, rate in ((0, 5), (600, 50)):
        counts, _ = np.histogram(times, bins=np.arange(start, start + 601, 1.0))
        n = counts.size
        index = (n - 1) * counts.var(ddof=1) / counts.mean()
        p = 2 * min(stats.chi2.sf(index, n - 1), stats.chi2.cdf(index, n - 1))
        report = (
            f"rate {rate}/s: mean {counts.mean():.3f} per second, variance "
            f"{counts.var(ddof=1):.3f}, dispersion statistic {index:.1f} on {n - 1} df, p = {p:.3f}"
        )
        print(report)
        assert counts.mean() == pytest.approx(rate, abs=3 * np.sqrt(rate / n)), report
        assert p > SIGNIFICANCE, report
