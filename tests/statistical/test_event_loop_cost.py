"""The event loop's wake-ups against the M/G/1 queue with an exceptional first service.

One core, Poisson arrivals, a deterministic burst b = 4 ms per request, `per_wakeup_s`
p = 0.5 ms and `per_callback_s` k = 0.1 ms. A burst that finds the core idle (it wakes the
loop) holds it for b + k + p, every other for b + k: the first service of each busy period
is exceptional. Welch (Operations Research 12, 1964) gives the probability that the server
is idle,

    p0 = (1 - λ(b + k)) / (1 - λ(b + k) + λ(b + k + p)),

which by PASTA is also the share of requests that find the core idle and wake the loop.
So the CPU per request is b + k + p0 p: b + k + p at low load, falling toward b + k.
Each load is replicated over independent seeds and the theory must lie inside the Student
t interval of the replications (and within 5 % of it).
"""

import numpy as np
import pytest
from scipy import stats

from asyncflow_backend.runtime.actors.event_loop import WakingCores
from asyncflow_backend.runtime.runner import SimulationRunner
from support.scenarios import looped_server

pytestmark = pytest.mark.statistical

BURST_S = 0.004
WAKEUP_S = 0.0005
CALLBACK_S = 0.0001
REQUESTS = 20_000
SEEDS = range(601, 609)
CONFIDENCE = 0.998
"""Two-sided level of the replication intervals: a correct engine fails 1 in 500 runs."""


def idle_share(rate: float) -> float:
    """Welch's p0 for this test's server at `rate` requests/s."""
    handed = rate * (BURST_S + CALLBACK_S)
    woken = rate * (BURST_S + CALLBACK_S + WAKEUP_S)
    return (1 - handed) / (1 - handed + woken)


def run(rate: float, seed: int) -> tuple[float, float]:
    """(share of bursts that woke the loop, busy core seconds per burst) at `rate`."""
    builder = looped_server(
        cpu_s=BURST_S,
        per_wakeup_s=WAKEUP_S,
        per_callback_s=CALLBACK_S,
        horizon_s=REQUESTS / rate,
    ).arrival_rate("gen", "steps", [(0, rate)])
    runner = SimulationRunner(builder.build(), seed=seed)
    runner.run()
    server = runner.model.servers["srv"]
    cores = server.cores
    assert isinstance(cores, WakingCores)
    return cores.wakeups / cores.callbacks, server.busy_core_seconds / cores.callbacks


def assert_covers(values: list[float], exact: float, what: str) -> None:
    sample = np.array(values)
    n = sample.size
    half_width = stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * sample.std(ddof=1) / np.sqrt(n)
    mean = float(sample.mean())
    report = f"{what}: simulated {mean:.5g} +- {half_width:.2g} ({n} runs), theory {exact:.5g}"
    assert abs(mean - exact) <= half_width, report
    assert abs(mean - exact) <= 0.05 * exact, report


@pytest.mark.parametrize("rate", [10.0, 150.0, 220.0])
def test_the_share_of_wake_ups_and_the_cpu_per_request_follow_welch(rate: float) -> None:
    runs = [run(rate, seed) for seed in SEEDS]
    p0 = idle_share(rate)

    assert_covers([woke for woke, _ in runs], p0, f"share of wake-ups at {rate:g}/s")
    assert_covers(
        [cpu for _, cpu in runs],
        BURST_S + CALLBACK_S + p0 * WAKEUP_S,
        f"CPU per request at {rate:g}/s",
    )
