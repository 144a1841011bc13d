"""The runner: reproducible by seed, indifferent to slicing, cancellable, reporting progress."""

import itertools
import time
from typing import Any

import pytest

from asyncflow_backend.builder import log_normal, normal
from asyncflow_backend.runtime.runner import (
    RunProgress,
    SimulationCancelled,
    SimulationRunner,
    run_scenario,
)
from asyncflow_backend.schemas import Scenario, parse_scenario
from support.documents import (
    balancer,
    cpu,
    edge,
    endpoint,
    exponential,
    generator,
    io,
    outage,
    ram,
    scenario_document,
    server,
    spike,
)

HORIZON_S = 60


LINK = exponential(0.003)


def busy_scenario(**extra: Any) -> Scenario:
    """Every random part of the engine at once: random users, latencies, drops, endpoints,
    step durations, RAM waits, a least-connection balancer, a spike and an outage."""
    work, wait = cpu(exponential(0.004)), io(log_normal(0.02, 1e-4))
    endpoints = [
        endpoint("/read", work, ram(200), wait, probability=0.7),
        endpoint("/write", work, wait, work, probability=0.3),
    ]
    servers = ("srv-1", "srv-2")
    edges = [
        edge("gen", "client", latency=LINK, dropout=0.0),
        edge("client", "lb", latency=LINK, dropout=0.02),
        *[edge("lb", s, latency=LINK, dropout=None) for s in servers],
        *[edge(s, "client", latency=LINK, dropout=None) for s in servers],
    ]
    workload = generator(normal(40, 25), rpm=90, user_sampling_window=10)
    return parse_scenario(
        scenario_document(
            workload,
            [server(s, endpoints=endpoints, cpu_cores=2, ram_mb=1024) for s in servers],
            edges,
            horizon_s=HORIZON_S,
            load_balancer=balancer(*servers, algorithm="least_connection"),
            settings={"sample_period_s": 0.05},
            events=[
                spike("spike", "client-lb", start=10, end=25, spike_s=0.01),
                outage("outage", "srv-2", start=30, end=45),
            ],
            **extra,
        )
    )


def document(runner: SimulationRunner, slices: int = 200) -> dict[str, Any]:
    """The results document without its wall time, the one field that measures the machine."""
    dumped = runner.run(slices=slices).model_dump()
    del dumped["meta"]["wall_seconds"]
    return dumped


def test_same_seed_gives_the_same_document() -> None:
    scenario = busy_scenario()
    first = document(SimulationRunner(scenario, seed=42))
    second = document(SimulationRunner(scenario, seed=42))

    assert first["requests"]["completed"] > 1000
    assert first["requests"]["dropped"] > 0
    assert first == second


def test_different_seeds_give_different_runs() -> None:
    scenario = busy_scenario()
    assert document(SimulationRunner(scenario, seed=1)) != document(
        SimulationRunner(scenario, seed=2)
    )


def test_slicing_does_not_change_the_results() -> None:
    scenario = busy_scenario()
    whole, sliced, odd = (
        document(SimulationRunner(scenario, seed=7), slices=n) for n in (1, 200, 7)
    )
    assert whole == sliced == odd


def test_progress_rises_monotonically_to_one() -> None:
    seen: list[RunProgress] = []
    SimulationRunner(busy_scenario(), seed=3).run(on_progress=seen.append, slices=50)

    fractions = [p.fraction for p in seen]
    assert len(fractions) == 50
    assert all(a < b for a, b in itertools.pairwise(fractions))
    assert fractions[-1] == 1.0
    assert seen[-1].simulated_s == pytest.approx(HORIZON_S)
    assert all(p.horizon_s == HORIZON_S for p in seen)


def test_the_callback_cancels_the_run() -> None:
    calls: list[float] = []

    def stop_past_a_third(progress: RunProgress) -> bool:
        calls.append(progress.fraction)
        return progress.fraction >= 1 / 3

    runner = SimulationRunner(busy_scenario(), seed=3)
    with pytest.raises(SimulationCancelled) as cancelled:
        runner.run(on_progress=stop_past_a_third, slices=30)

    assert cancelled.value.progress.fraction == pytest.approx(10 / 30)
    assert calls[-1] == pytest.approx(10 / 30)
    assert len(calls) == 10
    # The simulation stopped where it was cancelled.
    assert runner.model.env.now == pytest.approx(HORIZON_S / 3)


def test_a_callback_returning_nothing_lets_the_run_finish() -> None:
    results = SimulationRunner(busy_scenario(), seed=3).run(on_progress=lambda _: None)
    assert results.meta.simulated_seconds == HORIZON_S


def test_wall_seconds_leave_out_the_time_spent_in_the_callback() -> None:
    def slow_report(_: RunProgress) -> bool:
        time.sleep(0.05)
        return False

    started = time.perf_counter()
    results = SimulationRunner(busy_scenario(), seed=3).run(on_progress=slow_report, slices=10)
    elapsed = time.perf_counter() - started

    assert elapsed >= 0.5
    assert 0 < results.meta.wall_seconds < elapsed - 0.45


def test_an_unseeded_run_reports_a_seed_that_replays_it() -> None:
    scenario = busy_scenario()
    assert scenario.seed is None
    runner = SimulationRunner(scenario)
    original = document(runner)

    assert original["meta"]["seed"] == runner.seed
    assert document(SimulationRunner(scenario, seed=runner.seed)) == original


def test_the_seed_comes_from_the_argument_then_the_scenario() -> None:
    scenario = busy_scenario(seed=123)

    assert SimulationRunner(scenario).seed == 123
    assert SimulationRunner(scenario, seed=9).seed == 9
    assert document(SimulationRunner(scenario)) == document(
        SimulationRunner(busy_scenario(), seed=123)
    )


def test_run_scenario_is_the_runner_in_one_call() -> None:
    scenario = busy_scenario()
    results = run_scenario(scenario, seed=5).model_dump()
    del results["meta"]["wall_seconds"]
    assert results == document(SimulationRunner(scenario, seed=5))
