"""Queueing models written in the scenario language, run, and compared with theory.

A station is one server behind a client: requests go generator -> client ->
server -> client over edges whose latency is a tiny constant, so the server's
response time is the client's latency minus those constants, exactly. The
users are `deterministic`, so arrivals are a Poisson process of rate
`users * rpm / 60`; with rpm = 60 the rate is the number of users.

`BalancedPair` is a larger system for Little's law: random network links, a
round-robin balancer and two servers with a CPU and an I/O step.
"""

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from asyncflow_backend.metrics.theory import QueueMetrics, round_robin_share
from asyncflow_backend.runtime.runner import SimulationRunner
from asyncflow_backend.schemas import Scenario, parse_scenario
from asyncflow_backend.schemas.results import SimulationResults
from asyncflow_backend.statistics import Estimate, batch_means
from support.documents import (
    balancer,
    cpu,
    edge,
    exponential,
    io,
    poisson_arrivals,
    scenario_document,
    server,
)
from support.topologies import direct

EDGE_LATENCY_S = 1e-6
SAMPLE_PERIOD_S = 0.1
BATCHES = 30
WARMUP_FRACTION = 0.05
Z = 3.0
MAX_RELATIVE_ERROR = 0.035


def over_fixed_links(
    workload: dict[str, Any],
    servers: list[dict[str, Any]],
    *,
    horizon_s: float,
    metrics: list[str],
    links: list[tuple[str, str]] | None = None,
    **nodes: Any,
) -> Scenario:
    """`workload` -> client -> the first of `servers` -> client, and the further `links`
    (source, target) between nodes, every edge a fixed EDGE_LATENCY_S delay that drops
    nothing; `metrics` sampled every SAMPLE_PERIOD_S; `nodes` adds internal balancers."""
    edges = [edge(source, target, latency=EDGE_LATENCY_S) for source, target in links or []]
    settings = {"sample_period_s": SAMPLE_PERIOD_S, "enabled_sample_metrics": metrics}
    document = direct(
        workload,
        servers,
        horizon_s=horizon_s,
        latency=EDGE_LATENCY_S,
        edges=edges,
        settings=settings,
        **nodes,
    )
    return parse_scenario(document)


def one_server(
    arrival_rate: float,
    steps: list[dict[str, Any]],
    *,
    horizon_s: float,
    resources: dict[str, Any],
    metrics: list[str],
    workload: dict[str, Any] | None = None,
) -> Scenario:
    """Poisson arrivals into one server with one endpoint of `steps`, over fixed links.

    `workload`, when given, replaces the Poisson arrivals (`arrival_rate` is then unread).
    """
    return over_fixed_links(
        workload or poisson_arrivals(arrival_rate),
        [server("srv", *steps, endpoint_name="/work", **resources)],
        horizon_s=horizon_s,
        metrics=metrics,
    )


def station(
    arrival_rate: float,
    cpu_time: float | dict[str, Any],
    *,
    horizon_s: float,
    cores: int = 1,
    io_time: float | dict[str, Any] | None = None,
) -> Scenario:
    """One server with one CPU step (and an optional I/O step after it), fed by Poisson arrivals."""
    steps = [cpu(cpu_time)] if io_time is None else [cpu(cpu_time), io(io_time, kind="io_wait")]
    return one_server(
        arrival_rate,
        steps,
        horizon_s=horizon_s,
        resources={"cpu_cores": cores},
        metrics=["ready_queue_len", "event_loop_io_sleep"],
    )


@dataclass(frozen=True)
class BalancedPair:
    """Generator -> client -> round-robin balancer -> two servers -> client.

    Each server has one core, an exponential CPU step and a fixed I/O wait.
    The links are exponential delays except balancer -> server, which is fixed.
    Theory for each piece:

    - a link is an infinite-server delay holding lambda E[latency] requests on average;
    - the output of an infinite-server delay fed by a Poisson process is Poisson,
      so the balancer sees Poisson arrivals; round robin sends every other one
      to each server, whose arrivals are then Erlang-2: an E2/M/1 queue;
    - a fixed balancer -> server delay shifts those streams without changing them
      (a random one would reorder them and break the Erlang-2 pattern).
    """

    arrival_rate: float = 150.0
    service_rate: float = 100.0
    io_wait_s: float = 0.004
    generator_link_s: float = 0.005
    balancer_in_s: float = 0.002
    balancer_out_s: float = 0.001
    return_link_s: float = 0.003
    servers: tuple[str, ...] = field(default=("srv-1", "srv-2"))

    @property
    def per_server(self) -> QueueMetrics:
        """The CPU queue of one server, E2/M/1."""
        return round_robin_share(self.arrival_rate, len(self.servers), self.service_rate)

    @property
    def response(self) -> float:
        """Mean client-to-client latency: the links, the CPU queue and the I/O wait."""
        wire = self.generator_link_s + self.balancer_in_s + self.balancer_out_s
        return wire + self.return_link_s + self.per_server.response + self.io_wait_s

    @property
    def links(self) -> dict[str, tuple[float, float]]:
        """(request rate, mean latency) of every edge."""
        share = self.arrival_rate / len(self.servers)
        links = {
            "gen-client": (self.arrival_rate, self.generator_link_s),
            "client-lb": (self.arrival_rate, self.balancer_in_s),
        }
        for server_id in self.servers:
            links[f"lb-{server_id}"] = (share, self.balancer_out_s)
            links[f"{server_id}-client"] = (share, self.return_link_s)
        return links

    def scenario(self, horizon_s: float) -> Scenario:
        """The system in the scenario language."""
        steps = (cpu(exponential(1 / self.service_rate)), io(self.io_wait_s))
        edges = [
            edge("gen", "client", latency=exponential(self.generator_link_s)),
            edge("client", "lb", latency=exponential(self.balancer_in_s)),
        ]
        for server_id in self.servers:
            edges.append(edge("lb", server_id, latency=self.balancer_out_s))
            edges.append(edge(server_id, "client", latency=exponential(self.return_link_s)))
        metrics = ["ready_queue_len", "event_loop_io_sleep", "edge_concurrent_connection"]
        return parse_scenario(
            scenario_document(
                poisson_arrivals(self.arrival_rate),
                [server(s, *steps, endpoint_name="/work") for s in self.servers],
                edges,
                horizon_s=horizon_s,
                load_balancer=balancer(*self.servers, algorithm="round_robin"),
                settings={"sample_period_s": SAMPLE_PERIOD_S, "enabled_sample_metrics": metrics},
            )
        )


@dataclass
class Run:
    """A finished run and the raw samples the estimates are made from."""

    results: SimulationResults
    latencies: np.ndarray
    """Client-to-client latency of every completed request, in completion order."""
    completion_times: np.ndarray | None = None
    """With `simulate(..., timed=True)`: when each of them completed, in the same order."""

    @property
    def creation_times(self) -> np.ndarray:
        """When each completed request was created (its completion time less its latency);
        only for a run simulated with `timed=True`."""
        assert self.completion_times is not None, "simulate with timed=True"
        return self.completion_times - self.latencies

    def series(self, metric: str, component: str) -> np.ndarray:
        """A sampled time series as an array."""
        return np.asarray(self.results.time_series.series[metric][component])


def simulate(scenario: Scenario, seed: int, *, timed: bool = False) -> Run:
    """Run `scenario` at `seed` and keep the per-request latencies for batch means (and,
    `timed`, when each request completed)."""
    runner = SimulationRunner(scenario, seed=seed)
    collector = runner.model.collector
    if timed:
        collector.keep_completion_times()
    results = runner.run()
    latencies = np.frombuffer(collector.latencies, dtype=np.float64).copy()
    times = collector.completion_times
    completions = None if times is None else np.frombuffer(times, dtype=np.float64).copy()
    return Run(results, latencies, completions)


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


@dataclass(frozen=True)
class ClosedMetrics:
    """Steady-state means of a closed network with a think (delay) station."""

    throughput: float
    """X, requests per second."""
    response: float
    """R, seconds from sending a request to its answer (think time excluded)."""
    utilisations: tuple[float, ...]
    """U_k = X D_k of each queueing station."""


def machine_repairman(users: int, think_s: float, service_s: float) -> ClosedMetrics:
    """The closed M/M/1//N queue (the machine-repairman model) from its birth-death chain.

    With k requests at the server, arrivals come at (N - k) / Z and leave at 1 / S,
    so p_k ∝ N! / (N - k)! (S / Z)^k for k = 0..N; U = 1 - p_0, X = U / S, and by
    the interactive response time law R = N / X - Z (Kleinrock, *Queueing Systems*
    vol. 1, 1975, §3.8; Gross and Harris, *Fundamentals of Queueing Theory*, §2.8).
    """
    ratio = service_s / think_s
    weights = [math.perm(users, k) * ratio**k for k in range(users + 1)]
    p0 = weights[0] / sum(weights)
    utilisation = 1 - p0
    throughput = utilisation / service_s
    return ClosedMetrics(throughput, users / throughput - think_s, (utilisation,))


def exact_mva(users: int, think_s: float, demands: list[float]) -> ClosedMetrics:
    """Exact mean value analysis of a closed product-form network of single-server FCFS
    exponential stations with service demands D_k and a think station of mean Z.

    For n = 1..N: R_k(n) = D_k (1 + Q_k(n - 1)), X(n) = n / (Z + Σ_k R_k(n)),
    Q_k(n) = X(n) R_k(n), from Q_k(0) = 0 (Reiser and Lavenberg, "Mean-value
    analysis of closed multichain queuing networks", *J. ACM* 27(2), 1980; Lazowska
    et al., *Quantitative System Performance*, 1984, §6.3).
    """
    queues = [0.0] * len(demands)
    throughput, response = 0.0, 0.0
    for n in range(1, users + 1):
        residences = [d * (1 + q) for d, q in zip(demands, queues, strict=True)]
        response = sum(residences)
        throughput = n / (think_s + response)
        queues = [throughput * r for r in residences]
    return ClosedMetrics(throughput, response, tuple(throughput * d for d in demands))
