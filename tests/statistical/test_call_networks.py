"""Calls between services against queueing theory.

A server that runs an exponential CPU step and then calls a second server is a
tandem of two M/M/1 stations: the caller gives its core back while it waits,
so its CPU is an M/M/1 queue of its own, and by Burke's theorem its departures
are a Poisson stream into the called station (fixed links only shift it). With
the call made by one endpoint of two, picked independently with probability
p, the called station sees a Poisson stream of rate p lambda: an open Jackson
network, whose mean response time is the sum over stations of the visits
times 1 / (mu - lambda_i) (product form). Two calls sent at once to services
that answer after independent exponential waits return, joined, at the
maximum of the two, and with `wait_for: 1` at their minimum.
"""

from typing import Any

import pytest
from queue_models import (
    EDGE_LATENCY_S,
    assert_agrees,
    estimate,
    over_fixed_links,
    simulate,
)

from asyncflow_backend.metrics import theory
from asyncflow_backend.schemas import Scenario, parse_scenario
from support.documents import (
    balancer,
    cache,
    call,
    cpu,
    endpoint,
    exponential,
    io,
    poisson_arrivals,
    route,
    server,
)
from support.topologies import direct

pytestmark = pytest.mark.statistical


def cpu_of(service_rate: float) -> dict[str, Any]:
    """A CPU step of exponential time of rate `service_rate`."""
    return cpu(exponential(1 / service_rate))


def api_and_db(
    arrival_rate: float, endpoints: list[dict[str, Any]], db_rate: float, horizon_s: float
) -> Scenario:
    """Poisson arrivals into `api` (with `endpoints`), whose calls go to an M/M/1 `db`."""
    servers = [
        server("api", endpoints=endpoints),
        server("db", cpu_of(db_rate), endpoint_name="/query"),
    ]
    return over_fixed_links(
        poisson_arrivals(arrival_rate),
        servers,
        horizon_s=horizon_s,
        metrics=["ready_queue_len"],
        links=[("api", "db"), ("db", "api")],
    )


def caller_and_callee(
    arrival_rate: float, api_rate: float, db_rate: float, call_share: float, horizon_s: float
) -> Scenario:
    """`api` serves every request; a share `call_share` of them then call `db`."""
    endpoints = [endpoint("/calls", cpu_of(api_rate), call("db"), probability=call_share)]
    if call_share < 1:
        endpoints.append(endpoint("/local", cpu_of(api_rate), probability=1 - call_share))
    return api_and_db(arrival_rate, endpoints, db_rate, horizon_s)


def test_a_call_makes_a_tandem_of_two_mm1_stations() -> None:
    arrival_rate, api_rate, db_rate = 60.0, 100.0, 80.0
    run = simulate(caller_and_callee(arrival_rate, api_rate, db_rate, 1.0, 4000.0), 401)
    api = theory.mm1(arrival_rate, api_rate)
    db = theory.mm1(arrival_rate, db_rate)

    links = 5 * EDGE_LATENCY_S
    assert_agrees(estimate(run.latencies - links), api.response + db.response, "tandem W")
    call = run.results.calls["api:/calls#1->db"]
    assert call.failed == 0
    assert call.latency.mean == pytest.approx(db.response, rel=0.035)
    assert_agrees(
        estimate(run.series("ready_queue_len", "db")),
        db.queue_length,
        "db Lq",
        max_relative_error=0.1,
    )


def test_a_call_from_one_endpoint_of_two_is_an_open_jackson_network() -> None:
    arrival_rate, api_rate, db_rate, share = 60.0, 100.0, 40.0, 0.4
    run = simulate(caller_and_callee(arrival_rate, api_rate, db_rate, share, 4000.0), 402)
    api = theory.mm1(arrival_rate, api_rate)
    db = theory.mm1(share * arrival_rate, db_rate)

    expected = api.response + share * (db.response + 2 * EDGE_LATENCY_S)
    assert_agrees(estimate(run.latencies - 3 * EDGE_LATENCY_S), expected, "Jackson W")
    assert run.results.calls["api:/calls#1->db"].latency.mean == pytest.approx(
        db.response, rel=0.035
    )
    assert_agrees(
        estimate(run.series("ready_queue_len", "db")),
        db.queue_length,
        "db Lq",
        max_relative_error=0.1,
    )


def fork_join(wait_for: int | None, means: tuple[float, float], horizon_s: float) -> Scenario:
    """`api` calls two services at once; each answers after an exponential I/O wait (no
    queue, so each answer time is exactly that exponential)."""
    fork = call("left", "right") if wait_for is None else call("left", "right", wait_for=wait_for)
    branches = [
        server(name, io(exponential(mean), kind="io_wait"))
        for name, mean in zip(("left", "right"), means, strict=True)
    ]
    edges = [
        e for name in ("left", "right") for e in route("api", name, "api", latency=EDGE_LATENCY_S)
    ]
    return parse_scenario(
        direct(
            poisson_arrivals(50.0),
            [server("api", fork), *branches],
            horizon_s=horizon_s,
            latency=EDGE_LATENCY_S,
            edges=edges,
            settings={"enabled_sample_metrics": []},
        )
    )


@pytest.mark.parametrize(
    ("wait_for", "seed"),
    [pytest.param(None, 403, id="join-all"), pytest.param(1, 404, id="first-1")],
)
def test_fork_join_of_two_exponential_calls_waits_for_their_maximum_or_minimum(
    wait_for: int | None, seed: int
) -> None:
    """E[max(X, Y)] = 1/a + 1/b - 1/(a + b) and E[min(X, Y)] = 1/(a + b) for independent
    exponentials of rates a and b."""
    means = (0.02, 0.03)
    a, b = 1 / means[0], 1 / means[1]
    run = simulate(fork_join(wait_for, means, horizon_s=1600.0), seed)
    exact = 1 / (a + b) if wait_for == 1 else 1 / a + 1 / b - 1 / (a + b)
    assert_agrees(estimate(run.latencies - 5 * EDGE_LATENCY_S), exact, "fork-join W")
    # The breakdown books the join's wait to the caller, and nothing to the branches.
    parts = {(p.place, p.category): p.mean_s for p in run.results.breakdown}
    assert parts[("api", "calls")] == pytest.approx(exact, rel=0.035)
    assert not {place for place, _ in parts} & {"left", "right"}


def test_a_cache_thins_the_arrivals_at_the_database_behind_it() -> None:
    """A lookup that misses with probability 1 - h calls an M/M/1 database: the misses
    are an independent thinning of a Poisson stream, so the database is an M/M/1 at
    (1 - h) lambda, and W = (1 - h) (W_db + two links)."""
    arrival_rate, db_rate, hit_ratio = 100.0, 50.0, 0.7
    lookup = cache(hit_ratio, hit=[io(0.0005, kind="io_cache")], miss=[call("db")])
    scenario = api_and_db(arrival_rate, [endpoint("/", lookup)], db_rate, horizon_s=3000.0)
    run = simulate(scenario, 405)
    db = theory.mm1((1 - hit_ratio) * arrival_rate, db_rate)

    expected = hit_ratio * 0.0005 + (1 - hit_ratio) * (db.response + 2 * EDGE_LATENCY_S)
    assert_agrees(estimate(run.latencies - 3 * EDGE_LATENCY_S), expected, "cache W")
    misses = run.results.calls["api:/#0.miss.0->db"]
    assert misses.sent / run.results.requests.generated == pytest.approx(1 - hit_ratio, abs=0.01)
    assert misses.latency.mean == pytest.approx(db.response, rel=0.035)
    assert_agrees(
        estimate(run.series("ready_queue_len", "db")),
        db.queue_length,
        "db Lq",
        max_relative_error=0.1,
    )


def api_and_replicas(
    arrival_rate: float, api_rate: float, db_rate: float, policy: str, horizon_s: float
) -> Scenario:
    """Poisson arrivals into an M/M/1 `api` that calls `db-lb`, an internal balancer in
    front of two exponential replicas; the answers come straight back to `api`."""
    replicas = ["db-1", "db-2"]
    links = [("api", "db-lb")]
    for replica in replicas:
        links += [("db-lb", replica), (replica, "api")]
    servers = [server("api", cpu_of(api_rate), call("db-lb"))]
    servers += [server(r, cpu_of(db_rate), endpoint_name="/query") for r in replicas]
    return over_fixed_links(
        poisson_arrivals(arrival_rate),
        servers,
        horizon_s=horizon_s,
        metrics=["ready_queue_len"],
        links=links,
        load_balancers=[balancer(*replicas, algorithm=policy, balancer_id="db-lb")],
    )


@pytest.mark.parametrize(
    ("policy", "seed"),
    [pytest.param("random", 406, id="random"), pytest.param("round_robin", 407, id="round-robin")],
)
def test_an_internal_balancer_in_front_of_two_replicas(policy: str, seed: int) -> None:
    """The api is an M/M/1 whose departures are Poisson (Burke), shifted by a fixed link.
    A random balancer splits them into two independent Poisson streams at lambda/2, so
    each replica is an M/M/1 at lambda/2 and the network is an open Jackson network:
    W = W_api + W_replica. Round robin sends every other query to each replica, whose
    arrivals are then Erlang-2: an E2/M/1 queue (`theory.round_robin_share`)."""
    arrival_rate, api_rate, db_rate = 60.0, 100.0, 50.0
    run = simulate(api_and_replicas(arrival_rate, api_rate, db_rate, policy, 3000.0), seed)
    api = theory.mm1(arrival_rate, api_rate)
    replica = (
        theory.mm1(arrival_rate / 2, db_rate)
        if policy == "random"
        else theory.round_robin_share(arrival_rate, 2, db_rate)
    )

    links = 6 * EDGE_LATENCY_S
    assert_agrees(estimate(run.latencies - links), api.response + replica.response, "W")
    call = run.results.calls["api:/#1->db-lb"]
    assert call.failed == 0
    assert call.latency.mean == pytest.approx(replica.response, rel=0.035)
    for replica_id in ("db-1", "db-2"):
        assert_agrees(
            estimate(run.series("ready_queue_len", replica_id)),
            replica.queue_length,
            f"{replica_id} Lq",
            max_relative_error=0.1,
        )
    # The breakdown books the api's queueing and CPU to it, and the queries' to the replicas.
    parts = {(p.place, p.category): p.mean_s for p in run.results.breakdown}
    assert parts[("api", "wait")] == pytest.approx(api.wait, rel=0.05)
    assert parts[("api", "cpu")] == pytest.approx(1 / api_rate, rel=0.035)
    on_replicas = {c: parts[("db-1", c)] + parts[("db-2", c)] for c in ("wait", "cpu")}
    assert on_replicas["wait"] == pytest.approx(replica.wait, rel=0.05)
    assert on_replicas["cpu"] == pytest.approx(1 / db_rate, rel=0.035)
