"""A token-bucket rate limit on the balancer and a circuit breaker on call steps: the schema,
the policies on scripted inputs, and what a run does with them."""

from typing import Any

import pytest

from asyncflow_backend.builder import ScenarioBuilder, deterministic
from asyncflow_backend.runtime.actors.load_balancer import LoadBalancerRuntime, RateLimitedBalancer
from asyncflow_backend.runtime.policies.circuit_breaker import Breaker, BreakerState
from asyncflow_backend.runtime.policies.rate_limit import TokenBucketLimiter
from asyncflow_backend.runtime.runner import SimulationRunner, run_scenario
from asyncflow_backend.schemas import ScenarioValidationError, parse_scenario
from asyncflow_backend.schemas.resilience import CircuitBreaker, RateLimit
from support.scenarios import api_calling_db

CALL = "topology_graph.nodes.servers[0].endpoints[0].steps[1]"


def balanced(users: int, **limit: Any) -> ScenarioBuilder:
    """`users` requests/s (Poisson) through a balancer over two fast servers."""
    return (
        ScenarioBuilder()
        .generator("gen", users=deterministic(users), rpm=60)
        .client("client")
        .load_balancer("lb", covers=["a", "b"], **limit)
        .server("a", cores=4)
        .endpoint("/x")
        .cpu(0.001)
        .server("b", cores=4)
        .endpoint("/x")
        .cpu(0.001)
        .edge("gen", "client", latency=deterministic(0.001), dropout=0.0)
        .edge("client", "lb", latency=deterministic(0.001), dropout=0.0)
        .edge("lb", "a", latency=deterministic(0.001), dropout=0.0)
        .edge("lb", "b", latency=deterministic(0.001), dropout=0.0)
        .edge("a", "client", latency=deterministic(0.001), dropout=0.0)
        .edge("b", "client", latency=deterministic(0.001), dropout=0.0)
    )


def problems(document: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ScenarioValidationError) as caught:
        parse_scenario(document)
    return {p.path: p.message for p in caught.value.problems}


# Schema.


def test_a_bad_rate_limit_or_breaker_is_refused_at_its_field() -> None:
    document = balanced(10).to_dict()
    document["topology_graph"]["nodes"]["load_balancer"]["rate_limit"] = {"rate_per_s": 0}
    found = problems(document)
    assert "greater than 0" in found["topology_graph.nodes.load_balancer.rate_limit.rate_per_s"]
    assert "Field required" in found["topology_graph.nodes.load_balancer.rate_limit.burst"]

    document = api_calling_db(circuit_breaker={"failure_rate_threshold": 120}).to_dict()
    found = problems(document)
    assert "less than or equal to 100" in found[f"{CALL}.circuit_breaker.failure_rate_threshold"]

    document = api_calling_db(
        circuit_breaker={"sliding_window_size": 5, "minimum_number_of_calls": 10}
    ).to_dict()
    assert (
        "cannot exceed a count_based sliding_window_size (5)"
        in problems(document)[f"{CALL}.circuit_breaker"]
    )


def test_the_breaker_has_resilience4j_defaults() -> None:
    spec = CircuitBreaker()
    assert (
        spec.failure_rate_threshold,
        spec.sliding_window_type,
        spec.sliding_window_size,
        spec.minimum_number_of_calls,
        spec.wait_duration_in_open_state,
        spec.permitted_number_of_calls_in_half_open_state,
    ) == (50.0, "count_based", 100, 100, 60.0, 10)


# The token bucket.


def test_the_bucket_lets_a_burst_through_then_its_rate() -> None:
    limiter = TokenBucketLimiter(RateLimit(rate_per_s=2, burst=5))
    # Ten at once: the five tokens of the full bucket.
    assert [limiter.admits(0.0) for _ in range(10)] == [True] * 5 + [False] * 5
    # Half a second later, one token has flowed in; a second later, two.
    assert [limiter.admits(0.5) for _ in range(3)] == [True, False, False]
    assert [limiter.admits(1.5) for _ in range(3)] == [True, True, False]
    # Idle for ten seconds: the bucket holds no more than its burst.
    assert sum(limiter.admits(11.5) for _ in range(10)) == 5


def test_without_a_limit_the_plain_balancer_is_built() -> None:
    runner = SimulationRunner(balanced(10).settings(horizon=5).build(), seed=1)
    assert type(runner.model.nodes["lb"]) is LoadBalancerRuntime


@pytest.mark.parametrize(("users", "rate"), [(50, 20.0), (10, 20.0)])
def test_the_balancer_lets_through_the_smaller_of_the_arrival_rate_and_its_own(
    users: int, rate: float
) -> None:
    horizon = 400
    scenario = balanced(users, rate_per_s=rate, burst=10).settings(horizon=horizon).build()
    runner = SimulationRunner(scenario, seed=7)
    assert isinstance(runner.model.nodes["lb"], RateLimitedBalancer)
    requests = runner.run().requests
    admitted = requests.completed + requests.in_flight
    # Poisson arrivals: the admitted count of an unlimited stream has sd sqrt(lambda t);
    # the limited one is within burst of rate x t.
    expected = min(users, rate) * horizon
    assert admitted == pytest.approx(expected, abs=4 * (users * horizon) ** 0.5 + 10)
    assert admitted <= rate * horizon + 10
    assert requests.rejected == requests.rejected_at.get("lb", 0)
    if users > rate:
        assert {
            (e.outcome, e.place, e.reason) for e in requests.ends if e.outcome == "rejected"
        } == {("rejected", "lb", "rate_limited")}
    else:
        # Below its rate the bucket seldom empties: a burst of more than 10 in 0.5 s.
        assert requests.rejected < 0.01 * requests.generated


# The breaker on scripted calls.


def breaker(**fields: Any) -> Breaker:
    return Breaker(CircuitBreaker(**fields))


def test_the_breaker_opens_at_the_threshold_once_it_has_its_minimum_of_calls() -> None:
    b = breaker(sliding_window_size=4, minimum_number_of_calls=4, wait_duration_in_open_state=10)
    for t, failed in enumerate([True, True, False]):
        generation = b.permits(float(t))
        assert generation == 0
        b.record(generation, failed, float(t))
    assert b.state is BreakerState.CLOSED  # two of three failed, but fewer than 4 calls
    b.record(0, False, 3.0)
    # [T, T, F, F]: 50 %, the threshold (resilience4j opens at or above it).
    assert b.state is BreakerState.OPEN
    assert b.opened == 1


def test_below_the_threshold_it_stays_closed() -> None:
    b = breaker(sliding_window_size=4, minimum_number_of_calls=4)
    for t, failed in enumerate([True, False, False, False, True]):
        b.record(0, failed, float(t))
        assert b.state is BreakerState.CLOSED  # at most 1 failure in the last 4: 25 %
    b.record(0, True, 5.0)  # [F, F, T, T]
    assert b.state is BreakerState.OPEN


def test_the_window_slides_over_the_last_calls() -> None:
    b = breaker(sliding_window_size=3, minimum_number_of_calls=3, failure_rate_threshold=60)
    for t, failed in enumerate([True, False, False, False, True, False]):
        b.record(0, failed, float(t))
        assert b.state is BreakerState.CLOSED  # never 2 failures among the last 3
    b.record(0, True, 6.0)  # [F, T, T]
    assert b.state is BreakerState.OPEN


def test_open_refuses_then_half_open_lets_trials_through_and_closes_on_success() -> None:
    b = breaker(
        sliding_window_size=2,
        minimum_number_of_calls=2,
        wait_duration_in_open_state=5,
        permitted_number_of_calls_in_half_open_state=2,
    )
    b.record(0, True, 0.0)
    b.record(0, True, 1.0)
    assert b.state is BreakerState.OPEN
    assert b.permits(1.0) is None
    assert b.permits(5.99) is None
    assert b.refused == 2
    # At 6 s the wait is over: the next call finds it half-open; two trials pass.
    first, second = b.permits(6.0), b.permits(6.1)
    assert b.state is BreakerState.HALF_OPEN
    assert first == second == 2
    assert b.permits(6.2) is None
    # A call from before it opened ends now: it is not the trials'.
    b.record(0, True, 6.3)
    b.record(2, False, 6.4)
    assert b.state is BreakerState.HALF_OPEN
    b.record(2, False, 6.5)
    assert b.state is BreakerState.CLOSED
    # Closed again with an empty window: one failure is not enough to open it.
    b.record(b.permits(7.0) or 0, True, 7.0)
    assert b.state is BreakerState.CLOSED


def test_a_failed_trial_opens_it_again() -> None:
    b = breaker(
        sliding_window_size=1,
        minimum_number_of_calls=1,
        wait_duration_in_open_state=1,
        permitted_number_of_calls_in_half_open_state=2,
    )
    b.record(0, True, 0.0)
    trials = [b.permits(1.0), b.permits(1.0)]
    b.record(2, False, 1.1)
    b.record(2, True, 1.2)  # one of two trials failed: 50 %, the threshold
    assert trials == [2, 2]
    assert b.state is BreakerState.OPEN
    assert b.opened == 2
    assert b.permits(2.19) is None
    assert b.permits(2.2) == 4  # open at 1.2 for 1 s


def test_a_time_based_window_holds_the_last_seconds() -> None:
    b = breaker(
        sliding_window_type="time_based",
        sliding_window_size=10,
        minimum_number_of_calls=3,
        failure_rate_threshold=50,
    )
    b.record(0, True, 0.0)
    b.record(0, True, 1.0)
    b.record(0, False, 11.5)  # the first two are out of the window: 1 call
    b.record(0, False, 12.0)
    assert b.state is BreakerState.CLOSED
    b.record(0, True, 12.5)  # [F, F, T]: 33 %
    assert b.state is BreakerState.CLOSED
    b.record(0, True, 13.0)  # [F, F, T, T]: 50 %
    assert b.state is BreakerState.OPEN


# The breaker in a run.


def test_calls_to_a_dead_backend_are_cut_to_the_trials() -> None:
    # Every call is lost: 5 calls open the breaker; then, every 1 s open, 2 trial calls
    # fail and open it again. Each opening after the first sends exactly 2 calls.
    fields = {
        "sliding_window_size": 10,
        "minimum_number_of_calls": 5,
        "wait_duration_in_open_state": 1.0,
        "permitted_number_of_calls_in_half_open_state": 2,
    }
    results = run_scenario(api_calling_db(call_dropout=1.0, circuit_breaker=fields).build(), seed=3)
    call = results.calls["api:/api#1->db"]
    requests = results.requests
    assert call.sent == call.failed == 5 + 2 * (call.circuit_opened - 1)
    assert 25 <= call.circuit_opened <= 30  # about one opening per second of the run
    assert call.circuit_refused == requests.generated - requests.in_flight - call.sent
    ends = {(e.place, e.reason): e.count for e in requests.ends}
    assert ends == {
        ("api-db", "call_dropped"): call.sent,
        ("api:/api#1", "circuit_open"): call.circuit_refused,
    }


def test_a_healthy_backend_never_opens_the_breaker() -> None:
    fields = {"sliding_window_size": 5, "minimum_number_of_calls": 5}
    results = run_scenario(api_calling_db(circuit_breaker=fields).build(), seed=3)
    call = results.calls["api:/api#1->db"]
    assert call.circuit_opened == call.circuit_refused == 0
    assert results.requests.failed == 0


def test_a_breaker_and_retries_together() -> None:
    # A flaky backend (30 % lost): retries hide most losses from the breaker.
    document = api_calling_db(
        call_dropout=0.3, circuit_breaker={"sliding_window_size": 20, "minimum_number_of_calls": 20}
    ).to_dict()
    steps = document["topology_graph"]["nodes"]["servers"][0]["endpoints"][0]["steps"]
    steps[1]["retry"] = {"max_attempts": 4, "backoff": {"base_s": 0.001, "cap_s": 0.01}}
    results = run_scenario(parse_scenario(document), seed=3)
    call = results.calls["api:/api#1->db"]
    assert call.retries > 0.3 * (call.sent - call.retries)
    assert call.circuit_opened == 0
    assert results.requests.failed < 0.01 * results.requests.generated + 1
