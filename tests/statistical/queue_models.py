"""Queueing models written in the scenario language, run, and compared with theory.

A station is one server behind a client: requests go generator -> client ->
server -> client over edges whose latency is a tiny constant, so the server's
response time is the client's latency minus those constants, exactly. The
users are `deterministic`, so arrivals are a Poisson process of rate
`users * rpm / 60`; with rpm = 60 the rate is the number of users.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from asyncflow_backend.metrics.theory import Estimate, batch_means
from asyncflow_backend.runtime.runner import SimulationRunner
from asyncflow_backend.schemas import Scenario, parse_scenario
from asyncflow_backend.schemas.results import SimulationResults

EDGE_LATENCY_S = 1e-6
SAMPLE_PERIOD_S = 0.1
BATCHES = 30
WARMUP_FRACTION = 0.05
Z = 3.0
MAX_RELATIVE_ERROR = 0.035


def fixed_latency_edge(edge_id: str, source: str, target: str) -> dict[str, Any]:
    """An edge that delays every request by exactly EDGE_LATENCY_S and drops none."""
    return {
        "id": edge_id,
        "source": source,
        "target": target,
        "latency": {"mean": EDGE_LATENCY_S, "distribution": "deterministic"},
        "dropout_rate": 0.0,
    }


def poisson_workload(arrival_rate: float) -> dict[str, Any]:
    """A generator whose arrivals are a Poisson process of `arrival_rate` per second."""
    return {
        "id": "gen",
        "avg_active_users": {"mean": arrival_rate, "distribution": "deterministic"},
        "avg_request_per_minute_per_user": {"mean": 60},
    }


def station(
    arrival_rate: float,
    cpu_time: float | dict[str, Any],
    *,
    horizon_s: float,
    cores: int = 1,
    io_time: float | dict[str, Any] | None = None,
) -> Scenario:
    """One server with one CPU step (and an optional I/O step after it), fed by Poisson arrivals."""
    steps: list[dict[str, Any]] = [
        {"kind": "cpu_bound_operation", "step_operation": {"cpu_time": cpu_time}}
    ]
    if io_time is not None:
        steps.append({"kind": "io_wait", "step_operation": {"io_waiting_time": io_time}})
    return parse_scenario(
        {
            "rqs_input": poisson_workload(arrival_rate),
            "topology_graph": {
                "nodes": {
                    "client": {"id": "client"},
                    "servers": [
                        {
                            "id": "srv",
                            "server_resources": {"cpu_cores": cores},
                            "endpoints": [{"endpoint_name": "/work", "steps": steps}],
                        }
                    ],
                },
                "edges": [
                    fixed_latency_edge("gen-client", "gen", "client"),
                    fixed_latency_edge("client-srv", "client", "srv"),
                    fixed_latency_edge("srv-client", "srv", "client"),
                ],
            },
            "sim_settings": {
                "total_simulation_time": horizon_s,
                "sample_period_s": SAMPLE_PERIOD_S,
                "enabled_sample_metrics": ["ready_queue_len", "event_loop_io_sleep"],
            },
        }
    )


@dataclass
class Run:
    """A finished run and the raw samples the estimates are made from."""

    results: SimulationResults
    latencies: np.ndarray
    """Client-to-client latency of every completed request, in completion order."""

    def series(self, metric: str, component: str) -> np.ndarray:
        """A sampled time series as an array."""
        return np.asarray(self.results.time_series.series[metric][component])


def simulate(scenario: Scenario, seed: int) -> Run:
    """Run `scenario` at `seed` and keep the per-request latencies for batch means."""
    runner = SimulationRunner(scenario, seed=seed)
    results = runner.run()
    latencies = np.frombuffer(runner.model.collector.latencies, dtype=np.float64).copy()
    return Run(results, latencies)


def station_response_times(run: Run) -> np.ndarray:
    """The server's response times: client latency minus the three fixed edge delays."""
    return run.latencies - 3 * EDGE_LATENCY_S


def estimate(samples: np.ndarray) -> Estimate:
    """Batch-means estimate of the steady-state mean of an output sequence."""
    return batch_means(samples, BATCHES, WARMUP_FRACTION)


def assert_agrees(
    simulated: Estimate, exact: float, what: str, max_relative_error: float = MAX_RELATIVE_ERROR
) -> None:
    """The estimate lies within Z standard errors of theory, and within the relative bound."""
    relative = simulated.relative_error(exact)
    report = (
        f"{what}: simulated {simulated.mean:.6g} +- {simulated.standard_error:.2g} (1 SE, "
        f"{simulated.batches} batches), theory {exact:.6g}, relative error {relative:+.2%}"
    )
    assert simulated.agrees_with(exact, Z), f"{report}: more than {Z:g} SE apart"
    assert abs(relative) <= max_relative_error, f"{report}: beyond {max_relative_error:.1%}"
