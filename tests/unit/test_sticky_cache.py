"""The write-back rule of a cache step whose outcome is per request: a retry of a miss
misses until an earlier attempt has run the miss steps to their end, then hits."""

from typing import Literal

from asyncflow_backend.builder import ScenarioBuilder, deterministic
from asyncflow_backend.runtime.runner import run_scenario
from asyncflow_backend.schemas.scenario import Scenario


def always_missing(
    miss_s: float, on_timeout: Literal["keep_working", "cancel"] = "keep_working"
) -> Scenario:
    """One request a second, a client timeout of 1 s, three attempts on timeouts 0.1 s
    apart; the cache never hits on a draw, and its miss steps wait `miss_s` seconds."""
    return (
        ScenarioBuilder()
        .generator("gen", users=deterministic(1), rpm=60)
        .timeout(1.0, on_timeout=on_timeout)
        .retry(3, retry_on=["timed_out"], base_s=0.1, cap_s=0.1, jitter="none")
        .client("client")
        .server("srv")
        .endpoint("/api")
        .cache(0.0, hit=lambda b: b.cpu(0.001), miss=lambda b: b.io("io_db", miss_s))
        .chain("gen", "client", "srv", "client", latency=deterministic(0.001), dropout=0.0)
        .settings(horizon=60)
        .build()
    )


def test_a_miss_turns_into_a_hit_once_an_earlier_attempt_wrote_it_back() -> None:
    # Attempt 1 times out at 1 s and finishes its miss at 1.5 s; attempt 2, sent at 1.1 s,
    # looked up before that and misses; attempt 3, sent at 2.2 s, hits and completes.
    requests = run_scenario(always_missing(1.5), seed=1).requests
    ended = requests.generated - requests.in_flight
    assert ended > 50
    assert requests.completed == ended
    assert 2 * ended <= requests.retries <= 2 * (ended + requests.in_flight)


def test_an_attempt_still_in_its_miss_steps_has_not_written_back() -> None:
    # Every attempt's miss takes 5 s: none has finished it when the last one looks up.
    requests = run_scenario(always_missing(5.0), seed=1).requests
    assert requests.completed == 0
    assert requests.timed_out == requests.generated - requests.in_flight


def test_a_withdrawn_attempt_writes_nothing_back() -> None:
    # Under `cancel`, attempt 1 is withdrawn at its timeout, before its miss steps end.
    requests = run_scenario(always_missing(1.5, on_timeout="cancel"), seed=1).requests
    assert requests.completed == 0
