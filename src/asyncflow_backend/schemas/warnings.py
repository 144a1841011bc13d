"""Warnings: inputs that are legal, run as written, and are almost never what was meant.

A warning has the shape of a problem (a path and a message) but refuses
nothing: the command line prints it and runs, the API returns it next to a
202 or a valid report. `find_warnings` expects a scenario that passed
validation, so ids, routes and references are sound.
"""

import math
from collections.abc import Iterator

from asyncflow_backend.config.constants import (
    DEFAULT_DROPOUT_RATE,
    LoadBalancerAlgorithm,
    StepOperation,
)
from asyncflow_backend.schemas.base import readable
from asyncflow_backend.schemas.random_variables import RVConfig
from asyncflow_backend.schemas.scenario import Scenario
from asyncflow_backend.schemas.topology import Server
from asyncflow_backend.schemas.validation import Loc, Problem

SERVERS: Loc = ("topology_graph", "nodes", "servers")


def find_warnings(scenario: Scenario) -> list[Problem]:
    """Every warning for a valid scenario, in document order of the fields they name."""
    warnings = list(_implicit_distributions(scenario))
    warnings += _default_dropout(scenario)
    warnings += _overloaded_servers(scenario)
    return warnings


def _implicit_distributions(scenario: Scenario) -> Iterator[Problem]:
    """A duration written `{mean: 0.002}` is Poisson, AsyncFlow's default: whole seconds."""
    for i, server in enumerate(scenario.topology_graph.nodes.servers):
        for j, endpoint in enumerate(server.endpoints):
            for k, step in enumerate(endpoint.steps):
                value = step.value
                if isinstance(value, RVConfig) and "distribution" not in value.model_fields_set:
                    loc = (*SERVERS, i, "endpoints", j, "steps", k, "step_operation")
                    yield Problem((*loc, step.operation.value), _poisson_duration(value.mean))
    for i, edge in enumerate(scenario.topology_graph.edges):
        if "distribution" not in edge.latency.model_fields_set:
            yield Problem(
                ("topology_graph", "edges", i, "latency"),
                f"edge '{edge.id}': {_poisson_duration(edge.latency.mean)}",
            )


def _poisson_duration(mean: float) -> str:
    # P(X = 0) = e^-m for a Poisson variable of mean m.
    zero = math.exp(-mean)
    return (
        f"no distribution given, so this duration is Poisson with mean {readable(mean)} s "
        f"(AsyncFlow's default): every draw is a whole number of seconds, "
        f"{zero:.0%} of them 0 s; write distribution: exponential (or deterministic) "
        "for a duration in fractions of a second"
    )


def _default_dropout(scenario: Scenario) -> Iterator[Problem]:
    """Every edge left at the 1% default drops requests on every hop, which few intend."""
    edges = scenario.topology_graph.edges
    if any("dropout_rate" in edge.model_fields_set for edge in edges):
        return
    hops = _hops_per_request(scenario)
    lost = 1 - (1 - DEFAULT_DROPOUT_RATE) ** hops
    yield Problem(
        ("topology_graph", "edges"),
        f"no edge sets dropout_rate, so every edge drops {DEFAULT_DROPOUT_RATE:.0%} of the "
        f"requests crossing it (AsyncFlow's default): about {lost:.1%} of the requests are "
        f"lost on a route of {hops} edges; write dropout_rate: 0 on lossless links",
    )


def _hops_per_request(scenario: Scenario) -> int:
    """Edges on a request's route, the first branch taken at the load balancer."""
    out: dict[str, str] = {}
    for edge in scenario.topology_graph.edges:
        out.setdefault(edge.source, edge.target)
    client = scenario.topology_graph.nodes.client.id
    node, hops = out[scenario.rqs_input.id], 1
    while hops <= len(out):
        node = out[node]
        hops += 1
        if node == client:
            break
    return hops


def _overloaded_servers(scenario: Scenario) -> Iterator[Problem]:
    """Servers whose offered CPU work exceeds their cores: their ready queue grows forever.

    Offered load per server is λ_s x E[CPU time per request] / cores (utilisation of
    an M/G/c station, e.g. Kleinrock, *Queueing Systems* vol. 1, §2.1), with λ_s the
    mean arrival rate users x rpm / 60 thinned by the dropout of the edges before it
    and split evenly by a round-robin balancer. The CPU time is the mean over the
    endpoint mix of the declared CPU step means. A least-connection balancer moves
    load between its servers, so only their pooled utilisation is checked.
    """
    nodes = scenario.topology_graph.nodes
    arrivals = _arrival_rates(scenario)
    servers = {server.id: (i, server) for i, server in enumerate(nodes.servers)}
    pooled: set[str] = set()
    lb = nodes.load_balancer
    if lb is not None and lb.algorithms is LoadBalancerAlgorithm.LEAST_CONNECTION:
        pooled = set(lb.server_covered)
        work = sum(arrivals.get(s, 0.0) * _cpu_seconds(servers[s][1]) for s in pooled)
        cores = sum(servers[s][1].server_resources.cpu_cores for s in pooled)
        if work > cores:
            yield Problem(
                ("topology_graph", "nodes", "load_balancer"),
                f"the servers behind load balancer '{lb.id}' are offered "
                f"{work:.3g} core-seconds of CPU work per second for {cores} cores: "
                f"utilisation {work / cores:.0%}, above 100%, so their queues grow "
                "without bound",
            )
    for server_id, (i, server) in servers.items():
        rate = arrivals.get(server_id, 0.0)
        if server_id in pooled or rate == 0:
            continue
        cores = server.server_resources.cpu_cores
        work = rate * _cpu_seconds(server)
        if work > cores:
            yield Problem(
                (*SERVERS, i),
                f"server '{server_id}' is offered {work:.3g} core-seconds of CPU work per "
                f"second ({readable(round(rate, 3))} requests/s) for {cores} core(s): "
                f"utilisation {work / cores:.0%}, above 100%, so its ready queue grows "
                "without bound",
            )


def _cpu_seconds(server: Server) -> float:
    """Mean CPU seconds a request costs `server`, over its endpoint mix."""
    share = 1.0 / len(server.endpoints)
    weights = [endpoint.probability or share for endpoint in server.endpoints]
    total = sum(weights)
    seconds = 0.0
    for weight, endpoint in zip(weights, server.endpoints, strict=True):
        for step in endpoint.steps:
            if step.operation is StepOperation.CPU_TIME:
                value = step.value
                seconds += weight / total * (value.mean if isinstance(value, RVConfig) else value)
    return seconds


def _arrival_rates(scenario: Scenario) -> dict[str, float]:
    """Mean requests per second reaching each node, following the edges from the client.

    The graph from the client back to it is loop-free (validated), so a walk in
    topological order sees each node once all its inbound traffic is known.
    """
    graph = scenario.topology_graph
    client = graph.nodes.client.id
    workload = scenario.rqs_input
    rate = workload.avg_active_users.mean * workload.avg_request_per_minute_per_user.mean / 60
    out: dict[str, list[tuple[str, float]]] = {}
    for edge in graph.edges:
        out.setdefault(edge.source, []).append((edge.target, 1 - edge.dropout_rate))
    _, kept = out[workload.id][0]  # the generator's one edge, to the client
    arriving: dict[str, float] = {client: rate * kept}
    waiting = _inbound_counts(out, client)
    ready = [client]
    while ready:
        node = ready.pop()
        targets = out.get(node, [])
        for target, kept in targets:
            if target == client:
                continue
            # A balancer deals its requests evenly; any other node has one out edge.
            arriving[target] = arriving.get(target, 0.0) + arriving[node] / len(targets) * kept
            waiting[target] -= 1
            if waiting[target] == 0:
                ready.append(target)
    del arriving[client]
    return arriving


def _inbound_counts(out: dict[str, list[tuple[str, float]]], client: str) -> dict[str, int]:
    """Edges into each node reachable from the client, the client's own inbound left out."""
    counts: dict[str, int] = {}
    seen = {client}
    stack = [client]
    while stack:
        for target, _ in out.get(stack.pop(), []):
            if target == client:
                continue
            counts[target] = counts.get(target, 0) + 1
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return counts
