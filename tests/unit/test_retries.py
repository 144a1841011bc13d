"""Retries: the schema, the backoff and the budget, and what the client and call steps do."""

from typing import Any

import pytest

from asyncflow_backend.builder import ScenarioBuilder, deterministic, retry_policy
from asyncflow_backend.config.constants import Outcome
from asyncflow_backend.runtime.actors.client import ClientRuntime
from asyncflow_backend.runtime.actors.retrying_client import RetryingClient
from asyncflow_backend.runtime.policies.retry import RetryPolicy, TokenBucket, backoff_delays
from asyncflow_backend.runtime.runner import SimulationRunner, run_scenario
from asyncflow_backend.schemas import ScenarioValidationError, parse_scenario
from asyncflow_backend.schemas.limits import events_per_request
from asyncflow_backend.schemas.retries import Backoff, Retry, RetryBudget
from asyncflow_backend.schemas.warnings import find_warnings
from support.scenarios import api_calling_db

STEP = "topology_graph.nodes.servers[0].endpoints[0].steps[1]"


def lossy(dropout: float, retry: dict[str, Any] | None, cpu_s: float = 0.001) -> ScenarioBuilder:
    """10 requests/s, exactly, into one server over an edge losing `dropout` of them."""
    builder = ScenarioBuilder().generator("gen", users=deterministic(10), rpm=60)
    if retry is not None:
        builder.retry(**retry)
    return (
        builder.client("client")
        .server("srv")
        .endpoint("/api")
        .cpu(cpu_s)
        .edge("gen", "client", latency=deterministic(0.001), dropout=0.0)
        .edge("client", "srv", latency=deterministic(0.001), dropout=dropout)
        .edge("srv", "client", latency=deterministic(0.001), dropout=0.0)
        .settings(horizon=30)
    )


def problems(document: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ScenarioValidationError) as caught:
        parse_scenario(document)
    return {p.path: p.message for p in caught.value.problems}


# The schema.


def test_a_policy_is_defaulted_but_its_attempts() -> None:
    policy = Retry(max_attempts=3)
    assert policy.retry_on == ["timed_out", "rejected", "dropped", "failed"]
    assert (policy.backoff.base_s, policy.backoff.cap_s, policy.backoff.jitter) == (
        0.1,
        10.0,
        "full",
    )
    assert policy.budget is None


@pytest.mark.parametrize(
    ("retry", "path", "words"),
    [
        ({"max_attempts": 1}, "rqs_input.retry.max_attempts", "greater than or equal to 2"),
        ({"max_attempts": 101}, "rqs_input.retry.max_attempts", "less than or equal to 100"),
        (
            {"max_attempts": 3, "backoff": {"base_s": 2, "cap_s": 1}},
            "rqs_input.retry.backoff",
            "cap_s (1 s) must be at least base_s (2 s)",
        ),
        (
            {"max_attempts": 3, "retry_on": ["dropped", "dropped"]},
            "rqs_input.retry.retry_on",
            "more than once",
        ),
        ({"max_attempts": 3, "retry_on": []}, "rqs_input.retry.retry_on", "at least 1"),
        ({"max_attempts": 3, "retry_on": ["completed"]}, "rqs_input.retry.retry_on[0]", "'failed'"),
        (
            {"max_attempts": 3, "budget": {"ratio": 1.5}},
            "rqs_input.retry.budget.ratio",
            "less than or equal to 1",
        ),
        (
            {"max_attempts": 3, "budget": {"ratio": 0.1, "max_tokens": 0}},
            "rqs_input.retry.budget.max_tokens",
            "greater than or equal to 1",
        ),
    ],
)
def test_a_bad_policy_is_refused_at_its_field(retry: dict[str, Any], path: str, words: str) -> None:
    document = lossy(0.0, None).to_dict()
    document["rqs_input"]["retry"] = retry
    found = problems(document)
    assert path in found, found
    assert words in found[path]


def test_only_a_call_step_retries() -> None:
    document = lossy(0.0, None).to_dict()
    steps = document["topology_graph"]["nodes"]["servers"][0]["endpoints"][0]["steps"]
    steps[0]["retry"] = {"max_attempts": 2}
    found = problems(document)
    path = STEP.replace("steps[1]", "steps[0]")
    assert "only a call step has retry" in found[f"{path}.retry"]


def test_the_builder_writes_the_policy() -> None:
    policy = retry_policy(
        4,
        retry_on=["timed_out"],
        base_s=0.2,
        cap_s=3,
        jitter="equal",
        budget_ratio=0.2,
        budget_tokens=5,
    )
    assert policy == {
        "max_attempts": 4,
        "retry_on": ["timed_out"],
        "backoff": {"base_s": 0.2, "cap_s": 3, "jitter": "equal"},
        "budget": {"ratio": 0.2, "max_tokens": 5},
    }
    assert Retry.model_validate(policy).budget == RetryBudget(ratio=0.2, max_tokens=5)


def test_retrying_timeouts_without_a_timeout_is_warned_about() -> None:
    silent = lossy(0.0, {"max_attempts": 2, "retry_on": ["dropped"]}).build()
    assert not [w for w in find_warnings(silent) if w.path.startswith("rqs_input")]
    warned = {w.path: w.message for w in find_warnings(lossy(0.0, {"max_attempts": 2}).build())}
    assert "has no timeout_s" in warned["rqs_input.retry.retry_on"]
    timed = lossy(0.0, {"max_attempts": 2}).timeout(1.0).build()
    assert not [w for w in find_warnings(timed) if w.path.startswith("rqs_input")]


# The backoff and the budget.


def test_the_backoff_doubles_up_to_its_cap() -> None:
    assert backoff_delays(Backoff(base_s=0.1, cap_s=1.0)) == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.0]
    )
    fixed = RetryPolicy(
        Retry(max_attempts=10, backoff=Backoff(base_s=0.1, cap_s=1.0, jitter="none")),
        lambda: 0.5,
    )
    assert [fixed.delay(n) for n in range(1, 8)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    )
    full = RetryPolicy(Retry(max_attempts=10, backoff=Backoff(base_s=0.1, cap_s=1.0)), lambda: 0.5)
    assert [full.delay(n) for n in (1, 3, 6)] == pytest.approx([0.05, 0.2, 0.5])
    equal = RetryPolicy(
        Retry(max_attempts=10, backoff=Backoff(base_s=0.1, cap_s=1.0, jitter="equal")),
        lambda: 0.5,
    )
    assert [equal.delay(n) for n in (1, 3, 6)] == pytest.approx([0.075, 0.3, 0.75])


def test_the_policy_retries_what_it_names_up_to_its_attempts() -> None:
    policy = RetryPolicy(Retry(max_attempts=3, retry_on=["rejected"]), lambda: 1.0)
    assert policy.after_attempt(1, Outcome.REJECTED) == pytest.approx(0.1)
    assert policy.after_attempt(2, Outcome.REJECTED) == pytest.approx(0.2)
    assert policy.after_attempt(3, Outcome.REJECTED) is None
    assert policy.after_attempt(1, Outcome.DROPPED) is None
    assert policy.retries == 2


def test_the_bucket_starts_full_and_earns_a_ratio_per_first_attempt() -> None:
    bucket = TokenBucket(RetryBudget(ratio=0.1, max_tokens=2))
    assert [bucket.withdraw() for _ in range(3)] == [True, True, False]
    for _ in range(9):
        bucket.deposit()
    assert not bucket.withdraw()
    bucket.deposit()  # ten deposits of 0.1: one token, floating point notwithstanding
    assert bucket.withdraw()
    bucket.deposit(1000)
    assert bucket.tokens == 2


# Client retries.


def test_without_a_policy_the_plain_client_is_built_and_nothing_is_retried() -> None:
    runner = SimulationRunner(lossy(0.5, None).build(), seed=1)
    assert type(runner.model.client) is ClientRuntime
    assert runner.model.collector.retry is None
    requests = runner.run().requests
    assert requests.retries == 0
    assert requests.attempts == requests.generated
    assert requests.attempts_per_second == []


def test_a_lost_attempt_is_sent_again_until_its_attempts_run_out() -> None:
    # Every attempt is lost: each request makes exactly max_attempts attempts, then ends
    # dropped once.
    retry = {"max_attempts": 3, "base_s": 0.01, "cap_s": 0.01}
    runner = SimulationRunner(lossy(1.0, retry).build(), seed=2)
    assert isinstance(runner.model.client, RetryingClient)
    requests = runner.run().requests
    assert requests.completed == 0
    assert requests.dropped == requests.generated - requests.in_flight > 250
    assert requests.dropped_at == {"client-srv": requests.dropped}
    assert 2 * requests.dropped <= requests.retries <= 2 * (requests.dropped + requests.in_flight)
    assert requests.attempts == requests.generated + requests.retries
    # The client sends every attempt but the first attempts still on the generator's edge.
    sent = sum(requests.attempts_per_second)
    assert requests.attempts - requests.in_flight <= sent <= requests.attempts


def test_ends_not_named_are_not_retried() -> None:
    retry = {"max_attempts": 3, "retry_on": ["timed_out", "rejected"]}
    requests = run_scenario(lossy(1.0, retry).build(), seed=2).requests
    assert requests.retries == 0
    assert requests.dropped == requests.generated - requests.in_flight


def test_a_retried_request_completes_with_the_latency_from_its_first_attempt() -> None:
    # Half the attempts are lost as they leave the client, and each one lost waits exactly
    # 0.5 s before the next: a request takes 4 ms (three links and the CPU step, and at
    # times a little wait for the core) plus 0.5 s per retry, from its first attempt.
    retry = {"max_attempts": 5, "base_s": 0.5, "cap_s": 0.5, "jitter": "none"}
    runner = SimulationRunner(lossy(0.5, retry).build(), seed=3)
    requests = runner.run().requests
    latencies = list(runner.model.collector.latencies)
    retries = [round((latency - 0.004) / 0.5) for latency in latencies]
    assert [0.004 + 0.5 * k for k in retries] == pytest.approx(latencies, abs=0.002)
    assert set(retries) == {0, 1, 2, 3, 4}
    # Half the requests need no retry, a quarter one, ...: a geometric count.
    assert retries.count(0) / len(retries) == pytest.approx(0.5, abs=0.05)
    assert sum(retries) <= requests.retries


def test_a_budget_caps_retries_at_its_tokens_and_ratio() -> None:
    retry = {"max_attempts": 5, "base_s": 0.01, "cap_s": 0.01, "budget_ratio": 0.1}
    requests = run_scenario(lossy(1.0, retry).build(), seed=4).requests
    first_attempts = requests.generated
    assert requests.retries <= 10 + 0.1 * first_attempts
    # Every attempt is lost: the budget is the only limit, and it is spent.
    assert requests.retries >= 10 + 0.1 * first_attempts - 1
    assert requests.retries_refused > 0


def test_the_limits_count_every_attempt_and_backoff() -> None:
    plain = events_per_request(lossy(0.0, None).build())
    retried = events_per_request(lossy(0.0, {"max_attempts": 3}).build())
    # Each retry: its backoff timer, then the trip from the client (edge, CPU step, edge).
    assert (plain, retried) == (5, 5 + 2 * (1 + 3))


# Call-step retries.


def test_a_lost_sub_request_is_sent_again_by_its_caller() -> None:
    # Every sub-request is lost as it leaves: each call makes four attempts, then fails.
    retry = retry_policy(4, base_s=0.001, cap_s=0.001)
    results = run_scenario(api_calling_db(call_dropout=1.0, retry=retry).build(), seed=5)
    call = results.calls["api:/api#1->db"]
    requests = results.requests
    assert requests.completed == 0
    assert requests.failed_at == {"api-db": requests.failed}
    assert requests.failed > 250
    assert call.failed == call.sent
    calls_made = call.sent - call.retries
    assert requests.failed <= calls_made <= requests.failed + requests.in_flight
    assert 3 * requests.failed <= call.retries <= 3 * (requests.failed + requests.in_flight)


def test_without_a_policy_a_lost_sub_request_fails_its_call() -> None:
    results = run_scenario(api_calling_db(call_dropout=1.0, retry=None).build(), seed=5)
    call = results.calls["api:/api#1->db"]
    assert call.retries == 0
    assert call.sent == call.failed == results.requests.failed


def test_a_call_retries_timeouts_round_by_round() -> None:
    # db takes 1 s; the call gives up after 0.1 s, three times in all, then fails.
    retry = retry_policy(3, retry_on=["timed_out"], base_s=0.01, cap_s=0.01, jitter="none")
    document = api_calling_db(retry=retry, timeout_s=0.1, on_timeout="cancel").to_dict()
    db = document["topology_graph"]["nodes"]["servers"][1]
    db["endpoints"][0]["steps"][0]["step_operation"]["cpu_time"] = 1.0
    document["sim_settings"]["total_simulation_time"] = 10
    results = run_scenario(parse_scenario(document), seed=6)
    call = results.calls["api:/api#1->db"]
    requests = results.requests
    failed, in_flight = requests.failed, requests.in_flight
    assert requests.completed == 0
    assert requests.failed_at == {"api:/api#1": failed}
    assert failed > 80
    assert 3 * failed <= call.timed_out <= 3 * (failed + in_flight)
    assert 2 * failed <= call.retries <= 2 * (failed + in_flight)
    assert call.sent - call.retries <= failed + in_flight


# Closed users.


def test_a_closed_user_waits_for_the_last_attempt_of_its_request() -> None:
    # 30 % of the attempts are lost; each one lost is sent again 0.5 s later, up to ten
    # attempts: every request completes, a third of them after one retry or more. A user
    # woken at a lost attempt would send its next request while the retry runs on, and
    # the users would get more done than N / (R + Z).
    retry = {"max_attempts": 10, "base_s": 0.5, "cap_s": 0.5, "jitter": "none"}
    scenario = (
        ScenarioBuilder()
        .closed_users("gen", 5, think_time=0.2)
        .retry(**retry)
        .client("client")
        .server("srv")
        .endpoint("/api")
        .cpu(0.01)
        .edge("gen", "client", latency=deterministic(0.001), dropout=0.0)
        .edge("client", "srv", latency=deterministic(0.001), dropout=0.3)
        .edge("srv", "client", latency=deterministic(0.001), dropout=0.0)
        .settings(horizon=200)
        .build()
    )
    runner = SimulationRunner(scenario, seed=8)
    assert isinstance(runner.model.client, RetryingClient)
    results = runner.run()
    requests = results.requests
    assert requests.retries > 0.3 * requests.generated
    assert requests.generated == requests.completed + requests.in_flight
    assert requests.in_flight <= 5
    closed = results.closed
    assert closed is not None
    # R counts from the first attempt, so it holds the backoffs: about 0.5 s x 0.43
    # retries per request on top of 13 ms.
    assert closed.response_time_mean_s == pytest.approx(0.013 + 0.5 * 0.3 / 0.7, rel=0.1)
    assert closed.interactive_law_rps == pytest.approx(closed.throughput_rps, rel=0.02)


# Workload classes.


def test_retries_of_a_class_count_in_its_class_and_only_rqs_input_has_a_policy() -> None:
    # Every attempt is lost: each class's requests end dropped, once each, after 3 attempts.
    builder = (
        ScenarioBuilder()
        .generator("web", users=deterministic(10), rpm=60)
        .retry(3, base_s=0.01, cap_s=0.01)
        .generator("batch", users=deterministic(5), rpm=60)
        .client("client")
        .server("srv")
        .endpoint("/api")
        .cpu(0.001)
        .edge("web", "client", latency=deterministic(0.001), dropout=0.0)
        .edge("batch", "client", latency=deterministic(0.001), dropout=0.0)
        .edge("client", "srv", latency=deterministic(0.001), dropout=1.0)
        .edge("srv", "client", latency=deterministic(0.001), dropout=0.0)
        .settings(horizon=30)
    )
    results = run_scenario(builder.build(), seed=9)
    classes = results.classes
    assert classes is not None
    requests = results.requests
    for stats in classes.values():
        assert stats.ended == {"dropped": pytest.approx(stats.generated, abs=3)}
    assert sum(stats.ended["dropped"] for stats in classes.values()) == requests.dropped
    assert 2 * requests.dropped <= requests.retries <= 2 * (requests.dropped + requests.in_flight)

    document = builder.to_dict()
    document["workload_classes"][0]["retry"] = {"max_attempts": 2}
    assert "goes on rqs_input" in problems(document)["workload_classes[0].retry"]
