"""Little's law, L = lambda W, on a topology with a round-robin load balancer.

The system is `BalancedPair` (see its docstring for the theory of each piece).
The time-average number of requests in the system, read from the sampled
series, must equal throughput x mean latency as measured, and lambda W from
theory; each server's ready queue must match the E2/M/1 queue length, each
link and each I/O wait its infinite-server occupancy lambda E[delay].
"""

import numpy as np
import pytest
from queue_models import BalancedPair, assert_agrees, estimate, simulate

from asyncflow_backend.statistics import Estimate

pytestmark = pytest.mark.statistical

HORIZON_S = 2700.0
COUNTS = ("ready_queue_len", "event_loop_io_sleep", "edge_concurrent_connection")


def test_littles_law_and_round_robin_queues() -> None:
    system = BalancedPair()
    run = simulate(system.scenario(HORIZON_S), seed=601)
    results = run.results
    series = results.time_series.series
    share = system.arrival_rate / len(system.servers)

    assert_agrees(estimate(run.latencies), system.response, "end-to-end W")

    # Requests in the system at each sampling instant: on the wire, waiting for a
    # core, or asleep in I/O. Those running on a core are not sampled; their time
    # average is the busy fraction of each core, which the results give directly.
    waiting_or_travelling = np.sum(
        [values for metric in COUNTS for values in series[metric].values()], axis=0
    )
    running = sum(results.servers[s].cpu_utilisation for s in system.servers)
    sampled = estimate(waiting_or_travelling)
    in_system = Estimate(sampled.mean + running, sampled.standard_error, sampled.batches)

    little = results.throughput.mean_rps * float(run.latencies.mean())
    assert_agrees(in_system, little, "time-average L vs throughput x mean latency")
    assert_agrees(in_system, system.arrival_rate * system.response, "time-average L vs lambda W")

    for server_id in system.servers:
        assert_agrees(
            estimate(run.series("ready_queue_len", server_id)),
            system.per_server.queue_length,
            f"{server_id} ready queue vs E2/M/1 Lq",
            max_relative_error=0.1,
        )
        assert_agrees(
            estimate(run.series("event_loop_io_sleep", server_id)),
            share * system.io_wait_s,
            f"{server_id} I/O sleepers vs lambda_i E[io]",
            max_relative_error=0.1,
        )
    for edge_id, (rate, mean_latency) in system.links.items():
        assert_agrees(
            estimate(run.series("edge_concurrent_connection", edge_id)),
            rate * mean_latency,
            f"{edge_id} open connections vs lambda E[latency]",
            max_relative_error=0.1,
        )
