"""Closed workloads: a population of users, each with one request out at a time."""

from typing import Any

import numpy as np
import pytest

from asyncflow_backend.builder import ScenarioBuilder, exponential
from asyncflow_backend.runtime.runner import SimulationRunner, run_scenario
from asyncflow_backend.schemas import ScenarioValidationError, parse_scenario
from asyncflow_backend.schemas.limits import ScenarioLimits, check_limits, scheduled_events
from asyncflow_backend.schemas.warnings import find_warnings


def fleet(users: Any, think: Any = None, *, dropout: float = 0.0) -> ScenarioBuilder:
    return (
        ScenarioBuilder()
        .closed_users("gen", users, think_time=think if think is not None else exponential(1))
        .client("client")
        .server("srv")
        .endpoint("/api")
        .cpu(exponential(0.05))
        .chain("gen", "client", "srv", "client", latency=exponential(0.001), dropout=dropout)
        .settings(horizon=200, sample_period=0.1)
    )


def problems_of(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(ScenarioValidationError) as caught:
        parse_scenario(doc)
    return [str(p) for p in caught.value.problems]


def test_a_user_never_has_two_requests_out() -> None:
    runner = SimulationRunner(fleet(5, think=0.01).build(), seed=1)
    results = runner.run()
    requests = results.requests
    assert requests.generated == requests.completed + requests.in_flight
    assert 0 <= requests.in_flight <= 5
    closed = results.closed
    assert closed is not None
    assert closed.users_mean == 5
    assert closed.users_max == 5
    assert closed.think_time_mean_s == pytest.approx(0.01)
    assert closed.response_time_mean_s == pytest.approx(results.latency.mean)
    assert closed.throughput_rps == pytest.approx(requests.completed / 200)
    assert closed.cycle_time_s == pytest.approx(0.01 + (results.latency.mean or 0))
    assert closed.interactive_law_rps == pytest.approx(closed.throughput_rps, rel=0.01)
    # Near saturation: the server is busy almost all the time.
    assert results.servers["srv"].cpu_utilisation > 0.95


def test_a_dropped_request_ends_the_wait_like_an_answer() -> None:
    results = run_scenario(fleet(4, think=exponential(0.2), dropout=0.2).build(), seed=2)
    requests = results.requests
    assert requests.dropped > 100
    assert requests.generated == requests.completed + requests.dropped + requests.in_flight
    assert requests.in_flight <= 4


def test_the_population_follows_its_schedule() -> None:
    scenario = fleet([(0, 2), (60, 20), (120, 0)], think=exponential(1)).build()
    results = run_scenario(scenario, seed=3)
    per_second = np.asarray(results.throughput.per_second)
    low, high, none = per_second[5:60].mean(), per_second[65:120].mean(), per_second[130:]
    # About N / (R + Z) per second: 2 users, then 20 (the server takes at most 20/s).
    assert 1.2 < low < 2.5
    assert 8 < high < 20
    assert none.sum() == 0
    closed = results.closed
    assert closed is not None
    assert closed.users_mean == pytest.approx((2 * 60 + 20 * 60) / 200)
    assert closed.users_max == 20


def test_closed_fields_are_checked_at_their_paths() -> None:
    doc = fleet(3).to_dict()
    del doc["rqs_input"]["think_time"]
    assert problems_of(doc) == ["rqs_input.think_time: Field required (in 'gen')"]
    doc = fleet([(0, 3), (0, 5)]).to_dict()
    (problem,) = problems_of(doc)
    assert problem.startswith("rqs_input.users.points: the points' times must increase")
    doc = fleet(3).to_dict()
    doc["rqs_input"]["users"] = -1
    assert any(p.startswith("rqs_input.users:") for p in problems_of(doc))
    doc = fleet(3).to_dict()
    doc["rqs_input"]["arrival_rate"] = {"shape": "daily", "peak_rate_per_s": 1}
    (problem,) = problems_of(doc)
    assert "give exactly one workload" in problem


def test_limits_bound_a_closed_workload_by_users_over_the_fastest_cycle() -> None:
    scenario = fleet(100, think=exponential(0.5)).build()
    # Most users / (mean think time + three mean edge latencies).
    assert scenario.peak_arrival_rate == pytest.approx(100 / 0.503)
    (problem,) = check_limits(scenario, ScenarioLimits(max_expected_requests=10_000))
    assert problem.path == "rqs_input"
    events = scheduled_events(scenario)
    assert events.generator_windows == 0
    assert not find_warnings(scenario)


def test_an_open_workload_has_no_closed_block() -> None:
    scenario = fleet(1).to_dict()
    scenario["rqs_input"] = {"id": "gen", "arrival_rate": {"shape": "daily", "peak_rate_per_s": 1}}
    assert run_scenario(parse_scenario(scenario), seed=1).closed is None


def test_explicit_nulls_count_as_absent() -> None:
    doc = fleet(3).to_dict()
    doc["rqs_input"] |= {"users": None, "avg_active_users": None, "arrival_rate": None}
    assert problems_of(doc) == ["rqs_input.users: Field required (in 'gen')"]
    doc = fleet(3).to_dict()
    doc["rqs_input"] = {
        "id": "gen",
        "avg_active_users": {"mean": 20},
        "avg_request_per_minute_per_user": None,
        "users": None,
        "think_time": None,
    }
    assert problems_of(doc) == [
        "rqs_input.avg_request_per_minute_per_user: Field required (in 'gen')"
    ]


def test_a_client_timeout_ends_the_users_wait() -> None:
    # A server far slower than the users' patience: each wait ends at the timeout.
    scenario = (
        ScenarioBuilder()
        .closed_users("gen", 4, think_time=exponential(0.1))
        .timeout(0.05, on_timeout="cancel")
        .client("client")
        .server("srv")
        .endpoint("/slow")
        .io("io_wait", exponential(1.0))
        .chain("gen", "client", "srv", "client", latency=exponential(0.001), dropout=0.0)
        .settings(horizon=100, sample_period=0.1)
        .build()
    )
    results = run_scenario(scenario, seed=4)
    requests = results.requests
    # Each cycle is about 0.1 s of thought and at most 0.05 s of waiting: ~4 / 0.15 per second.
    assert requests.generated > 2000
    assert requests.timed_out > 0.9 * requests.generated
    assert requests.in_flight <= 4
