"""Calls between services: validation of the call graph, answers, lost calls, pools and
balancers as called nodes."""

from typing import Any

import pytest

from asyncflow_backend.runtime.runner import SimulationRunner, run_scenario
from asyncflow_backend.schemas import parse_scenario
from asyncflow_backend.schemas.loading import ScenarioValidationError
from support.documents import cache, call, cpu, edge, io, poisson_arrivals, ram, server
from support.topologies import direct


def document(
    servers: list[dict[str, Any]], edges: list[dict[str, Any]], **nodes: Any
) -> dict[str, Any]:
    """Poisson 20/s into `api`, the first of `servers`, for 60 s; `edges` link the servers."""
    return direct(
        poisson_arrivals(20),
        servers,
        horizon_s=60,
        edges=edges,
        settings={"enabled_sample_metrics": []},
        **nodes,
    )


STEP = "topology_graph.nodes.servers[0].endpoints[0].steps[0]"


def problems(doc: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ScenarioValidationError) as caught:
        SimulationRunner(parse_scenario(doc))
    return {p.path: p.message for p in caught.value.problems}


THREE_TIERS = document(
    [
        server("api", cpu(0.001), call("cache"), cpu(0.001)),
        server("cache", cpu(0.0005), call("db")),
        server("db", cpu(0.002)),
    ],
    [edge("api", "cache"), edge("cache", "api"), edge("cache", "db"), edge("db", "cache")],
)


def test_a_chain_of_calls_answers_every_request_and_counts_each_call_site() -> None:
    results = run_scenario(parse_scenario(THREE_TIERS), seed=1)
    requests = results.requests
    assert requests.failed == 0
    assert requests.completed >= requests.generated - 2
    api, cache = results.calls["api:/#1->cache"], results.calls["cache:/#1->db"]
    assert (api.target, cache.target) == ("cache", "db")
    assert api.answered == cache.answered >= requests.completed
    # The api's call waits for the cache, which waits for the db: 2 ms + 0.5 ms + 4 links.
    assert api.latency.mean == pytest.approx(0.0005 + 0.002 + 0.004, rel=0.02)
    assert results.servers["db"].latency is not None
    assert results.servers["db"].latency.count == cache.answered


def test_a_lost_call_fails_the_request_up_the_chain_with_its_place() -> None:
    doc = document(
        [server("api", ram(64), call("db")), server("db", cpu(0.001))],
        [edge("api", "db"), edge("db", "api", dropout=0.5)],
    )
    runner = SimulationRunner(parse_scenario(doc), seed=2)
    results = runner.run()
    requests = results.requests
    assert requests.failed == requests.failed_at["db-api"] > 0
    assert results.calls["api:/#1->db"].failed == requests.failed
    assert requests.generated == (
        requests.completed + requests.dropped + requests.failed + requests.in_flight
    )
    # Everything the failed requests held is given back: only requests still in the
    # server hold RAM at the end.
    api = runner.model.servers["api"]
    assert api.ram.in_use == 64 * api.in_service
    assert api.in_service <= 2


def test_a_call_holds_a_pool_connection_until_its_answer() -> None:
    doc = document(
        [
            server("api", call("db", pool="db"), db_connection_pool=1),
            server("db", io(0.01, kind="io_wait")),
        ],
        [edge("api", "db"), edge("db", "api")],
    )
    results = run_scenario(parse_scenario(doc), seed=3)
    pool = results.pools["api:db"]
    # 20/s holding the connection for 12 ms each (the I/O and two links): 24% busy.
    assert pool.utilisation == pytest.approx(0.24, abs=0.02)
    assert pool.acquired >= results.requests.completed


def test_a_call_to_a_balancer_is_answered_by_the_server_that_served_it() -> None:
    doc = document(
        [server("api", call("db-lb")), server("db-1", cpu(0.001)), server("db-2", cpu(0.001))],
        [
            edge("api", "db-lb"),
            edge("db-lb", "db-1"),
            edge("db-lb", "db-2"),
            edge("db-1", "api"),
            edge("db-2", "api"),
        ],
        load_balancer={"id": "db-lb", "server_covered": ["db-1", "db-2"]},
    )
    results = run_scenario(parse_scenario(doc), seed=4)
    counts = [results.servers[s].latency.count for s in ("db-1", "db-2")]  # type: ignore[union-attr]
    assert abs(counts[0] - counts[1]) <= 1
    assert results.requests.failed == 0


def test_a_cycle_of_calls_is_refused_naming_it() -> None:
    doc = document(
        [server("api", call("a")), server("a", call("b")), server("b", call("a"))],
        [edge("api", "a"), edge("a", "api"), edge("a", "b"), edge("b", "a")],
    )
    found = problems(doc)
    assert any("a -> b -> a" in message for message in found.values()), found


def test_calls_need_their_edges_both_ways_and_a_callable_target() -> None:
    doc = document(
        [server("api", call("db"), call("client"), call("api")), server("db", cpu(0.001))],
        [edge("api", "db")],
    )
    found = problems(doc)
    steps = "topology_graph.nodes.servers[0].endpoints[0].steps"
    assert "no edge goes from 'db' to 'api'" in found[f"{steps}[0].target"]
    assert "cannot be called" in found[f"{steps}[1].target"]
    assert "calls itself" in found[f"{steps}[2].target"]


def fan_out(wait_for: int | None, dropout: float = 0.0) -> dict[str, Any]:
    """api calls four services at once; each waits 10, 20, 30 or 40 ms of I/O."""
    services = [f"svc-{k}" for k in range(1, 5)]
    step = call(*services) if wait_for is None else call(*services, wait_for=wait_for)
    servers = [server("api", step)]
    edges = []
    for k, name in enumerate(services, start=1):
        servers.append(server(name, io(0.01 * k, kind="io_wait")))
        edges += [edge("api", name), edge(name, "api", dropout=dropout if k == 4 else 0.0)]
    return document(servers, edges)


def test_parallel_calls_wait_for_all_or_the_first_k() -> None:
    links = 0.005  # 1 ms each: generator, client to api, api back, and the call both ways
    every = run_scenario(parse_scenario(fan_out(None)), seed=5)
    first_two = run_scenario(parse_scenario(fan_out(2)), seed=5)
    assert every.latency.mean == pytest.approx(0.040 + links, rel=1e-6)
    assert first_two.latency.mean == pytest.approx(0.020 + links, rel=1e-6)
    # Late answers still arrive and are counted at their call site.
    assert first_two.calls["api:/#0->svc-4"].answered >= first_two.requests.completed


def test_a_lost_parallel_call_fails_only_when_too_few_answers_can_come() -> None:
    fails = run_scenario(parse_scenario(fan_out(None, dropout=0.5)), seed=6).requests
    assert fails.failed > 0
    survives = run_scenario(parse_scenario(fan_out(3, dropout=0.5)), seed=6).requests
    assert survives.failed == 0
    assert survives.completed >= survives.generated - 2


def test_a_call_step_names_a_target_and_nothing_else() -> None:
    with pytest.raises(ScenarioValidationError, match="wait_for is 3 but the step calls only 2"):
        parse_scenario(document([server("api", call("a", "b", wait_for=3))], []))
    with pytest.raises(ScenarioValidationError, match="needs a 'target'"):
        parse_scenario(document([server("api", {"kind": "call"})], []))
    with pytest.raises(
        ScenarioValidationError, match="only a CPU, I/O or RAM step has step_operation, not 'call'"
    ):
        parse_scenario(
            document(
                [
                    server(
                        "api", {"kind": "call", "target": "db", "step_operation": {"cpu_time": 1}}
                    )
                ],
                [],
            )
        )
    found = problems(document([server("api", {**cpu(0.001), "target": "db"})], []))
    assert "only a call step has target, not 'cpu_bound_operation'" in found[f"{STEP}.target"]


def test_a_cache_step_runs_its_hit_or_its_miss_steps() -> None:
    lookup = cache(0.75, hit=[cpu(0.001)], miss=[call("db"), cpu(0.002)])
    doc = document(
        [server("api", lookup, cpu(0.0001)), server("db", cpu(0.001))],
        [edge("api", "db"), edge("db", "api")],
    )
    results = run_scenario(parse_scenario(doc), seed=7)
    misses = results.calls["api:/#0.miss.0->db"].sent
    assert misses / results.requests.generated == pytest.approx(0.25, abs=0.03)
    assert results.requests.failed == 0
    # Hits: 1 + 0.1 ms on the server; misses: the call (1 ms + 2 links), 2 + 0.1 ms.
    api = results.servers["api"].latency
    assert api is not None
    # (plus a little queueing for the core at 3% utilisation).
    assert api.mean == pytest.approx(0.75 * 0.0011 + 0.25 * (0.003 + 0.0021), rel=0.1)


def test_cache_steps_are_checked_where_they_are_written() -> None:
    ram_in_branch = cache(0.5, miss=[ram(10)])
    with pytest.raises(ScenarioValidationError, match="RAM steps belong to the endpoint"):
        parse_scenario(document([server("api", ram_in_branch)], []))
    unknown_pool = cache(0.5, miss=[io(0.01, pool="nope")])
    found = problems(document([server("api", unknown_pool)], []))
    assert (
        "no pool 'nope'"
        in found["topology_graph.nodes.servers[0].endpoints[0].steps[0].miss[0].pool"]
    )
    found = problems(document([server("api", {"kind": "cache"})], []))
    assert "Field required" in found[f"{STEP}.hit_ratio"]
