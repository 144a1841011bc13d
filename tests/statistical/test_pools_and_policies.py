"""Connection pools and balancing policies against queueing theory.

- An `io_db` wait behind a pool of c connections, fed by Poisson arrivals, is an
  M/M/c queue on the pool: Erlang C gives the wait for a connection.
- Random dispatch splits a Poisson stream into independent Poisson streams, so
  each of two servers behind a `random` balancer is an M/M/1 at half the rate.
- Little's law holds per server (ready queue) and per pool (waiting and in use).
"""

import numpy as np
import pytest
from queue_models import (
    EDGE_LATENCY_S,
    SAMPLE_PERIOD_S,
    assert_agrees,
    estimate,
    one_server,
    simulate,
    station_response_times,
)

from asyncflow_backend.metrics import theory
from asyncflow_backend.schemas import Scenario, parse_scenario
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

pytestmark = pytest.mark.statistical


def pooled_station(
    arrival_rate: float, mean_io_s: float, pool: int, *, horizon_s: float
) -> Scenario:
    """One server whose only step is an exponential `io_db` wait behind `db_connection_pool`."""
    return one_server(
        arrival_rate,
        [io(exponential(mean_io_s))],
        horizon_s=horizon_s,
        resources={"db_connection_pool": pool},
        metrics=["pool_in_use", "pool_waiting"],
    )


@pytest.mark.parametrize(
    ("arrival_rate", "mean_io_s", "pool", "seed"),
    [
        pytest.param(200.0, 0.015, 4, 301, id="c=4,rho=0.75"),
        pytest.param(80.0, 0.02, 2, 302, id="c=2,rho=0.8"),
    ],
)
def test_a_database_pool_is_an_mmc_queue(
    arrival_rate: float, mean_io_s: float, pool: int, seed: int
) -> None:
    exact = theory.mmc(arrival_rate, 1 / mean_io_s, pool)
    horizon = (300_000 if exact.utilisation >= 0.8 else 150_000) / arrival_rate
    run = simulate(pooled_station(arrival_rate, mean_io_s, pool, horizon_s=horizon), seed)

    assert_agrees(estimate(station_response_times(run)), exact.response, "M/M/c pool W")
    stats = run.results.pools["srv:db"]
    assert stats.size == pool
    assert stats.utilisation == pytest.approx(exact.utilisation, rel=0.03)
    assert stats.wait_mean_s == pytest.approx(exact.wait, rel=0.05)
    # Little's law on the pool's queue and on the connections held.
    assert_agrees(
        estimate(run.series("pool_waiting", "srv:db")),
        arrival_rate * exact.wait,
        "pool Lq (sampled waiting)",
        max_relative_error=0.1,
    )
    assert_agrees(
        estimate(run.series("pool_in_use", "srv:db")),
        arrival_rate * mean_io_s,
        "pool connections in use",
        max_relative_error=0.035,
    )


def test_the_documented_pool_example_waits_as_erlang_c_says() -> None:
    """200 requests/s, exponential 15 ms `io_db`, a pool of 4: 22.64 ms, P(wait) 0.51."""
    exact = theory.mmc(200.0, 1 / 0.015, 4)
    assert exact.response == pytest.approx(0.02264, abs=5e-5)
    assert theory.erlang_c(4, 3.0) == pytest.approx(0.509, abs=1e-3)


def random_pair(arrival_rate: float, service_rate: float, horizon_s: float) -> Scenario:
    """A `random` balancer in front of two one-core servers with an exponential CPU step."""
    servers = ["srv-1", "srv-2"]
    edges = [
        edge("gen", "client", latency=EDGE_LATENCY_S),
        edge("client", "lb", latency=EDGE_LATENCY_S),
    ]
    for srv in servers:
        edges += [
            edge("lb", srv, latency=EDGE_LATENCY_S),
            edge(srv, "client", latency=EDGE_LATENCY_S),
        ]
    work = cpu(exponential(1 / service_rate))
    return parse_scenario(
        scenario_document(
            poisson_arrivals(arrival_rate),
            [server(s, work, endpoint_name="/work") for s in servers],
            edges,
            horizon_s=horizon_s,
            load_balancer=balancer(*servers, algorithm="random"),
            settings={
                "sample_period_s": SAMPLE_PERIOD_S,
                "enabled_sample_metrics": ["ready_queue_len"],
            },
        )
    )


def test_random_dispatch_makes_each_server_an_mm1_at_half_the_rate() -> None:
    arrival_rate, service_rate = 150.0, 100.0
    run = simulate(random_pair(arrival_rate, service_rate, horizon_s=1600.0), 303)
    per_server = theory.mm1(arrival_rate / 2, service_rate)

    assert_agrees(
        estimate(run.latencies - 4 * EDGE_LATENCY_S), per_server.response, "random: client W"
    )
    served = [run.results.servers[s].latency for s in ("srv-1", "srv-2")]
    counts = np.array([stats.count for stats in served if stats is not None])
    assert abs(counts[0] - counts[1]) < 4 * np.sqrt(counts.sum() / 4)
    for server_id in ("srv-1", "srv-2"):
        stats = run.results.servers[server_id]
        assert stats.latency is not None
        assert stats.latency.mean == pytest.approx(per_server.response, rel=0.035)
        # Little's law on the ready queue: Lq = lambda_s Wq.
        assert_agrees(
            estimate(run.series("ready_queue_len", server_id)),
            per_server.queue_length,
            f"random: {server_id} Lq",
            max_relative_error=0.1,
        )
