"""Client retries against probability: an attempt lost with probability p and retried up
to m attempts in all ends the request dropped with probability p^m, after a truncated
geometric number of attempts K: P(K = k) = p^(k-1) (1 - p) for k < m, P(K = m) = p^(m-1),
so E[K] = (1 - p^m) / (1 - p).

Every attempt is lost independently (an edge's `dropout_rate` draws each crossing on its
own stream), whatever the backoff, so the counts of one run are sums of independent
requests: the dropped count is binomial (scipy's exact interval), the retries a sum of
i.i.d. K - 1 (a normal interval from the exact variance).
"""

import numpy as np
import pytest
from scipy import stats

from asyncflow_backend.builder import ScenarioBuilder, deterministic
from asyncflow_backend.runtime.runner import run_scenario

pytestmark = pytest.mark.statistical

CONFIDENCE = 0.998


def attempts_distribution(p: float, m: int) -> np.ndarray:
    """P(K = k) for k = 1..m."""
    k = np.arange(1, m + 1)
    probabilities = p ** (k - 1) * (1 - p)
    probabilities[-1] = p ** (m - 1)
    return probabilities


@pytest.mark.parametrize(("p", "m", "seed"), [(0.3, 3, 11), (0.5, 4, 12)])
def test_lost_attempts_are_retried_as_a_truncated_geometric(p: float, m: int, seed: int) -> None:
    scenario = (
        ScenarioBuilder()
        .generator("gen", users=deterministic(100), rpm=60)
        .retry(m, retry_on=["dropped"], base_s=0.001, cap_s=0.004)
        .client("client")
        .server("srv", cores=4)
        .endpoint("/api")
        .cpu(0.001)
        .edge("gen", "client", latency=deterministic(0.001), dropout=0.0)
        .edge("client", "srv", latency=deterministic(0.001), dropout=p)
        .edge("srv", "client", latency=deterministic(0.001), dropout=0.0)
        .settings(horizon=200)
        .build()
    )
    requests = run_scenario(scenario, seed=seed).requests
    ended = requests.generated - requests.in_flight
    assert ended > 19_000

    dropped = stats.binomtest(requests.dropped, ended, p**m)
    low, high = dropped.proportion_ci(CONFIDENCE, method="exact")
    assert low <= p**m <= high, (requests.dropped / ended, p**m)

    k = np.arange(1, m + 1)
    probabilities = attempts_distribution(p, m)
    mean = float((k * probabilities).sum())
    assert mean == pytest.approx((1 - p**m) / (1 - p))
    variance = float((k**2 * probabilities).sum()) - mean**2
    z = stats.norm.ppf(0.5 + CONFIDENCE / 2)
    half_width = z * np.sqrt(variance * ended)
    # Requests still in flight at the horizon may have retried too: at most m - 1 each.
    expected = (mean - 1) * ended
    slack = (m - 1) * requests.in_flight
    assert expected - half_width <= requests.retries <= expected + half_width + slack
    assert requests.attempts == requests.generated + requests.retries
