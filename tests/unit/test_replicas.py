"""Replica groups: `replicas: N` written out as N servers, checked, counted and summed up."""

from typing import Any

import pytest

from asyncflow_backend.builder import ScenarioBuilder
from asyncflow_backend.experiments import ExperimentSpec, prepare, run_experiment
from asyncflow_backend.experiments.measure import metric_names
from asyncflow_backend.runtime.runner import SimulationRunner, run_scenario
from asyncflow_backend.schemas.limits import ScenarioLimits, check_limits, sampled_series_count
from asyncflow_backend.schemas.loading import ScenarioValidationError, parse_scenario
from asyncflow_backend.schemas.replicas import expand_replicas, replica_groups
from asyncflow_backend.schemas.warnings import find_warnings
from support.documents import (
    balancer,
    call,
    cpu,
    edge,
    exponential,
    outage,
    poisson_arrivals,
    scenario_document,
    server,
    spike,
)
from support.topologies import balanced

SERVERS = ("topology_graph", "nodes", "servers")


def api_group(replicas: int = 3, *, rate: float = 60, cpu_s: float = 0.01, **options: Any) -> Any:
    """gen -> client -> lb -> api (a group of `replicas`) -> client; api's one endpoint runs
    `cpu_s` of exponential CPU; `options` go to `balanced` (`algorithm`, `events`...)."""
    return balanced(
        poisson_arrivals(rate),
        [server("api", cpu(exponential(cpu_s)), replicas=replicas)],
        horizon_s=options.pop("horizon_s", 20),
        **options,
    )


def api_group_calling_db(replicas: int, *, db_replicas: int | None = None) -> Any:
    """api (a group) behind `lb`, calling `db` (a group too when `db_replicas`) through
    the internal balancer `db-lb`, whose answers come straight back to each api replica."""
    servers = [
        server("api", cpu(exponential(0.005)), call("db-lb"), replicas=replicas),
        server("db", cpu(exponential(0.002)), replicas=db_replicas),
    ]
    edges = [
        edge("gen", "client"),
        edge("client", "lb"),
        edge("lb", "api"),
        edge("api", "client"),
        edge("api", "db-lb"),
        edge("db-lb", "db"),
        edge("db", "api"),
    ]
    return scenario_document(
        poisson_arrivals(40),
        servers,
        edges,
        horizon_s=20,
        load_balancer=balancer("api"),
        load_balancers=[balancer("db", balancer_id="db-lb", algorithm="random")],
    )


def problems(document: Any) -> list[str]:
    with pytest.raises(ScenarioValidationError) as caught:
        parse_scenario(document)
    return [str(p) for p in caught.value.problems]


# Expansion.


def test_a_group_becomes_its_replicas_covered_by_the_balancer_with_edges_copied() -> None:
    built = expand_replicas(parse_scenario(api_group(3)))

    nodes = built.topology_graph.nodes
    assert [s.id for s in nodes.servers] == ["api-1", "api-2", "api-3"]
    assert all(s.replicas is None for s in nodes.servers)
    assert nodes.load_balancer is not None
    assert nodes.load_balancer.server_covered == ["api-1", "api-2", "api-3"]
    ends = {(e.id, e.source, e.target) for e in built.topology_graph.edges}
    assert {("lb-api-2", "lb", "api-2"), ("api-client-3", "api-3", "client")} <= ends
    assert len(built.topology_graph.edges) == 2 + 3 + 3


def test_edges_between_two_groups_are_copied_for_each_pair() -> None:
    built = expand_replicas(parse_scenario(api_group_calling_db(2, db_replicas=3)))

    answers = sorted(e.id for e in built.topology_graph.edges if e.id.startswith("db-api"))
    assert answers == [f"db-api-{i}-{j}" for i in (1, 2, 3) for j in (1, 2)]
    db_lb = built.topology_graph.nodes.load_balancers[0]
    assert db_lb.server_covered == ["db-1", "db-2", "db-3"]


def test_weights_and_endpoint_mixes_of_a_group_go_to_each_replica() -> None:
    document = api_group(
        2, algorithm="weighted_round_robin", balancer_options={"weights": {"api": 3}}
    )
    document["topology_graph"]["nodes"]["servers"].append(server("other", cpu(0.001)))
    document["topology_graph"]["nodes"]["load_balancer"]["server_covered"].append("other")
    document["topology_graph"]["edges"] += [edge("lb", "other"), edge("other", "client")]
    document["workload_classes"] = [
        poisson_arrivals(5, generator_id="bulk", endpoint_mix={"api": {"/": 1}})
    ]
    document["topology_graph"]["edges"].append(edge("bulk", "client"))

    built = expand_replicas(parse_scenario(document))

    lb = built.topology_graph.nodes.load_balancer
    assert lb is not None
    assert lb.server_covered == ["api-1", "api-2", "other"]
    assert lb.weights == {"api-1": 3, "api-2": 3}
    assert built.generators[1].endpoint_mix == {"api-1": {"/": 1}, "api-2": {"/": 1}}


def test_a_scenario_without_replicas_is_built_as_it_is() -> None:
    scenario = parse_scenario(
        balanced(poisson_arrivals(5), [server("srv", cpu(0.001))], horizon_s=5)
    )

    assert expand_replicas(scenario) is scenario
    assert replica_groups(scenario) == []
    assert SimulationRunner(scenario, seed=1).built is scenario


def test_a_group_runs_exactly_as_its_replicas_written_out_by_hand() -> None:
    grouped = parse_scenario(api_group_calling_db(2))
    by_hand = parse_scenario(expand_replicas(grouped).model_dump(mode="json"))

    ours, theirs = run_scenario(grouped, seed=7), run_scenario(by_hand, seed=7)

    assert ours.servers == theirs.servers
    assert ours.edges == theirs.edges
    assert ours.calls == theirs.calls
    assert ours.latency == theirs.latency
    assert theirs.replica_groups == {}
    assert list(ours.replica_groups) == ["api"]


def test_the_builder_writes_replicas() -> None:
    scenario = (
        ScenarioBuilder()
        .generator("gen", users=5, rpm=60)
        .client("client")
        .load_balancer("lb", covers=["api"])
        .server("api", replicas=4)
        .endpoint("/")
        .cpu(0.001)
        .chain("gen", "client", "lb", latency=0.001)
        .edge("lb", "api", latency=0.001)
        .edge("api", "client", latency=0.001)
        .settings(horizon=5)
        .build()
    )

    assert scenario.topology_graph.nodes.servers[0].replicas == 4


# Results.


def test_the_results_sum_up_each_group_from_its_replicas() -> None:
    results = run_scenario(parse_scenario(api_group(3, algorithm="random")), seed=3)

    group = results.replica_groups["api"]
    replicas = [results.servers[f"api-{k}"] for k in (1, 2, 3)]
    assert group.replicas == 3
    assert group.servers == ["api-1", "api-2", "api-3"]
    counts = [stats.latency.count for stats in replicas if stats.latency is not None]
    assert group.latency.count == sum(counts)
    assert group.throughput_rps == pytest.approx(sum(counts) / 20)
    assert group.cpu_utilisation == pytest.approx(
        sum(stats.cpu_utilisation for stats in replicas) / 3
    )
    assert group.ready_queue_mean == pytest.approx(
        sum(stats.ready_queue_mean or 0 for stats in replicas)
    )
    assert group.ready_queue_max is not None
    assert group.ready_queue_max <= sum(stats.ready_queue_max or 0 for stats in replicas)
    assert group.ready_queue_max >= max(stats.ready_queue_max or 0 for stats in replicas)
    means = [stats.latency.mean for stats in replicas if stats.latency is not None]
    assert min(means) <= (group.latency.mean or 0) <= max(means)


def test_an_outage_takes_down_one_replica() -> None:
    document = api_group(3, events=[outage("down", "api-2", start=5, end=15)])

    results = run_scenario(parse_scenario(document), seed=2)

    served = {k: results.servers[f"api-{k}"].latency for k in (1, 2, 3)}
    counts = {k: stats.count for k, stats in served.items() if stats is not None}
    assert counts[2] < 0.75 * counts[1]
    assert results.requests.completed == results.requests.generated - results.requests.in_flight


# Validation.


@pytest.mark.parametrize("replicas", [0, 1001, 2.5, "3"])
def test_replicas_out_of_bounds_are_refused_at_the_field(replicas: Any) -> None:
    assert any(
        p.startswith("topology_graph.nodes.servers[0].replicas:")
        for p in problems(api_group(replicas))
    )


def test_a_replica_id_taken_by_another_node_is_refused_at_replicas() -> None:
    document = api_group(2)
    document["topology_graph"]["nodes"]["servers"].append(server("api-2", cpu(0.001)))

    assert (
        "topology_graph.nodes.servers[0].replicas: replica id 'api-2' of server 'api' is "
        "already the id of a node or an edge; rename that one or server 'api'"
    ) in problems(document)


def test_a_copy_of_an_edge_taken_by_another_edge_is_refused_at_its_id() -> None:
    document = api_group(2)
    document["topology_graph"]["edges"].append(edge("client", "lb", edge_id="lb-api-1"))

    assert any(
        p.startswith("topology_graph.edges[2].id: edge 'lb-api' is copied for each replica")
        for p in problems(document)
    )


def test_replica_ids_must_fit_the_id_length() -> None:
    long = "a" * 62
    document = scenario_document(
        poisson_arrivals(5),
        [server(long, cpu(0.001), replicas=10)],
        [
            edge("gen", "client"),
            edge("client", "lb"),
            edge("lb", long, edge_id="in"),
            edge(long, "client", edge_id="out"),
        ],
        horizon_s=5,
        load_balancer=balancer(long),
    )

    assert (
        f"topology_graph.nodes.servers[0].replicas: replica id '{long}-10' is longer than 64 "
        f"characters; shorten the server id '{long}'"
    ) in problems(document)


def test_a_call_step_naming_a_group_is_refused_with_the_balancer_advice() -> None:
    document = api_group_calling_db(2, db_replicas=2)
    steps = document["topology_graph"]["nodes"]["servers"][0]["endpoints"][0]["steps"]
    steps[1]["target"] = "db"
    document["topology_graph"]["edges"].append(edge("api", "db"))

    assert (
        "topology_graph.nodes.servers[0].endpoints[0].steps[1].target: server 'db' has 2 "
        "replicas: call it through a load balancer that covers it (load_balancers), so that "
        "the balancer picks the replica"
    ) in problems(document)


def test_an_edge_into_a_group_from_a_node_not_covering_it_is_refused() -> None:
    document = scenario_document(
        poisson_arrivals(5),
        [server("api", cpu(0.001), replicas=2)],
        [edge("gen", "client"), edge("client", "api"), edge("api", "client")],
        horizon_s=5,
    )

    assert (
        "topology_graph.edges[1].target: edge 'client-api' goes to 'api', which has 2 "
        "replicas: requests reach a replica group through a load balancer that covers it; "
        "send the edge to such a balancer"
    ) in problems(document)


def test_answers_into_a_group_from_the_server_it_calls_are_allowed() -> None:
    document = api_group_calling_db(3)

    assert replica_groups(parse_scenario(document))[0].members == ["api-1", "api-2", "api-3"]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (
            outage("down", "api", start=1, end=2),
            "events[0].target_id: 'api' is a replica group of 3: an event targets one of its "
            "replicas, 'api-1' to 'api-3'",
        ),
        (
            spike("slow", "lb-api", start=1, end=2, spike_s=0.1),
            "events[0].target_id: edge 'lb-api' touches a replica group, so it is copied for "
            "each replica: an event targets one copy ('lb-api-1', ...)",
        ),
        (
            outage("down", "api-4", start=1, end=2),
            "events[0].target_id: event 'down' takes down 'api-4', which is not a server",
        ),
    ],
)
def test_events_name_one_replica_or_one_copy(event: Any, message: str) -> None:
    assert message in problems(api_group(3, events=[event]))


def test_events_on_a_replica_and_on_a_copied_edge_are_valid() -> None:
    events = [
        outage("down", "api-3", start=1, end=2),
        spike("slow", "lb-api-1", start=1, end=2, spike_s=0.1),
    ]
    assert parse_scenario(api_group(3, events=events)).events is not None


# Limits, warnings and experiments.


def test_the_limits_count_every_replica_and_every_copy() -> None:
    scenario = parse_scenario(api_group(40))
    limits = ScenarioLimits(max_nodes=40, max_edges=80)

    found = [str(p) for p in check_limits(scenario, limits)]

    assert found == [
        "topology_graph.nodes.servers[0].replicas: 42 nodes, 40 of them replicas exceeds the "
        "limit of 40 (ASYNCFLOW_MAX_NODES)",
        "topology_graph.nodes.servers[0].replicas: 82 edges (the edges of replica groups copied "
        "for each replica) exceeds the limit of 80 (ASYNCFLOW_MAX_EDGES)",
    ]
    # Six server metrics per replica and one edge metric per copy, by default.
    assert sampled_series_count(scenario) == 3 * 40 + 82


def test_the_overload_warning_reads_a_group_as_all_its_cores() -> None:
    # 240 requests/s of 10 ms: 2.4 cores of work, for 3 replicas (80% each) or 2 (120%).
    assert not [w for w in find_warnings(parse_scenario(api_group(3, rate=240))) if "CPU" in str(w)]

    warnings = [str(w) for w in find_warnings(parse_scenario(api_group(2, rate=240)))]

    assert any(
        "server 'api' is offered 2.4 core-seconds of CPU work per second (240 requests/s) for "
        "2 cores (2 replicas x 1): utilisation 120%" in w
        for w in warnings
    )


def test_experiments_report_each_group_and_no_metric_per_replica() -> None:
    names = metric_names(parse_scenario(api_group(3)))

    assert "replica_groups.api.cpu_utilisation" in names
    assert "replica_groups.api.throughput_rps" in names
    assert not [name for name in names if name.startswith("servers.")]


def test_a_sweep_over_replicas_answers_how_many_servers_a_load_needs() -> None:
    """Twice the load (2 x 60/s of 25 ms = 3 cores of work) over 2 to 5 replicas: the group's
    utilisation is the work over the replicas, and the latency falls as they grow."""
    experiment = ExperimentSpec.model_validate(
        {
            "scenario": api_group(1, rate=120, cpu_s=0.025, algorithm="random"),
            "seed": 3,
            "replications": 2,
            "warmup_s": 2,
            "sweep": [
                {
                    "path": "topology_graph.nodes.servers.api.replicas",
                    "range": {"start": 2, "stop": 5, "step": 1},
                }
            ],
        }
    )

    report = run_experiment(prepare(experiment))

    utilisation = [p.summary["replica_groups.api.cpu_utilisation"].mean for p in report.points]
    latency = [p.summary["latency.mean"].mean for p in report.points]
    throughput = [p.summary["replica_groups.api.throughput_rps"].mean for p in report.points]
    assert utilisation[1:] == pytest.approx([3 / n for n in (3, 4, 5)], rel=0.15)
    assert utilisation[0] > 0.95  # 2 replicas for 3 cores of work: saturated
    assert latency == sorted(latency, reverse=True)
    assert throughput[2] == pytest.approx(120, rel=0.1)
