"""Checks that span sections: ids, routes back to the client, event windows, RAM.

Each test breaks one rule in an otherwise valid document and asserts the
problem's path and that its message names the ids involved.
"""

from typing import Any

import pytest

from asyncflow_backend.builder import ScenarioBuilder, exponential
from asyncflow_backend.runtime.runner import SimulationRunner, run_scenario
from asyncflow_backend.schemas import Problem, Scenario, ScenarioValidationError, parse_scenario
from asyncflow_backend.schemas.validation import find_problems

EDGES = "topology_graph.edges"
LB = "topology_graph.nodes.load_balancer"


def balanced(*server_ids: str) -> ScenarioBuilder:
    """Generator -> client -> lb -> servers -> client, valid, 60 s."""
    servers = server_ids or ("srv-1", "srv-2")
    builder = (
        ScenarioBuilder()
        .generator("gen", users=10, rpm=30)
        .client("client")
        .load_balancer("lb", covers=servers)
    )
    for server_id in servers:
        builder.server(server_id).endpoint("/api").parse(0.002).ram(64).io("io_db", 0.01)
    builder.chain("gen", "client", "lb", latency=exponential(0.002))
    for server_id in servers:
        builder.edge("lb", server_id, latency=exponential(0.001))
    for server_id in servers:
        builder.edge(server_id, "client", latency=exponential(0.002))
    return builder.settings(horizon=60)


def direct() -> ScenarioBuilder:
    """Generator -> client -> srv -> client, no balancer."""
    return (
        ScenarioBuilder()
        .generator("gen", users=10, rpm=30)
        .client("client")
        .server("srv", ram_mb=512)
        .endpoint("/api")
        .parse(0.002)
        .ram(64)
        .chain("gen", "client", "srv", "client", latency=exponential(0.002))
        .settings(horizon=60)
    )


def problems(document: dict[str, Any]) -> list[Problem]:
    with pytest.raises(ScenarioValidationError) as caught:
        parse_scenario(document)
    return caught.value.problems


def problem_at(document: dict[str, Any], path: str, *named: str) -> Problem:
    """The problem at `path`, asserting it names every id in `named`."""
    found = problems(document)
    located = [p for p in found if p.path == path]
    assert located, f"no problem at {path}: {found}"
    for name in named:
        assert f"'{name}'" in located[0].message, located[0]
    return located[0]


def edge_index(document: dict[str, Any], edge_id: str) -> int:
    edges = document["topology_graph"]["edges"]
    return next(i for i, e in enumerate(edges) if e["id"] == edge_id)


def test_base_scenarios_are_valid() -> None:
    assert find_problems(balanced().build()) == []
    assert find_problems(direct().build()) == []


# Unknown ids.


def test_edge_to_an_unknown_node() -> None:
    document = balanced().to_dict()
    i = edge_index(document, "srv-1-client")
    document["topology_graph"]["edges"][i]["target"] = "ghost"

    problem_at(document, f"{EDGES}[{i}].target", "srv-1-client", "ghost")


def test_edge_from_an_unknown_node() -> None:
    document = balanced().to_dict()
    i = edge_index(document, "lb-srv-2")
    document["topology_graph"]["edges"][i]["source"] = "ghost"

    problem_at(document, f"{EDGES}[{i}].source", "lb-srv-2", "ghost")


def test_load_balancer_covering_an_unknown_server() -> None:
    document = balanced().to_dict()
    document["topology_graph"]["nodes"]["load_balancer"]["server_covered"].append("srv-9")

    problem_at(document, f"{LB}.server_covered[2]", "lb", "srv-9")


def test_outage_of_an_unknown_server() -> None:
    document = balanced().outage("srv-9", start=5, end=10, event_id="down").to_dict()

    problem_at(document, "events[0].target_id", "down", "srv-9")


def test_spike_on_an_unknown_edge() -> None:
    document = balanced().spike("wan", start=5, end=10, extra_s=0.1, event_id="slow").to_dict()

    problem_at(document, "events[0].target_id", "slow", "wan")


def test_outage_must_target_a_server_and_spike_an_edge() -> None:
    document = (
        balanced()
        .outage("lb-srv-1", start=5, end=10, event_id="down")
        .spike("srv-1", start=5, end=10, extra_s=0.1, event_id="slow")
        .to_dict()
    )

    assert "not a server" in problem_at(document, "events[0].target_id", "lb-srv-1").message
    assert "not an edge" in problem_at(document, "events[1].target_id", "srv-1").message


# Duplicate ids.


def test_duplicate_server_ids() -> None:
    document = balanced("srv-1", "srv-2").to_dict()
    document["topology_graph"]["nodes"]["servers"][1]["id"] = "srv-1"

    problem_at(document, "topology_graph.nodes.servers[0].id", "srv-1")
    problem_at(document, "topology_graph.nodes.servers[1].id", "srv-1")


def test_duplicate_edge_ids() -> None:
    document = balanced().to_dict()
    document["topology_graph"]["edges"][5]["id"] = "srv-1-client"

    problem_at(document, f"{EDGES}[4].id", "srv-1-client")
    problem_at(document, f"{EDGES}[5].id", "srv-1-client")


def test_an_edge_cannot_share_an_id_with_a_node() -> None:
    document = balanced().to_dict()
    document["topology_graph"]["edges"][1]["id"] = "lb"

    problem_at(document, f"{LB}.id", "lb")
    problem_at(document, f"{EDGES}[1].id", "lb")


def test_generator_and_client_ids_must_differ() -> None:
    document = direct().to_dict()
    document["topology_graph"]["nodes"]["client"]["id"] = "gen"

    problem_at(document, "rqs_input.id", "gen")
    problem_at(document, "topology_graph.nodes.client.id", "gen")


def test_duplicate_event_ids() -> None:
    document = (
        balanced()
        .outage("srv-1", start=5, end=10, event_id="maintenance")
        .outage("srv-2", start=20, end=30, event_id="maintenance")
        .to_dict()
    )

    problem_at(document, "events[0].event_id", "maintenance")
    problem_at(document, "events[1].event_id", "maintenance")


def test_duplicate_endpoint_names_within_a_server() -> None:
    document = direct().endpoint("/health").parse(0.001).endpoint("/api").parse(0.001).to_dict()

    path = "topology_graph.nodes.servers[0].endpoints[2].endpoint_name"
    problem_at(document, path, "srv", "/api")


def test_the_same_endpoint_name_on_two_servers_is_fine() -> None:
    assert balanced("a", "b").build().topology_graph.nodes.servers[1].endpoints[0].endpoint_name


# Routes: every request must get from the generator back to the client.


def test_server_without_an_out_edge() -> None:
    document = balanced().to_dict()
    del document["topology_graph"]["edges"][edge_index(document, "srv-2-client")]

    problem = problem_at(document, EDGES, "srv-2", "client")
    assert "no edge leaves" in problem.message


def test_loop_through_the_load_balancer() -> None:
    document = balanced().to_dict()
    i = edge_index(document, "srv-2-client")
    document["topology_graph"]["edges"][i]["target"] = "lb"

    problem = problem_at(document, f"{EDGES}[{i}].target", "srv-2-client", "lb")
    assert "loop" in problem.message


def test_loop_between_two_servers() -> None:
    document = (
        ScenarioBuilder()
        .generator("gen", users=10, rpm=30)
        .client("client")
        .server("a")
        .endpoint("/x")
        .parse(0.001)
        .server("b")
        .endpoint("/y")
        .parse(0.001)
        .chain("gen", "client", "a", "b", "a", latency=0.001)
        .to_dict()
    )

    problem = problem_at(document, f"{EDGES}[3].target", "b-a", "a")
    assert "never reach the client" in problem.message


def test_a_chain_of_servers_is_a_valid_route() -> None:
    scenario = (
        ScenarioBuilder()
        .generator("gen", users=10, rpm=30)
        .client("client")
        .server("web")
        .endpoint("/x")
        .parse(0.001)
        .server("auth")
        .endpoint("/y")
        .io("io_cache", 0.001)
        .chain("gen", "client", "web", "auth", "client", latency=0.001)
        .settings(horizon=20)
        .build()
    )

    assert run_scenario(scenario, seed=1).requests.completed > 0


def test_no_edge_leaves_the_generator() -> None:
    document = direct().to_dict()
    del document["topology_graph"]["edges"][0]

    problem_at(document, EDGES, "gen")


def test_generator_must_feed_the_client() -> None:
    document = direct().to_dict()
    document["topology_graph"]["edges"][0]["target"] = "srv"

    problem_at(document, f"{EDGES}[0].target", "gen", "client")


def test_no_edge_leaves_the_client() -> None:
    document = direct().to_dict()
    del document["topology_graph"]["edges"][1]

    problem_at(document, EDGES, "client")


def test_nothing_may_point_back_at_the_generator() -> None:
    document = direct().to_dict()
    document["topology_graph"]["edges"][2]["target"] = "gen"

    problem_at(document, f"{EDGES}[2].target", "srv-client", "gen")


def test_an_edge_cannot_start_and_end_at_the_same_node() -> None:
    document = direct().to_dict()
    document["topology_graph"]["edges"][2]["target"] = "srv"

    problem_at(document, f"{EDGES}[2].target", "srv-client", "srv")


def test_only_a_load_balancer_fans_out() -> None:
    document = balanced().edge("client", "srv-1", latency=0.001).to_dict()

    problem = problem_at(document, f"{EDGES}[6].source", "client")
    assert "only a load balancer" in problem.message


def test_load_balancer_needs_an_edge_to_each_covered_server() -> None:
    document = balanced().to_dict()
    del document["topology_graph"]["edges"][edge_index(document, "lb-srv-2")]

    problem_at(document, f"{LB}.server_covered[1]", "lb", "srv-2")


def test_load_balancer_edges_go_only_to_covered_servers() -> None:
    document = balanced().to_dict()
    document["topology_graph"]["nodes"]["load_balancer"]["server_covered"] = ["srv-1"]

    i = edge_index(document, "lb-srv-2")
    problem_at(document, f"{EDGES}[{i}].target", "lb", "srv-2")


def test_a_server_nothing_reaches_is_accepted_and_idle() -> None:
    # AsyncFlow accepts it; it must not crash the engine, even without an out edge.
    builder = direct().server("spare").endpoint("/x").parse(0.001).seed(3)

    results = run_scenario(builder.build())

    assert results.requests.completed > 0
    assert results.servers["spare"].cpu_utilisation == 0


# Event windows.


def test_event_ending_past_the_horizon() -> None:
    document = balanced().outage("srv-1", start=50, end=61, event_id="late").to_dict()

    problem = problem_at(document, "events[0].end.t_end", "late")
    assert "61" in problem.message
    assert "60" in problem.message


def test_event_starting_past_the_horizon() -> None:
    document = (
        balanced().spike("lb-srv-1", start=70, end=80, extra_s=0.1, event_id="later").to_dict()
    )

    problem_at(document, "events[0].start.t_start", "later")
    problem_at(document, "events[0].end.t_end", "later")


def test_an_event_may_end_exactly_at_the_horizon() -> None:
    assert balanced().outage("srv-1", start=30, end=60).build().events


def test_overlapping_outages_of_one_server() -> None:
    document = (
        balanced("a", "b", "c")
        .outage("a", start=10, end=30, event_id="first")
        .outage("a", start=25, end=40, event_id="second")
        .to_dict()
    )

    problem = problem_at(document, "events[1].start.t_start", "second", "a")
    assert "overlaps" in problem.message


def test_overlap_is_found_whatever_the_order_of_the_events() -> None:
    document = (
        balanced("a", "b", "c")
        .outage("a", start=25, end=40, event_id="listed-first")
        .outage("a", start=10, end=30, event_id="listed-second")
        .to_dict()
    )

    problem_at(document, "events[0].start.t_start", "listed-first", "a")


def test_back_to_back_outages_do_not_overlap() -> None:
    scenario = (
        balanced("a", "b")
        .outage("a", start=10, end=20)
        .outage("a", start=20, end=30)
        .outage("b", start=30, end=40)
        .build()
    )

    assert scenario.events is not None
    assert len(scenario.events) == 3


def test_all_servers_down_at_once_is_accepted() -> None:
    # Requests wait at the balancer, or are rejected there (`when_none_up`).
    scenario = (
        balanced("a", "b", "c")
        .outage("a", start=10, end=30, event_id="a-down")
        .outage("b", start=20, end=40, event_id="b-down")
        .outage("c", start=25, end=26, event_id="c-down")
        .build()
    )

    assert scenario.events is not None


def test_the_only_server_may_go_down() -> None:
    # Requests wait at its door, or are rejected there (`when_down`).
    scenario = direct().outage("srv", start=10, end=20, event_id="gone").build()

    assert scenario.events is not None


def test_overlapping_outages_of_one_server_are_still_refused() -> None:
    document = (
        direct()
        .outage("srv", start=10, end=20, event_id="first")
        .outage("srv", start=15, end=25, event_id="second")
        .to_dict()
    )

    assert "overlaps" in problem_at(document, "events[1].start.t_start", "second").message


def test_handing_over_at_the_same_instant_keeps_one_server_up() -> None:
    scenario = (
        balanced("a", "b").outage("a", start=10, end=20).outage("b", start=20, end=30).build()
    )

    assert scenario.events is not None


# RAM larger than the server.


def test_endpoint_needing_more_ram_than_its_server() -> None:
    document = direct().ram(300).ram(200).to_dict()  # 64 + 300 + 200 > 512

    problem = problem_at(
        document, "topology_graph.nodes.servers[0].endpoints[0].steps", "/api", "srv"
    )
    assert "564 MB" in problem.message
    assert "512 MB" in problem.message


def test_ram_exactly_the_server_size_is_fine() -> None:
    assert direct().ram(448).build()


# The runner applies the same checks to scenarios built without parse_scenario.


def test_runner_rejects_an_unchecked_scenario() -> None:
    document = balanced().to_dict()
    document["topology_graph"]["edges"][0]["target"] = "srv-1"
    unchecked = Scenario.model_validate(document)  # the models alone miss route problems

    with pytest.raises(ScenarioValidationError) as caught:
        SimulationRunner(unchecked)

    assert any("gen" in p.message for p in caught.value.problems)


def test_problems_render_as_path_and_message() -> None:
    problem = Problem(("topology_graph", "edges", 2, "target"), "edge 'x' ends at unknown 'y'")

    assert str(problem) == "topology_graph.edges[2].target: edge 'x' ends at unknown 'y'"
    assert Problem((), "empty").path == "(scenario)"
    error = ScenarioValidationError([problem, Problem(("seed",), "bad")])
    assert str(error).splitlines() == [str(problem), "seed: bad"]
