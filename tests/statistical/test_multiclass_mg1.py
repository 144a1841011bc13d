"""Two workload classes sharing one server against the M/G/1 queue.

Two Poisson classes (rates λ_a, λ_b) each calling its own endpoint of one
single-core server (exponential CPU times of means s_a, s_b) make an M/G/1
FCFS queue whose service time is their mixture. Every class waits the same
Pollaczek-Khinchine time in queue, W_q = λ E[S²] / (2 (1 - rho)) with λ = λ_a + λ_b,
E[S²] = Σ_k (λ_k / λ) 2 s_k² and rho = Σ_k λ_k s_k, and class k's response time is
W_q + s_k (Kleinrock, *Queueing Systems* vol. 1, 1975, §5.6). Links are a fixed
10⁻⁶ s, three of them on each request's route.
"""

import numpy as np
import pytest
from queue_models import (
    EDGE_LATENCY_S,
    assert_agrees,
    estimate,
)

from asyncflow_backend.runtime.runner import SimulationRunner
from asyncflow_backend.schemas import Scenario, parse_scenario
from support.documents import (
    cpu,
    edge,
    endpoint,
    exponential,
    poisson_arrivals,
    route,
    scenario_document,
    server,
)

pytestmark = pytest.mark.statistical


def two_classes(rate_a: float, s_a: float, rate_b: float, s_b: float, horizon_s: float) -> Scenario:
    """Poisson classes `a` (from `gen`) and `b` (from `gen-b`) into one server's `/a` and
    `/b`, each an exponential CPU step of mean `s_a` or `s_b`."""
    srv = server(
        "srv",
        endpoints=[
            endpoint("/a", cpu(exponential(s_a))),
            endpoint("/b", cpu(exponential(s_b))),
        ],
    )
    edges = [
        edge("gen", "client", latency=EDGE_LATENCY_S),
        edge("gen-b", "client", latency=EDGE_LATENCY_S),
        *route("client", "srv", "client", latency=EDGE_LATENCY_S),
    ]
    document = scenario_document(
        poisson_arrivals(rate_a, endpoint_mix={"srv": {"/a": 1}}),
        [srv],
        edges,
        horizon_s=horizon_s,
        settings={"sample_period_s": 0.1, "enabled_sample_metrics": ["ready_queue_len"]},
        workload_classes=[
            poisson_arrivals(rate_b, generator_id="gen-b", endpoint_mix={"srv": {"/b": 1}})
        ],
    )
    return parse_scenario(document)


def test_two_classes_on_one_server_wait_the_same_mg1_time() -> None:
    rate_a, s_a, rate_b, s_b = 6.0, 0.05, 2.0, 0.15
    rate = rate_a + rate_b
    rho = rate_a * s_a + rate_b * s_b
    second_moment = (rate_a * 2 * s_a**2 + rate_b * 2 * s_b**2) / rate
    queue_wait = rate * second_moment / (2 * (1 - rho))

    runner = SimulationRunner(two_classes(rate_a, s_a, rate_b, s_b, 6000.0), seed=1501)
    results = runner.run()
    classes = results.classes
    assert classes is not None
    tallies = runner.model.collector.tallies  # type: ignore[attr-defined]
    links = 3 * EDGE_LATENCY_S
    for (name, stats), tally, service in zip(classes.items(), tallies, (s_a, s_b), strict=True):
        latencies = np.frombuffer(tally.latencies, dtype=np.float64) - links
        print(
            f"class {name}: {stats.completed} completed, R {latencies.mean():.4f} vs "
            f"{queue_wait + service:.4f}"
        )
        assert_agrees(estimate(latencies), queue_wait + service, f"R of class {name}")
    assert classes["gen"].generated + classes["gen-b"].generated == results.requests.generated
    assert classes["gen-b"].throughput_rps == pytest.approx(rate_b, rel=0.05)
    endpoints = results.servers["srv"].endpoints
    assert endpoints["/a"].count == pytest.approx(classes["gen"].generated, abs=2)
    assert endpoints["/b"].count == pytest.approx(classes["gen-b"].generated, abs=2)
