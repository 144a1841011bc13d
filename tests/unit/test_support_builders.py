"""The shared scenario builders of `tests/support` return fresh copies: editing one result,
or what was passed in, never changes another result."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from asyncflow_backend.schemas import parse_scenario
from support.documents import (
    balancer,
    call,
    cpu,
    edge,
    endpoint,
    io,
    poisson_arrivals,
    ram,
    route,
    scenario_document,
    server,
)
from support.topologies import balanced, direct


def containers(value: Any) -> Iterator[Any]:
    """Every dict and list inside `value`, `value` included."""
    if isinstance(value, dict | list):
        yield value
        for item in value.values() if isinstance(value, dict) else value:
            yield from containers(item)


def shared(first: Any, second: Any) -> list[Any]:
    """The mutable containers that two results hold in common."""
    seen = {id(c) for c in containers(first)}
    return [c for c in containers(second) if id(c) in seen]


def two_servers() -> list[dict[str, Any]]:
    return [server(s, cpu(0.001), io(0.002)) for s in ("srv-1", "srv-2")]


BUILDERS: dict[str, Callable[[], Any]] = {
    "poisson_arrivals": lambda: poisson_arrivals(5.0, user_sampling_window=10),
    "edge": lambda: edge("a", "b", latency={"mean": 0.1, "distribution": "exponential"}),
    "route": lambda: route("gen", "client", "srv", "client"),
    "cpu": lambda: cpu({"mean": 0.01, "distribution": "exponential"}),
    "io": lambda: io(0.01, pool="db"),
    "ram": lambda: ram(64),
    "call": lambda: call("db", retry={"max_attempts": 2}),
    "endpoint": lambda: endpoint("/", cpu(0.001), probability=0.5),
    "server": lambda: server("srv", cpu(0.001), connection_pools={"db": 2}, cpu_cores=2),
    "balancer": lambda: balancer("srv-1", "srv-2", weights={"srv-1": 2}),
    "scenario_document": lambda: scenario_document(
        poisson_arrivals(5.0), two_servers(), route("gen", "client", "srv-1"), horizon_s=10
    ),
    "direct": lambda: direct(poisson_arrivals(5.0), two_servers()[:1], horizon_s=10),
    "balanced": lambda: balanced(poisson_arrivals(5.0), two_servers(), horizon_s=10),
}


@pytest.mark.parametrize("name", BUILDERS)
def test_two_calls_give_equal_results_that_share_nothing(name: str) -> None:
    first, second = BUILDERS[name](), BUILDERS[name]()

    assert first == second
    assert shared(first, second) == []


def test_editing_the_inputs_after_building_changes_nothing() -> None:
    step = cpu(0.001)
    pools = {"db": 2}
    servers = [server("srv-1", step, connection_pools=pools)]
    built = direct(poisson_arrivals(5.0), servers, horizon_s=10)

    assert shared(built, [step, pools, servers]) == []


def test_servers_behind_a_balancer_have_their_own_steps() -> None:
    """The same steps given to two servers are copied: editing one server edits only it."""
    steps = [cpu(0.001), io(0.002)]
    document = balanced(
        poisson_arrivals(5.0), [server(s, *steps) for s in ("srv-1", "srv-2")], horizon_s=10
    )
    first, second = document["topology_graph"]["nodes"]["servers"]

    first["endpoints"][0]["steps"][0]["step_operation"]["cpu_time"] = 0.5
    first["endpoints"][0]["steps"].append(ram(64))

    assert second["endpoints"][0]["steps"] == [cpu(0.001), io(0.002)]


def test_the_built_route_documents_are_valid_scenarios() -> None:
    for name in ("direct", "balanced"):
        scenario = parse_scenario(BUILDERS[name]())
        assert scenario.topology_graph.nodes.servers[0].id == "srv-1"
