"""Little's law, L = lambda W, on a topology with a round-robin load balancer.

Requests cross exponential network links, a balancer that alternates between
two single-core servers (exponential CPU step, then a fixed I/O wait) and
come back to the client. Theory for each piece:

- a link is an infinite-server delay: it holds lambda E[latency] requests on average;
- the output of an infinite-server delay fed by a Poisson process is Poisson,
  so the balancer sees Poisson arrivals; round robin sends every other one to
  each server, whose arrivals are then Erlang-2: each server is an E2/M/1 queue;
- the balancer-to-server links are fixed delays, which shift those arrival
  streams without changing them.
"""

from typing import Any

import numpy as np
import pytest
from queue_models import assert_agrees, estimate, poisson_workload, simulate

from asyncflow_backend.metrics import theory
from asyncflow_backend.schemas import Scenario, parse_scenario

pytestmark = pytest.mark.statistical

ARRIVAL_RATE = 150.0
SERVERS = ("srv-1", "srv-2")
SERVICE_RATE = 100.0
IO_WAIT_S = 0.004
GENERATOR_LINK_S = 0.005
BALANCER_IN_S = 0.002
BALANCER_OUT_S = 0.001
"""Fixed, unlike the other links: it keeps each server's arrivals Erlang-2."""
RETURN_LINK_S = 0.003
HORIZON_S = 2700.0


def link(edge_id: str, source: str, target: str, latency: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": edge_id,
        "source": source,
        "target": target,
        "latency": latency,
        "dropout_rate": 0.0,
    }


def exponential(mean: float) -> dict[str, Any]:
    return {"mean": mean, "distribution": "exponential"}


def balanced_scenario() -> Scenario:
    servers = [
        {
            "id": server_id,
            "endpoints": [
                {
                    "endpoint_name": "/work",
                    "steps": [
                        {
                            "kind": "cpu_bound_operation",
                            "step_operation": {"cpu_time": exponential(1 / SERVICE_RATE)},
                        },
                        {"kind": "io_db", "step_operation": {"io_waiting_time": IO_WAIT_S}},
                    ],
                }
            ],
        }
        for server_id in SERVERS
    ]
    edges = [
        link("gen-client", "gen", "client", exponential(GENERATOR_LINK_S)),
        link("client-lb", "client", "lb", exponential(BALANCER_IN_S)),
    ]
    for server_id in SERVERS:
        edges.append(
            link(
                f"lb-{server_id}",
                "lb",
                server_id,
                {"mean": BALANCER_OUT_S, "distribution": "deterministic"},
            )
        )
        edges.append(
            link(
                f"{server_id}-client",
                server_id,
                "client",
                exponential(RETURN_LINK_S),
            )
        )
    return parse_scenario(
        {
            "rqs_input": poisson_workload(ARRIVAL_RATE),
            "topology_graph": {
                "nodes": {
                    "client": {"id": "client"},
                    "load_balancer": {
                        "id": "lb",
                        "algorithms": "round_robin",
                        "server_covered": list(SERVERS),
                    },
                    "servers": servers,
                },
                "edges": edges,
            },
            "sim_settings": {
                "total_simulation_time": HORIZON_S,
                "sample_period_s": 0.1,
                "enabled_sample_metrics": [
                    "ready_queue_len",
                    "event_loop_io_sleep",
                    "edge_concurrent_connection",
                ],
            },
        }
    )


def test_littles_law_and_round_robin_queues() -> None:
    run = simulate(balanced_scenario(), seed=601)
    results = run.results
    series = results.time_series.series
    per_server = theory.round_robin_share(ARRIVAL_RATE, len(SERVERS), SERVICE_RATE)
    server_share = ARRIVAL_RATE / len(SERVERS)
    on_the_wire = GENERATOR_LINK_S + BALANCER_IN_S + BALANCER_OUT_S + RETURN_LINK_S
    response = on_the_wire + per_server.response + IO_WAIT_S

    assert_agrees(estimate(run.latencies), response, "end-to-end W")

    # Requests in the system at each sampling instant: on the wire, waiting for a
    # core, or asleep in I/O. Those running on a core are not sampled; their time
    # average is the busy fraction of each core, which the results give directly.
    waiting_or_travelling = np.sum(
        [
            values
            for metric in ("ready_queue_len", "event_loop_io_sleep", "edge_concurrent_connection")
            for values in series[metric].values()
        ],
        axis=0,
    )
    running = sum(results.servers[s].cpu_utilisation for s in SERVERS)
    sampled = estimate(waiting_or_travelling)
    in_system = theory.Estimate(sampled.mean + running, sampled.standard_error, sampled.batches)

    little = results.throughput.mean_rps * float(run.latencies.mean())
    assert_agrees(in_system, little, "time-average L vs throughput x mean latency")
    assert_agrees(in_system, ARRIVAL_RATE * response, "time-average L vs lambda W (theory)")

    for server_id in SERVERS:
        assert_agrees(
            estimate(run.series("ready_queue_len", server_id)),
            per_server.queue_length,
            f"{server_id} ready queue vs E2/M/1 Lq",
            max_relative_error=0.1,
        )
        assert_agrees(
            estimate(run.series("event_loop_io_sleep", server_id)),
            server_share * IO_WAIT_S,
            f"{server_id} I/O sleepers vs lambda_i E[io]",
            max_relative_error=0.1,
        )
    links = {
        "gen-client": (ARRIVAL_RATE, GENERATOR_LINK_S),
        "client-lb": (ARRIVAL_RATE, BALANCER_IN_S),
    }
    for server_id in SERVERS:
        links[f"lb-{server_id}"] = (server_share, BALANCER_OUT_S)
        links[f"{server_id}-client"] = (server_share, RETURN_LINK_S)
    for edge_id, (edge_rate, mean_latency) in links.items():
        assert_agrees(
            estimate(run.series("edge_concurrent_connection", edge_id)),
            edge_rate * mean_latency,
            f"{edge_id} open connections vs lambda E[latency]",
            max_relative_error=0.1,
        )
