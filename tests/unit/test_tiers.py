"""Several load balancers (tiers): an edge tier in front of API servers and an internal tier
in front of database replicas that call steps name; the single `load_balancer` keeps working."""

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from asyncflow_backend.builder import ScenarioBuilder, exponential
from asyncflow_backend.runtime.runner import SimulationRunner, run_scenario
from asyncflow_backend.schemas import ScenarioValidationError, parse_scenario
from asyncflow_backend.schemas.limits import ScenarioLimits, check_limits
from asyncflow_backend.schemas.warnings import find_warnings

TIERS = Path(__file__).parents[2] / "example" / "tiers.yml"
EDGE_LB = "topology_graph.nodes.load_balancers[0]"
DB_LB = "topology_graph.nodes.load_balancers[1]"


def tiers() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(TIERS.read_text(encoding="utf-8"))
    document["sim_settings"]["total_simulation_time"] = 20
    return document


def problems(document: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ScenarioValidationError) as caught:
        SimulationRunner(parse_scenario(document))
    return {p.path: p.message for p in caught.value.problems}


def test_both_tiers_share_their_requests_out() -> None:
    results = run_scenario(parse_scenario(tiers()), seed=5)
    servers = results.servers
    counts = {sid: stats.latency.count for sid, stats in servers.items() if stats.latency}
    # Round robin at both tiers: the API servers split every request, the replicas every miss.
    assert abs(counts["api-1"] - counts["api-2"]) <= 1
    # Those still on a replica at the horizon are not counted yet: a few at most.
    assert abs(counts["db-1"] - counts["db-2"]) <= 3
    misses = sum(site.answered for site in results.calls.values())
    assert counts["db-1"] + counts["db-2"] == misses
    assert misses == pytest.approx(0.5 * (counts["api-1"] + counts["api-2"]), rel=0.05)
    assert results.requests.failed == results.requests.dropped == 0


def test_one_balancer_written_in_the_list_runs_as_the_single_field() -> None:
    document = copy.deepcopy(tiers())
    nodes = document["topology_graph"]["nodes"]
    edge_lb, db_lb = nodes.pop("load_balancers")
    single = copy.deepcopy(document)
    single["topology_graph"]["nodes"] |= {"load_balancer": edge_lb, "load_balancers": [db_lb]}
    listed = copy.deepcopy(document)
    listed["topology_graph"]["nodes"]["load_balancers"] = [edge_lb, db_lb]
    one = run_scenario(parse_scenario(single), seed=3)
    two = run_scenario(parse_scenario(listed), seed=3)
    assert one.latency.mean == two.latency.mean
    assert one.requests == two.requests


def test_balancer_ids_are_unique_across_both_fields() -> None:
    document = tiers()
    document["topology_graph"]["nodes"]["load_balancers"][1]["id"] = "edge-lb"
    found = problems(document)
    assert "'edge-lb'" in found[f"{DB_LB}.id"]


def test_a_balancer_of_the_list_covers_known_servers_over_edges() -> None:
    document = tiers()
    document["topology_graph"]["nodes"]["load_balancers"][1]["server_covered"].append("db-3")
    found = problems(document)
    assert "unknown server 'db-3'" in found[f"{DB_LB}.server_covered[2]"]
    document = tiers()
    edges = document["topology_graph"]["edges"]
    document["topology_graph"]["edges"] = [e for e in edges if e["id"] != "db-lb-db-2"]
    found = problems(document)
    assert "no edge goes from 'db-lb'" in found[f"{DB_LB}.server_covered[1]"]


def test_a_balancer_covers_servers_only() -> None:
    document = tiers()
    document["topology_graph"]["nodes"]["load_balancers"][0]["server_covered"].append("db-lb")
    found = problems(document)
    assert "covers 'db-lb', which is not a server" in found[f"{EDGE_LB}.server_covered[2]"]


def test_weights_are_checked_per_balancer() -> None:
    document = tiers()
    document["topology_graph"]["nodes"]["load_balancers"][1]["weights"] = {"api-1": 2}
    found = problems(document)
    assert "weighted_round_robin only" in found[f"{DB_LB}.weights"]
    assert "'db-lb' does not cover 'api-1'" in found[f"{DB_LB}.weights.api-1"]


def test_an_outage_emptying_one_tier_holds_or_rejects_its_calls() -> None:
    document = tiers()
    document["events"] = [
        {
            "event_id": f"{sid}-down",
            "target_id": sid,
            "start": {"kind": "server_down", "t_start": 5},
            "end": {"kind": "server_up", "t_end": 10},
        }
        for sid in ("db-1", "db-2")
    ]
    waited = run_scenario(parse_scenario(document), seed=1)  # valid: it parses
    assert "db-lb" not in waited.requests.failed_at  # the misses wait at db-lb
    document["topology_graph"]["nodes"]["load_balancers"][1]["when_none_up"] = "reject"
    rejected = run_scenario(parse_scenario(document), seed=1)
    assert rejected.requests.failed_at["db-lb"] > 0  # call_rejected, at the balancer
    document["events"].pop()
    results = run_scenario(parse_scenario(document), seed=1)
    # While db-1 is out, db-2 takes every miss.
    one, two = results.servers["db-1"].latency, results.servers["db-2"].latency
    assert one is not None
    assert two is not None
    assert two.count > one.count


def test_a_balancer_fed_by_nothing_is_a_warning() -> None:
    document = tiers()
    nodes = document["topology_graph"]["nodes"]
    nodes["load_balancers"].append(
        {"id": "spare-lb", "server_covered": ["db-1"], "algorithms": "random"}
    )
    document["topology_graph"]["edges"].append(
        {
            "id": "spare-lb-db-1",
            "source": "spare-lb",
            "target": "db-1",
            "latency": {"mean": 0.001, "distribution": "deterministic"},
            "dropout_rate": 0,
        }
    )
    warnings = {w.path: w.message for w in find_warnings(parse_scenario(document))}
    assert "'spare-lb' is fed by nothing" in warnings["topology_graph.nodes.load_balancers[2]"]
    assert not any("fed by nothing" in m for m in find_warnings_of(tiers()))


def find_warnings_of(document: dict[str, Any]) -> list[str]:
    return [w.message for w in find_warnings(parse_scenario(document))]


def test_every_balancer_counts_as_a_node_in_the_limits() -> None:
    scenario = parse_scenario(tiers())
    found = check_limits(scenario, ScenarioLimits(max_nodes=6))
    assert [p.message.split(" exceeds")[0] for p in found] == ["7 nodes"]


def test_the_builder_writes_several_balancers_as_a_list() -> None:
    builder = (
        ScenarioBuilder()
        .generator("gen", users=10, rpm=60)
        .client("client")
        .load_balancer("edge-lb", covers=["api"])
        .load_balancer("db-lb", covers=["db-1", "db-2"], algorithm="random")
        .server("api")
        .endpoint("/")
        .parse(0.001)
        .call("db-lb")
        .server("db-1")
        .endpoint("/q")
        .cpu(0.001)
        .server("db-2")
        .endpoint("/q")
        .cpu(0.001)
        .chain("gen", "client", "edge-lb", "api", "client", latency=exponential(0.001))
        .chain("api", "db-lb", "db-1", "api", latency=0.001)
        .edge("db-lb", "db-2", latency=0.001)
        .edge("db-2", "api", latency=0.001)
    )
    nodes = builder.to_dict()["topology_graph"]["nodes"]
    assert "load_balancer" not in nodes
    assert [lb["id"] for lb in nodes["load_balancers"]] == ["edge-lb", "db-lb"]
    results = run_scenario(builder.settings(horizon=20).build(), seed=2)
    assert results.requests.completed > 0
