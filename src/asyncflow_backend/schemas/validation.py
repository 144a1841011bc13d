"""Checks that span sections of a scenario: ids, routes and event windows.

Each check yields `Problem`s whose `loc` points at the offending field, so
that the command line and the API can name it.
"""

import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from asyncflow_backend.config.constants import MAX_ID_LENGTH, LoadBalancerAlgorithm
from asyncflow_backend.schemas.calls import answering_servers, call_edges, call_sites
from asyncflow_backend.schemas.replicas import (
    ReplicaGroup,
    edge_copies,
    group_sizes,
    replica_groups,
    replica_ids,
)
from asyncflow_backend.schemas.scenario import Scenario
from asyncflow_backend.schemas.steps import CallStep, IoStep, RamStep, walk_steps
from asyncflow_backend.schemas.topology import DB_POOL
from asyncflow_backend.schemas.workload import RqsGenerator

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One reason a scenario is invalid, located by its path in the document."""

    loc: Loc
    message: str

    @property
    def path(self) -> str:
        """Dotted path with list indices, e.g. `topology_graph.edges[2].target`."""
        text = ""
        for part in self.loc:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text or "(scenario)"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def find_problems(scenario: Scenario) -> list[Problem]:
    """Every cross-section problem of a structurally valid scenario."""
    problems = list(_duplicate_ids(scenario))
    problems += _edge_endpoints(scenario)
    problems += _calls(scenario)
    problems += _replicas(scenario)
    if not problems:
        problems += _routes(scenario)
    problems += _events(scenario)
    problems += _ram_fits(scenario)
    problems += _pools(scenario)
    problems += _balancer_weights(scenario)
    problems += _endpoint_mixes(scenario)
    return problems


def _endpoint_mixes(scenario: Scenario) -> Iterator[Problem]:
    """An endpoint mix names servers that exist, and endpoints they have; only classes have
    one. A class has no timeout or retry policy of its own: the client's are `rqs_input`'s."""
    servers = {server.id: server for server in scenario.topology_graph.nodes.servers}
    for i, workload in enumerate(scenario.workload_classes or ()):
        for field in ("timeout_s", "on_timeout"):
            if getattr(workload, field) is not None:
                yield Problem(
                    ("workload_classes", i, field),
                    "the client's timeout goes on rqs_input, and applies to the requests of "
                    "every class",
                )
        if workload.retry is not None:
            yield Problem(
                ("workload_classes", i, "retry"),
                "the client's retry policy goes on rqs_input, and applies to the requests of "
                "every class",
            )
    for loc, workload in _generator_locs(scenario):
        if workload.endpoint_mix is None:
            continue
        if not scenario.workload_classes:
            yield Problem(
                (*loc, "endpoint_mix"),
                "an endpoint mix sets one class's endpoints apart from another's: declare "
                "workload_classes, or give the servers' endpoints a `probability`",
            )
            continue
        for server_id, weights in workload.endpoint_mix.items():
            server = servers.get(server_id)
            if server is None:
                yield Problem(
                    (*loc, "endpoint_mix", server_id), f"there is no server '{server_id}'"
                )
                continue
            names = {endpoint.endpoint_name for endpoint in server.endpoints}
            for name in weights:
                if name not in names:
                    yield Problem(
                        (*loc, "endpoint_mix", server_id, name),
                        f"server '{server_id}' has no endpoint '{name}' "
                        f"(its endpoints: {', '.join(sorted(names))})",
                    )


def _pools(scenario: Scenario) -> Iterator[Problem]:
    """Every pool a step names exists on its server; `db` is not declared twice."""
    for i, server in enumerate(scenario.topology_graph.nodes.servers):
        resources = server.server_resources
        if resources.db_connection_pool and DB_POOL in resources.connection_pools:
            yield Problem(
                ("topology_graph", "nodes", "servers", i, "server_resources", "connection_pools"),
                f"server '{server.id}' declares pool '{DB_POOL}' twice: by "
                "db_connection_pool and in connection_pools",
            )
        pools = resources.pool_sizes()
        for j, endpoint in enumerate(server.endpoints):
            steps_loc = ("topology_graph", "nodes", "servers", i, "endpoints", j, "steps")
            for _, loc, step in walk_steps(endpoint.steps, steps_loc):
                if (
                    isinstance(step, IoStep | CallStep)
                    and step.pool is not None
                    and step.pool not in pools
                ):
                    known = ", ".join(sorted(pools)) or "none"
                    yield Problem(
                        (*loc, "pool"),
                        f"server '{server.id}' has no pool '{step.pool}' (its pools: {known})",
                    )


def _balancer_weights(scenario: Scenario) -> Iterator[Problem]:
    """Weights belong to weighted round robin and name covered servers only."""
    for where, lb in scenario.topology_graph.nodes.balancers():
        if lb.weights is None:
            continue
        loc: Loc = (*where, "weights")
        if lb.algorithms is not LoadBalancerAlgorithm.WEIGHTED_ROUND_ROBIN:
            yield Problem(
                loc, f"weights apply to weighted_round_robin only, not to '{lb.algorithms}'"
            )
        for server_id in lb.weights:
            if server_id not in lb.server_covered:
                yield Problem(
                    (*loc, server_id),
                    f"load balancer '{lb.id}' does not cover '{server_id}'",
                )


def _ram_fits(scenario: Scenario) -> Iterator[Problem]:
    """A request needing more RAM than its server has would wait forever and stall the server."""
    for i, server in enumerate(scenario.topology_graph.nodes.servers):
        for j, endpoint in enumerate(server.endpoints):
            needed = sum(step.megabytes for step in endpoint.steps if isinstance(step, RamStep))
            if needed > server.server_resources.ram_mb:
                yield Problem(
                    ("topology_graph", "nodes", "servers", i, "endpoints", j, "steps"),
                    f"endpoint '{endpoint.endpoint_name}' of server '{server.id}' needs "
                    f"{needed:g} MB of RAM but the server has "
                    f"{server.server_resources.ram_mb} MB",
                )


def _node_ids(scenario: Scenario) -> dict[str, Loc]:
    nodes = scenario.topology_graph.nodes
    ids: dict[str, Loc] = {}
    for loc, workload in _generator_locs(scenario):
        ids.setdefault(workload.id, (*loc, "id"))
    ids.setdefault(nodes.client.id, ("topology_graph", "nodes", "client", "id"))
    for where, lb in nodes.balancers():
        ids.setdefault(lb.id, (*where, "id"))
    for i, server in enumerate(nodes.servers):
        ids.setdefault(server.id, ("topology_graph", "nodes", "servers", i, "id"))
    return ids


def _duplicate_ids(scenario: Scenario) -> Iterator[Problem]:
    nodes = scenario.topology_graph.nodes
    named: list[tuple[str, Loc]] = [
        (workload.id, (*loc, "id")) for loc, workload in _generator_locs(scenario)
    ]
    named.append((nodes.client.id, ("topology_graph", "nodes", "client", "id")))
    named += [(lb.id, (*where, "id")) for where, lb in nodes.balancers()]
    named += [
        (s.id, ("topology_graph", "nodes", "servers", i, "id")) for i, s in enumerate(nodes.servers)
    ]
    named += [
        (e.id, ("topology_graph", "edges", i, "id"))
        for i, e in enumerate(scenario.topology_graph.edges)
    ]
    counts = Counter(name for name, _ in named)
    for name, loc in named:
        if counts[name] > 1:
            yield Problem(loc, f"id '{name}' is used by {counts[name]} nodes or edges")
    for i, server in enumerate(nodes.servers):
        names = Counter(ep.endpoint_name for ep in server.endpoints)
        for j, endpoint in enumerate(server.endpoints):
            if names[endpoint.endpoint_name] > 1:
                yield Problem(
                    ("topology_graph", "nodes", "servers", i, "endpoints", j, "endpoint_name"),
                    f"server '{server.id}' has endpoint '{endpoint.endpoint_name}' more than once",
                )
    if scenario.events:
        event_ids = Counter(ev.event_id for ev in scenario.events)
        for i, event in enumerate(scenario.events):
            if event_ids[event.event_id] > 1:
                yield Problem(
                    ("events", i, "event_id"), f"event id '{event.event_id}' is used more than once"
                )


def _generator_locs(scenario: Scenario) -> list[tuple[Loc, RqsGenerator]]:
    """Each workload class with where it is in the document."""
    located: list[tuple[Loc, RqsGenerator]] = [(("rqs_input",), scenario.rqs_input)]
    located += [(("workload_classes", i), w) for i, w in enumerate(scenario.workload_classes or ())]
    return located


def _edge_endpoints(scenario: Scenario) -> Iterator[Problem]:
    ids = _node_ids(scenario)
    generators = {workload.id for workload in scenario.generators}
    for i, edge in enumerate(scenario.topology_graph.edges):
        if edge.source not in ids:
            yield Problem(
                ("topology_graph", "edges", i, "source"),
                f"edge '{edge.id}' starts at unknown node '{edge.source}'",
            )
        if edge.target not in ids:
            yield Problem(
                ("topology_graph", "edges", i, "target"),
                f"edge '{edge.id}' ends at unknown node '{edge.target}'",
            )
        elif edge.target in generators:
            yield Problem(
                ("topology_graph", "edges", i, "target"),
                f"edge '{edge.id}' ends at the generator '{edge.target}'",
            )
        if edge.source == edge.target:
            yield Problem(
                ("topology_graph", "edges", i, "target"),
                f"edge '{edge.id}' starts and ends at '{edge.source}'",
            )
    server_ids = {s.id for s in scenario.topology_graph.nodes.servers}
    for where, lb in scenario.topology_graph.nodes.balancers():
        for j, server_id in enumerate(lb.server_covered):
            if server_id in ids and server_id not in server_ids:
                yield Problem(
                    (*where, "server_covered", j),
                    f"load balancer '{lb.id}' covers '{server_id}', which is not a server "
                    "(a balancer covers servers only)",
                )
            elif server_id not in server_ids:
                yield Problem(
                    (*where, "server_covered", j),
                    f"load balancer '{lb.id}' covers unknown server '{server_id}'",
                )


def _calls(scenario: Scenario) -> Iterator[Problem]:
    """Each call targets a server or a balancer over an edge, can be answered over an edge
    back, and the calls form no cycle (a request would call itself forever)."""
    nodes = scenario.topology_graph.nodes
    servers = {s.id for s in nodes.servers}
    callable_ids = servers | {lb.id for _, lb in nodes.balancers()}
    edges = {(e.source, e.target) for e in scenario.topology_graph.edges}
    graph: dict[str, set[str]] = {}
    for site in call_sites(scenario):
        loc = site.loc
        if site.target == site.caller:
            yield Problem(loc, f"server '{site.caller}' calls itself")
            continue
        if site.target not in callable_ids:
            yield Problem(
                loc, f"'{site.target}' is not a server or a load balancer, so it cannot be called"
            )
            continue
        if (site.caller, site.target) not in edges:
            yield Problem(
                loc,
                f"server '{site.caller}' calls '{site.target}' but no edge goes from "
                f"'{site.caller}' to '{site.target}'",
            )
        for server in answering_servers(scenario, site.target):
            if (server, site.caller) not in edges:
                yield Problem(
                    loc,
                    f"'{server}' answers calls from '{site.caller}' but no edge goes from "
                    f"'{server}' to '{site.caller}'",
                )
            graph.setdefault(site.caller, set()).add(server)
    cycle = _find_cycle(graph)
    if cycle:
        first = next(s for s in call_sites(scenario) if s.caller == cycle[0])
        yield Problem(
            first.loc,
            f"the calls form a cycle: {' -> '.join(cycle)}; a request would never finish",
        )


def _find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """A cycle of `graph` as the list of its nodes, first repeated at the end; [] if none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return []


def _routes(scenario: Scenario) -> Iterator[Problem]:
    """Every request must be able to go generator -> client -> ... -> client, loop-free.

    Edges that calls use (`schemas.calls.call_edges`) are not routes and are left out.
    """
    graph = scenario.topology_graph
    calls = call_edges(scenario)
    out: dict[str, list[int]] = {}
    for i, edge in enumerate(graph.edges):
        if (edge.source, edge.target) not in calls:
            out.setdefault(edge.source, []).append(i)
    nodes = graph.nodes
    client = nodes.client.id
    balancers = nodes.balancers()
    balancer_ids = {lb.id for _, lb in balancers}

    for node_id, edge_indices in out.items():
        if len(edge_indices) > 1 and node_id not in balancer_ids:
            for i in edge_indices[1:]:
                yield Problem(
                    ("topology_graph", "edges", i, "source"),
                    f"node '{node_id}' has several outgoing edges; only a load "
                    "balancer may fan out",
                )
    for workload in scenario.generators:
        generator = workload.id
        gen_edges = out.get(generator, [])
        if not gen_edges:
            yield Problem(
                ("topology_graph", "edges"), f"no edge leaves the generator '{generator}'"
            )
        elif graph.edges[gen_edges[0]].target != client:
            yield Problem(
                ("topology_graph", "edges", gen_edges[0], "target"),
                f"the generator '{generator}' must send to the client '{client}'",
            )
    if client not in out:
        yield Problem(("topology_graph", "edges"), f"no edge leaves the client '{client}'")
        return
    for where, lb in balancers:
        lb_targets = {graph.edges[i].target: i for i in out.get(lb.id, [])}
        for j, server_id in enumerate(lb.server_covered):
            if server_id not in lb_targets:
                yield Problem(
                    (*where, "server_covered", j),
                    f"load balancer '{lb.id}' covers '{server_id}' but no edge "
                    f"goes from '{lb.id}' to it",
                )
        for target, i in lb_targets.items():
            if target not in lb.server_covered:
                yield Problem(
                    ("topology_graph", "edges", i, "target"),
                    f"edge from load balancer '{lb.id}' goes to '{target}', which "
                    "it does not cover",
                )
    yield from _walk_back_to_client(scenario, out)


def _walk_back_to_client(scenario: Scenario, out: dict[str, list[int]]) -> Iterator[Problem]:
    graph = scenario.topology_graph
    client = graph.nodes.client.id
    generators = {workload.id for workload in scenario.generators}
    reported: set[str] = set()
    stack: list[tuple[str, tuple[str, ...]]] = [(client, (client,))]
    while stack:
        node, path = stack.pop()
        for i in out.get(node, []):
            target = graph.edges[i].target
            if target == client:
                continue
            if target in path or target in generators:
                if target not in reported:
                    reported.add(target)
                    yield Problem(
                        ("topology_graph", "edges", i, "target"),
                        f"edge '{graph.edges[i].id}' closes a loop through "
                        f"'{target}'; requests would never reach the client",
                    )
                continue
            if target not in out:
                if target not in reported:
                    reported.add(target)
                    yield Problem(
                        ("topology_graph", "edges"),
                        f"no edge leaves '{target}', so requests that reach it never "
                        f"get back to the client '{client}'",
                    )
                continue
            stack.append((target, (*path, target)))


def _events(scenario: Scenario) -> Iterator[Problem]:
    if not scenario.events:
        return
    horizon = scenario.sim_settings.total_simulation_time
    sizes = group_sizes(scenario)
    servers = {s.id for s in scenario.topology_graph.nodes.servers if s.id not in sizes}
    servers |= {member for name, n in sizes.items() for member in replica_ids(name, n)}
    copied = {e.id: edge_copies(e, sizes) for e in scenario.topology_graph.edges}
    edges = {edge_id for copies in copied.values() for edge_id, _, _ in copies}
    windows: dict[str, list[tuple[float, float, int]]] = {}
    for i, event in enumerate(scenario.events):
        if event.start.t_start > horizon:
            yield Problem(
                ("events", i, "start", "t_start"),
                f"event '{event.event_id}' starts at {event.start.t_start} s, after "
                f"the horizon of {horizon} s",
            )
        if event.end.t_end > horizon:
            yield Problem(
                ("events", i, "end", "t_end"),
                f"event '{event.event_id}' ends at {event.end.t_end} s, after the "
                f"horizon of {horizon} s",
            )
        if event.target_id in sizes or event.target_id in copied.keys() - edges:
            yield Problem(("events", i, "target_id"), _whole_group_target(event.target_id, sizes))
            continue
        if event.targets_server:
            if event.target_id not in servers:
                what = "takes down" if event.is_outage else "slows down"
                yield Problem(
                    ("events", i, "target_id"),
                    f"event '{event.event_id}' {what} '{event.target_id}', which is not a server",
                )
                continue
            if event.is_outage:
                windows.setdefault(event.target_id, []).append(
                    (event.start.t_start, event.end.t_end, i)
                )
        elif event.target_id not in edges:
            yield Problem(
                ("events", i, "target_id"),
                f"event '{event.event_id}' slows down '{event.target_id}', which is not an edge",
            )
    for server_id, server_windows in windows.items():
        server_windows.sort()
        for (_, end, _), (start, _, i) in itertools.pairwise(server_windows):
            if start < end:
                yield Problem(
                    ("events", i, "start", "t_start"),
                    f"outage '{scenario.events[i].event_id}' of server '{server_id}' "
                    "overlaps an earlier outage of the same server",
                )


def _whole_group_target(target: str, sizes: dict[str, int]) -> str:
    if target in sizes:
        members = replica_ids(target, sizes[target])
        return (
            f"'{target}' is a replica group of {sizes[target]}: an event targets one of its "
            f"replicas, '{members[0]}' to '{members[-1]}'"
        )
    return (
        f"edge '{target}' touches a replica group, so it is copied for each replica: an "
        f"event targets one copy ('{target}-1', ...)"
    )


def _replicas(scenario: Scenario) -> Iterator[Problem]:
    """A replica group's ids and its edges' copies are new and valid ids, and it is reached
    only through a balancer that covers it: no route edge and no call step reaches it
    directly (which replica would it reach?)."""
    groups = replica_groups(scenario)
    if not groups:
        return
    sizes = group_sizes(scenario)
    servers: Loc = ("topology_graph", "nodes", "servers")
    taken = set(_node_ids(scenario)) - set(sizes)
    taken |= {
        e.id
        for e in scenario.topology_graph.edges
        if e.source not in sizes and e.target not in sizes
    }
    for group in groups:
        loc = (*servers, group.index, "replicas")
        members = group.members
        if len(members[-1]) > MAX_ID_LENGTH:
            yield Problem(
                loc,
                f"replica id '{members[-1]}' is longer than {MAX_ID_LENGTH} characters; "
                f"shorten the server id '{group.name}'",
            )
            continue
        clash = next((member for member in members if member in taken), None)
        if clash is not None:
            yield Problem(
                loc,
                f"replica id '{clash}' of server '{group.name}' is already the id of a node "
                f"or an edge; rename that one or server '{group.name}'",
            )
        taken.update(members)
    for i, edge in enumerate(scenario.topology_graph.edges):
        copies = edge_copies(edge, sizes)
        if len(copies) == 1:
            continue
        too_long = next((c for c, _, _ in copies if len(c) > MAX_ID_LENGTH), None)
        clash = next((c for c, _, _ in copies if c in taken), None)
        if too_long is not None or clash is not None:
            why = (
                f"is longer than {MAX_ID_LENGTH} characters"
                if too_long is not None
                else "is already the id of a node or an edge"
            )
            yield Problem(
                ("topology_graph", "edges", i, "id"),
                f"edge '{edge.id}' is copied for each replica it joins, and the copy id "
                f"'{too_long or clash}' {why}; rename edge '{edge.id}'",
            )
        taken.update(c for c, _, _ in copies)
    yield from _replicas_reached_directly(scenario, sizes)
    yield from _autoscalers(scenario, groups)


def _autoscalers(scenario: Scenario, groups: list[ReplicaGroup]) -> Iterator[Problem]:
    """An autoscaler adds and removes replicas by taking them in and out of the balancers
    that cover its group: it needs one."""
    covered = {s for _, lb in scenario.topology_graph.nodes.balancers() for s in lb.server_covered}
    for group in groups:
        if group.autoscaler is not None and group.name not in covered:
            yield Problem(
                ("topology_graph", "nodes", "servers", group.index, "autoscaler"),
                f"server '{group.name}' has an autoscaler but no load balancer covers it: "
                "replicas are added and removed in the balancers that cover the group; "
                "list it in a balancer's server_covered",
            )


def _replicas_reached_directly(scenario: Scenario, sizes: dict[str, int]) -> Iterator[Problem]:
    nodes = scenario.topology_graph.nodes
    covering = {lb.id: set(lb.server_covered) for _, lb in nodes.balancers()}
    answers: set[tuple[str, str]] = set()
    called: set[tuple[str, str]] = set()
    for site in call_sites(scenario):
        called.add((site.caller, site.target))
        answers |= {(server, site.caller) for server in answering_servers(scenario, site.target)}
        if site.target in sizes:
            yield Problem(
                site.loc,
                f"server '{site.target}' has {sizes[site.target]} replicas: call it through a "
                f"load balancer that covers it (load_balancers), so that the balancer picks "
                "the replica",
            )
    for i, edge in enumerate(scenario.topology_graph.edges):
        source, target = edge.source, edge.target
        if target not in sizes or (source, target) in answers | called:
            continue
        if target not in covering.get(source, ()):
            yield Problem(
                ("topology_graph", "edges", i, "target"),
                f"edge '{edge.id}' goes to '{target}', which has {sizes[target]} replicas: "
                f"requests reach a replica group through a load balancer that covers it; "
                f"send the edge to such a balancer",
            )
