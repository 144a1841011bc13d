"""The generator's arrivals keep pace with the simulated clock.

A generator that jumps its own counter to the next user window without letting
simulated time pass races ahead of the clock: at low rates its arrivals come
several times too fast, crowded into the start of the run. So the counts here
must match rate x horizon, over the whole run and over each half of it, within
3 standard deviations of the count.
"""

import math
from typing import Any

import numpy as np
import pytest

from asyncflow_backend.runtime.runner import run_scenario
from asyncflow_backend.schemas import Scenario, parse_scenario
from asyncflow_backend.schemas.results import SimulationResults
from support.documents import cpu, generator, server
from support.topologies import direct


def workload_scenario(
    users: dict[str, Any], rpm: float, window_s: int, horizon_s: float
) -> Scenario:
    """`users` users of `rpm` requests a minute, drawn every `window_s`, into one server
    of 1 ms of parsing over fixed 1 ms links."""
    settings = {"sample_period_s": 0.1, "enabled_sample_metrics": ["ready_queue_len"]}
    return parse_scenario(
        direct(
            generator(users, rpm=rpm, user_sampling_window=window_s),
            [server("srv", cpu(0.001, kind="initial_parsing"))],
            horizon_s=horizon_s,
            settings=settings,
        )
    )


def assert_count(observed: int, expected: float, variance: float, what: str) -> None:
    sd = math.sqrt(variance)
    assert abs(observed - expected) <= 3 * sd, (
        f"{what}: {observed} arrivals, expected {expected:g} +- {sd:.3g} (1 SD), "
        f"ratio {observed / expected:.3f}"
    )


def halves(results: SimulationResults) -> tuple[int, int]:
    """Completions in the first and the second half of the run."""
    per_second = np.asarray(results.throughput.per_second)
    middle = len(per_second) // 2
    return int(per_second[:middle].sum()), int(per_second[middle:].sum())


def test_one_user_at_one_request_per_minute_over_ten_hours() -> None:
    horizon = 36_000.0
    rate = 1 * 1 / 60
    results = run_scenario(
        workload_scenario({"mean": 1, "distribution": "deterministic"}, 1, 60, horizon), seed=17
    )

    expected = rate * horizon
    assert_count(results.requests.generated, expected, expected, "1 user x 1 rpm")
    for half in halves(results):
        assert_count(half, expected / 2, expected / 2, "1 user x 1 rpm, half of the run")
    # The sampler keeps the same clock: one reading per period up to the horizon.
    samples = len(results.time_series.series["ready_queue_len"]["srv"])
    assert abs(samples - horizon / 0.1) <= 1


def test_poisson_users_at_a_low_rate() -> None:
    """Users ~ Poisson(1) per 60 s window: a mixed Poisson count per window,
    with variance m r w + m (r w)^2 for m users of rate r over a window w."""
    horizon, window, rpm = 36_000.0, 60, 1.0
    results = run_scenario(
        workload_scenario({"mean": 1, "distribution": "poisson"}, rpm, window, horizon), seed=18
    )

    per_window = rpm / 60 * window
    windows = horizon / window
    expected = windows * per_window
    assert_count(
        results.requests.generated,
        expected,
        windows * (per_window + per_window**2),
        "Poisson(1) users x 1 rpm",
    )


@pytest.mark.parametrize("window_s", [1, 7, 60, 120])
def test_windows_that_do_not_divide_the_horizon(window_s: int) -> None:
    horizon, users, rpm = 1000.0, 10, 30.0
    results = run_scenario(
        workload_scenario({"mean": users, "distribution": "deterministic"}, rpm, window_s, horizon),
        seed=window_s,
    )

    expected = users * rpm / 60 * horizon
    assert_count(results.requests.generated, expected, expected, f"{window_s} s windows")
    first, second = halves(results)
    assert_count(first, expected / 2, expected / 2, "first half")
    assert_count(second, expected / 2, expected / 2, "second half")
