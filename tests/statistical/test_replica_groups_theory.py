"""Replica groups against queueing theory.

- N replicas behind a `random` balancer fed a Poisson stream of rate lambda: random
  dispatch thins it into N independent Poisson streams of rate lambda/N, so each
  replica with one core and exponential service of rate mu is an M/M/1 queue, with the
  mean response time W = 1/(mu - lambda/N) and Lq = rho^2/(1 - rho),
  rho = lambda/(N mu). The group pools them: its mean time on the server is W, its
  summed ready queue N Lq, its utilisation rho and its throughput lambda.
- Behind `round_robin` each replica gets every N-th arrival: Erlang-N interarrival
  times, an E_N/M/1 queue (`theory.round_robin_share`), exact over fixed links.
"""

import pytest
from queue_models import (
    EDGE_LATENCY_S,
    SAMPLE_PERIOD_S,
    assert_agrees,
    estimate,
    simulate,
)

from asyncflow_backend.metrics import theory
from asyncflow_backend.schemas import Scenario, parse_scenario
from support.documents import cpu, exponential, poisson_arrivals, server
from support.topologies import balanced

pytestmark = pytest.mark.statistical

ROUTE_EDGES = 4
"""gen -> client -> lb -> replica -> client: each a fixed EDGE_LATENCY_S delay."""


def replica_group(
    arrival_rate: float, service_rate: float, replicas: int, algorithm: str, horizon_s: float
) -> Scenario:
    """Poisson arrivals through a balancer to `replicas` one-core replicas of `api`, each
    running one exponential CPU step of rate `service_rate`, over fixed links."""
    return parse_scenario(
        balanced(
            poisson_arrivals(arrival_rate),
            [server("api", cpu(exponential(1 / service_rate)), replicas=replicas)],
            horizon_s=horizon_s,
            algorithm=algorithm,
            latency=EDGE_LATENCY_S,
            settings={
                "sample_period_s": SAMPLE_PERIOD_S,
                "enabled_sample_metrics": ["ready_queue_len"],
            },
        )
    )


def test_replicas_behind_random_are_independent_mm1_queues_at_lambda_over_n() -> None:
    arrival_rate, service_rate, replicas = 300.0, 100.0, 4
    per_replica = theory.mm1(arrival_rate / replicas, service_rate)
    assert per_replica.response == pytest.approx(1 / (service_rate - arrival_rate / replicas))
    run = simulate(replica_group(arrival_rate, service_rate, replicas, "random", 800.0), 4)

    assert_agrees(
        estimate(run.latencies - ROUTE_EDGES * EDGE_LATENCY_S),
        per_replica.response,
        "random replicas: client W",
    )
    group = run.results.replica_groups["api"]
    assert group.latency.mean == pytest.approx(per_replica.response, rel=0.035)
    assert group.cpu_utilisation == pytest.approx(per_replica.utilisation, rel=0.02)
    assert group.throughput_rps == pytest.approx(arrival_rate, rel=0.01)
    # Little's law on the summed ready queue: N Lq, with Lq = lambda/N Wq.
    assert group.ready_queue_mean == pytest.approx(replicas * per_replica.queue_length, rel=0.1)
    # Each replica gets a binomial share of the arrivals: within 4 standard deviations.
    served = [run.results.servers[member].latency for member in group.servers]
    counts = [stats.count for stats in served if stats is not None]
    share = sum(counts) / replicas
    assert all(abs(count - share) < 4 * (share * (1 - 1 / replicas)) ** 0.5 for count in counts)


def test_replicas_behind_round_robin_are_en_m1_queues() -> None:
    arrival_rate, service_rate, replicas = 240.0, 100.0, 3
    per_replica = theory.round_robin_share(arrival_rate, replicas, service_rate)
    run = simulate(replica_group(arrival_rate, service_rate, replicas, "round_robin", 800.0), 812)

    assert_agrees(
        estimate(run.latencies - ROUTE_EDGES * EDGE_LATENCY_S),
        per_replica.response,
        "round-robin replicas: client W",
    )
    # Shorter than M/M/1 at the same load: round robin makes arrivals more regular.
    assert per_replica.response < theory.mm1(arrival_rate / replicas, service_rate).response
    group = run.results.replica_groups["api"]
    assert group.latency.mean == pytest.approx(per_replica.response, rel=0.035)
