"""A balancer's token bucket against queueing theory: with Poisson arrivals the bucket's
deficit is the workload of an M/D/1/K queue with K = burst served at the token rate, so the
rejected fraction is its blocking probability (`theory.token_bucket_rejection`).

The fraction is estimated over independent replications with a Student t interval from
scipy, as the overload tests do.
"""

import numpy as np
import pytest
from scipy import stats

from asyncflow_backend.builder import ScenarioBuilder, deterministic
from asyncflow_backend.metrics import theory
from asyncflow_backend.runtime.runner import run_scenario

pytestmark = pytest.mark.statistical

CONFIDENCE = 0.998
REPLICATIONS = 6
HORIZON_S = 300


def rejected_fraction(users: int, rate: float, burst: int, seed: int) -> float:
    scenario = (
        ScenarioBuilder()
        .generator("gen", users=deterministic(users), rpm=60)
        .client("client")
        .load_balancer("lb", covers=["a"], rate_per_s=rate, burst=burst)
        .server("a", cores=8)
        .endpoint("/x")
        .cpu(0.001)
        .edge("gen", "client", latency=deterministic(0.001), dropout=0.0)
        .edge("client", "lb", latency=deterministic(0.001), dropout=0.0)
        .edge("lb", "a", latency=deterministic(0.001), dropout=0.0)
        .edge("a", "client", latency=deterministic(0.001), dropout=0.0)
        .settings(horizon=HORIZON_S)
        .build()
    )
    requests = run_scenario(scenario, seed=seed).requests
    return requests.rejected / (requests.generated - requests.in_flight)


@pytest.mark.parametrize(("users", "rate", "burst"), [(30, 20.0, 5), (18, 20.0, 3)])
def test_a_token_bucket_rejects_as_md1k_blocks(users: int, rate: float, burst: int) -> None:
    expected = theory.token_bucket_rejection(users, rate, burst)
    values = np.array(
        [rejected_fraction(users, rate, burst, seed) for seed in range(100, 100 + REPLICATIONS)]
    )
    mean = float(values.mean())
    half = float(
        stats.t.ppf(0.5 + CONFIDENCE / 2, REPLICATIONS - 1)
        * values.std(ddof=1)
        / np.sqrt(REPLICATIONS)
    )
    assert abs(mean - expected) <= half, (mean, half, expected)
    assert mean == pytest.approx(expected, rel=0.05)
