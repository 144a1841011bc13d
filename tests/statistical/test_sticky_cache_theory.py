"""A cache step's outcome belongs to the request: when every miss times out, retries do not
turn misses into hits.

Each request draws its lookup once, with hit probability h. A hit completes; a miss runs
steps far longer than the client's timeout, withdrawn when it fires (`cancel`), so no
attempt ever writes the key back and every retry misses again: the completed share is h
whatever the number of retries. Drawn per attempt, a request with m attempts completes
with probability 1 - (1 - h)^m instead. Requests are independent, so the completed count
is binomial (scipy's exact interval); requests still in flight at the horizon may end
either way and are counted on both sides.
"""

from typing import Literal

import pytest
from scipy import stats

from asyncflow_backend.builder import ScenarioBuilder, deterministic, retry_policy
from asyncflow_backend.runtime.runner import run_scenario

pytestmark = pytest.mark.statistical

CONFIDENCE = 0.998
HIT_RATIO = 0.8
ATTEMPTS = 3


def completed_share_interval(
    outcome_per: Literal["request", "attempt"], seed: int
) -> tuple[float, float]:
    """An exact interval around the completed share of a run whose misses always time out."""
    scenario = (
        ScenarioBuilder()
        .generator("gen", users=deterministic(50), rpm=60)
        .timeout(0.5, on_timeout="cancel")
        .retry(ATTEMPTS, retry_on=["timed_out"], base_s=0.01, cap_s=0.04)
        .client("client")
        .server("srv", cores=4)
        .endpoint("/api")
        .cache(
            HIT_RATIO,
            hit=lambda b: b.cpu(0.001),
            miss=lambda b: b.io("io_db", 100.0),
            outcome_per=outcome_per,
        )
        .chain("gen", "client", "srv", "client", latency=deterministic(0.001), dropout=0.0)
        .settings(horizon=200)
        .build()
    )
    requests = run_scenario(scenario, seed=seed).requests
    assert requests.generated > 9_000
    assert requests.completed + requests.timed_out + requests.in_flight == requests.generated
    low = stats.binomtest(requests.completed, requests.generated).proportion_ci(
        CONFIDENCE, method="exact"
    )
    high = stats.binomtest(requests.completed + requests.in_flight, requests.generated)
    return low.low, high.proportion_ci(CONFIDENCE, method="exact").high


def test_a_call_steps_retries_keep_the_sub_requests_miss() -> None:
    # The database's cache, behind a call step that retries its timed-out sub-request:
    # every retry asks for the same key, so the call fails exactly when the first missed.
    scenario = (
        ScenarioBuilder()
        .generator("gen", users=deterministic(50), rpm=60)
        .client("client")
        .server("api", cores=4)
        .endpoint("/api")
        .call(
            "db",
            timeout_s=0.5,
            on_timeout="cancel",
            retry=retry_policy(ATTEMPTS, retry_on=["timed_out"], base_s=0.01, cap_s=0.04),
        )
        .server("db", cores=4)
        .endpoint("/get")
        .cache(HIT_RATIO, hit=lambda b: b.cpu(0.001), miss=lambda b: b.io("io_db", 100.0))
        .chain("gen", "client", "api", "client", latency=deterministic(0.001), dropout=0.0)
        .edge("api", "db", latency=deterministic(0.001), dropout=0.0)
        .edge("db", "api", latency=deterministic(0.001), dropout=0.0)
        .settings(horizon=200)
        .build()
    )
    requests = run_scenario(scenario, seed=23).requests
    assert requests.generated > 9_000
    low = stats.binomtest(requests.completed, requests.generated).proportion_ci(
        CONFIDENCE, method="exact"
    )
    high = stats.binomtest(requests.completed + requests.in_flight, requests.generated)
    assert low.low <= HIT_RATIO <= high.proportion_ci(CONFIDENCE, method="exact").high


def test_retries_keep_the_requests_miss() -> None:
    low, high = completed_share_interval("request", seed=21)
    assert low <= HIT_RATIO <= high, (low, high)


def test_a_lookup_per_attempt_draws_again() -> None:
    expected = 1 - (1 - HIT_RATIO) ** ATTEMPTS
    low, high = completed_share_interval("attempt", seed=22)
    assert low <= expected <= high, (low, high, expected)
