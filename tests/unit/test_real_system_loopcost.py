"""CPU per request against loop wake-ups per request: the two costs of an event loop."""

import numpy as np
import pytest

from benchmarks.real_system.loopcost import fit_wakeup_cost


def test_the_fit_recovers_the_cost_per_request_and_per_wakeup() -> None:
    # c = 4 ms + 0.3 ms x w, with w falling from 2 wake-ups per request (idle loop) to 0.1.
    wakeups = np.array([2.0, 1.5, 0.9, 0.5, 0.2, 0.1])
    noise = np.random.default_rng(4).normal(0, 1e-6, size=wakeups.size)
    cpu = 0.004 + 0.0003 * wakeups + noise

    cost = fit_wakeup_cost(list(cpu), list(wakeups))

    assert cost.per_request_s == pytest.approx(0.004, abs=5e-6)
    assert cost.per_wakeup_s == pytest.approx(0.0003, abs=5e-6)
    assert cost.r_squared > 0.99
    assert cost.runs == 6
    assert cost.describe().startswith("CPU per request = 4.000 ms +0.300 ms x wake-ups")


def test_the_fit_needs_three_runs_that_differ_in_wakeups() -> None:
    with pytest.raises(ValueError, match="fewer than three"):
        fit_wakeup_cost([0.004, 0.005], [1.0, 2.0])
    with pytest.raises(ValueError, match="undetermined"):
        fit_wakeup_cost([0.004, 0.005, 0.006], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="one CPU figure per run"):
        fit_wakeup_cost([0.004, 0.005, 0.006], [1.0, 2.0])
