"""CPU per request against loop wake-ups per request: the two costs of an event loop."""

import numpy as np
import pytest

from benchmarks.real_system.loopcost import (
    WakeupCost,
    bursts_per_visit,
    event_loop_costs,
    fit_wakeup_cost,
)


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
    with pytest.raises(ValueError, match="fewer than 3"):
        fit_wakeup_cost([0.004, 0.005], [1.0, 2.0])
    with pytest.raises(ValueError, match="undetermined"):
        fit_wakeup_cost([0.004, 0.005, 0.006], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="one CPU figure per run"):
        fit_wakeup_cost([0.004, 0.005, 0.006], [1.0, 2.0])


def test_two_runs_at_two_loads_give_the_line_through_them_when_allowed() -> None:
    cost = fit_wakeup_cost([0.0046, 0.0042], [2.0, 0.4], min_runs=2)

    assert cost.per_wakeup_s == pytest.approx(0.00025)
    assert cost.per_request_s == pytest.approx(0.0041)


def test_bursts_per_visit_count_cpu_runs_and_weigh_cache_branches() -> None:
    cpu = {"kind": "cpu_bound_operation"}
    parse = {"kind": "initial_parsing"}
    sleep = {"kind": "io_wait"}
    # parse + cpu are one burst; the cpu after the sleep a second.
    assert bursts_per_visit([parse, cpu, sleep, cpu]) == 2.0
    assert bursts_per_visit([sleep, sleep]) == 0.0
    # A miss (30 %) runs a burst after its I/O; a hit keeps the core it has.
    cache = {"kind": "cache", "hit_ratio": 0.7, "hit": [cpu], "miss": [sleep, cpu]}
    assert bursts_per_visit([parse, cache]) == pytest.approx(1.3)
    # After a cache whose miss gave the core back, a CPU step is a new burst 30 % of the time.
    assert bursts_per_visit([parse, cache, cpu]) == pytest.approx(1.3)
    cache_io = {"kind": "cache", "hit_ratio": 0.7, "hit": [], "miss": [sleep]}
    assert bursts_per_visit([parse, cache_io, cpu]) == pytest.approx(1.3)


def test_one_load_takes_the_whole_overhead_as_paid_per_wakeup() -> None:
    costs, note = event_loop_costs(0.0006, 2.0, 1.0)

    assert costs == {"per_wakeup_s": pytest.approx(0.0006), "per_callback_s": 0.0}
    assert "one load" in note


def test_a_fit_over_two_loads_splits_the_overhead_exactly() -> None:
    # Real: c = 4.15 ms + 0.225 ms x w; at the calibration load w = 2 wake-ups per visit, so
    # the overhead beyond 4 ms of bursts is 0.6 ms: 0.45 ms per wake-up, 0.15 ms per request.
    fit = WakeupCost(per_request_s=0.00415, per_wakeup_s=0.000225, r_squared=0.99, runs=6)

    costs, note = event_loop_costs(0.0006, 2.0, 2.0, fit)

    # Over two bursts per visit, each opening an iteration at a low load.
    assert costs["per_wakeup_s"] == pytest.approx(0.000225)
    assert costs["per_callback_s"] == pytest.approx(0.000075)
    assert 2.0 * (costs["per_wakeup_s"] + costs["per_callback_s"]) == pytest.approx(0.0006)
    assert "split by" in note


def test_a_fit_outside_the_overhead_is_held_to_it() -> None:
    steep = WakeupCost(per_request_s=0.0, per_wakeup_s=0.01, r_squared=0.5, runs=6)
    falling = WakeupCost(per_request_s=0.0, per_wakeup_s=-0.001, r_squared=0.5, runs=6)

    assert event_loop_costs(0.0006, 2.0, 1.0, steep)[0] == {
        "per_wakeup_s": pytest.approx(0.0006),
        "per_callback_s": 0.0,
    }
    assert event_loop_costs(0.0006, 2.0, 1.0, falling)[0] == {
        "per_wakeup_s": 0.0,
        "per_callback_s": pytest.approx(0.0006),
    }
    with pytest.raises(ValueError, match="no callback"):
        event_loop_costs(0.0006, 2.0, 0.0)
