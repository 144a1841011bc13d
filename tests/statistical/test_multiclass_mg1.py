"""Two workload classes sharing one server against the M/G/1 queue.

Two Poisson classes (rates λ_a, λ_b) each calling its own endpoint of one
single-core server (exponential CPU times of means s_a, s_b) make an M/G/1
FCFS queue whose service time is their mixture. Every class waits the same
Pollaczek-Khinchine time in queue, W_q = λ E[S²] / (2 (1 - rho)) with λ = λ_a + λ_b,
E[S²] = Σ_k (λ_k / λ) 2 s_k² and rho = Σ_k λ_k s_k, and class k's response time is
W_q + s_k (Kleinrock, *Queueing Systems* vol. 1, 1975, §5.6). Links are a fixed
10⁻⁶ s, three of them on each request's route.
"""

from typing import Any

import numpy as np
import pytest
from queue_models import (
    EDGE_LATENCY_S,
    assert_agrees,
    estimate,
    exponential,
    fixed_latency_edge,
    poisson_workload,
)

from asyncflow_backend.runtime.runner import SimulationRunner
from asyncflow_backend.schemas import Scenario, parse_scenario

pytestmark = pytest.mark.statistical


def endpoint(name: str, mean_s: float) -> dict[str, Any]:
    return {
        "endpoint_name": name,
        "steps": [
            {"kind": "cpu_bound_operation", "step_operation": {"cpu_time": exponential(mean_s)}}
        ],
    }


def two_classes(rate_a: float, s_a: float, rate_b: float, s_b: float, horizon_s: float) -> Scenario:
    document: dict[str, Any] = {
        "rqs_input": {**poisson_workload(rate_a), "endpoint_mix": {"srv": {"/a": 1}}},
        "workload_classes": [
            {**poisson_workload(rate_b), "id": "gen-b", "endpoint_mix": {"srv": {"/b": 1}}}
        ],
        "topology_graph": {
            "nodes": {
                "client": {"id": "client"},
                "servers": [{"id": "srv", "endpoints": [endpoint("/a", s_a), endpoint("/b", s_b)]}],
            },
            "edges": [
                fixed_latency_edge("gen-client", "gen", "client"),
                fixed_latency_edge("gen-b-client", "gen-b", "client"),
                fixed_latency_edge("client-srv", "client", "srv"),
                fixed_latency_edge("srv-client", "srv", "client"),
            ],
        },
        "sim_settings": {
            "total_simulation_time": horizon_s,
            "sample_period_s": 0.1,
            "enabled_sample_metrics": ["ready_queue_len"],
        },
    }
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
