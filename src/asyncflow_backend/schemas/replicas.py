"""Replica groups: a server with `replicas: N` stands for N identical servers.

The scenario keeps a group as it is written: validation, warnings and limits read it so
and name its fields. A run expands it just before it is built (`expand_replicas`): the
server becomes `<id>-1` .. `<id>-N`, every balancer that covers `<id>` covers each of
them (with the weight it gave `<id>`), and every edge that touches `<id>` is copied once
per replica, `<edge>-<k>`, or once per pair of replicas, `<edge>-<i>-<j>`, between two
groups. The engine then meets plain servers only: a scenario without replicas is built
exactly as before, and a group costs what its replicas written out by hand would.

A group is reached through a balancer that covers it (validation refuses an edge or a
call step that reaches one replica directly), so its replicas share the traffic the way
the balancer's policy says. `ReplicaGroup` names which servers of a run make a group,
for the results' `replica_groups` and for anything that changes a group's size.

A group with an `autoscaler` is written out as `max_replicas` servers, all covered by its
balancers; the run's autoscaler keeps those above the current count out of rotation.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from asyncflow_backend.schemas.autoscaling import Autoscaler
from asyncflow_backend.schemas.scenario import Scenario
from asyncflow_backend.schemas.topology import Edge, LoadBalancer

V = TypeVar("V")


@dataclass(frozen=True)
class ReplicaGroup:
    """One server written with `replicas`: its id, where it is, and how many it stands for."""

    name: str
    """The server's id as written; no server of the run has it."""
    index: int
    """Its position in `topology_graph.nodes.servers`."""
    replicas: int
    """Servers of the run: `replicas`, or the autoscaler's `max_replicas`."""
    initial: int
    """Replicas in service at the start: `replicas` as written."""
    autoscaler: Autoscaler | None = None

    @property
    def members(self) -> list[str]:
        """The ids of its servers in the run: `<name>-1` .. `<name>-<replicas>`."""
        return replica_ids(self.name, self.replicas)


def replica_ids(name: str, replicas: int) -> list[str]:
    """`<name>-1` .. `<name>-<replicas>`."""
    return [f"{name}-{k}" for k in range(1, replicas + 1)]


def replica_groups(scenario: Scenario) -> list[ReplicaGroup]:
    """Every replica group of `scenario`, in document order; [] when no server has
    `replicas`."""
    return [
        ReplicaGroup(server.id, i, server.copies, server.replicas, server.autoscaler)
        for i, server in enumerate(scenario.topology_graph.nodes.servers)
        if server.replicas is not None
    ]


def edge_copies(edge: Edge, sizes: Mapping[str, int]) -> list[tuple[str, str, str]]:
    """(id, source, target) of each copy of `edge` in the run, given the replicas of each
    group by name: the edge itself when it touches no group, one copy per replica
    (`<edge>-<k>`) when one end is a group, one per pair (`<edge>-<i>-<j>`) when both are."""
    sources, targets = _members(edge.source, sizes), _members(edge.target, sizes)
    grouped = (edge.source in sizes, edge.target in sizes)
    if grouped == (False, False):
        return [(edge.id, edge.source, edge.target)]
    if grouped == (True, True):
        return [
            (f"{edge.id}-{i}-{j}", s, t)
            for i, s in enumerate(sources, 1)
            for j, t in enumerate(targets, 1)
        ]
    ends = [(s, t) for s in sources for t in targets]
    return [(f"{edge.id}-{k}", s, t) for k, (s, t) in enumerate(ends, 1)]


def edge_copy_count(edge: Edge, sizes: Mapping[str, int]) -> int:
    """How many edges `edge` becomes in the run (`edge_copies` without making them)."""
    return sizes.get(edge.source, 1) * sizes.get(edge.target, 1)


def edge_count(scenario: Scenario) -> int:
    """Edges of the run: each edge that touches a replica group once per replica it joins."""
    sizes = group_sizes(scenario)
    return sum(edge_copy_count(edge, sizes) for edge in scenario.topology_graph.edges)


def group_sizes(scenario: Scenario) -> dict[str, int]:
    """Replicas by group name."""
    return {group.name: group.replicas for group in replica_groups(scenario)}


def expand_replicas(scenario: Scenario) -> Scenario:
    """`scenario` with each replica group written out as its servers and their edges.

    Expects a valid scenario (`schemas.validation`); returns `scenario` itself when it has
    no group. The copies share the group's immutable parts (endpoints, resources), and
    each replica draws from streams named by its own id, so replicas are independent.
    """
    sizes = group_sizes(scenario)
    if not sizes:
        return scenario
    graph = scenario.topology_graph
    nodes = graph.nodes
    servers = []
    for server in nodes.servers:
        if server.replicas is None:
            servers.append(server)
            continue
        servers += [
            server.model_copy(update={"id": member, "replicas": None, "autoscaler": None})
            for member in replica_ids(server.id, server.copies)
        ]
    edges = [
        edge.model_copy(update={"id": edge_id, "source": source, "target": target})
        for edge in graph.edges
        for edge_id, source, target in edge_copies(edge, sizes)
    ]
    single = nodes.load_balancer
    expanded_nodes = nodes.model_copy(
        update={
            "servers": servers,
            "load_balancer": None if single is None else _covering_replicas(single, sizes),
            "load_balancers": [_covering_replicas(lb, sizes) for lb in nodes.load_balancers],
        }
    )
    generators = [
        workload
        if workload.endpoint_mix is None
        else workload.model_copy(update={"endpoint_mix": _spread(workload.endpoint_mix, sizes)})
        for workload in scenario.generators
    ]
    return scenario.model_copy(
        update={
            "topology_graph": graph.model_copy(update={"nodes": expanded_nodes, "edges": edges}),
            "rqs_input": generators[0],
            "workload_classes": generators[1:] if scenario.workload_classes is not None else None,
        }
    )


def _covering_replicas(lb: LoadBalancer, sizes: Mapping[str, int]) -> LoadBalancer:
    """`lb` covering each replica of the groups it covers, in its order."""
    if not any(server_id in sizes for server_id in lb.server_covered):
        return lb
    update: dict[str, object] = {"server_covered": _flat(lb.server_covered, sizes)}
    if lb.weights is not None:
        update["weights"] = _spread(lb.weights, sizes)
    return lb.model_copy(update=update)


def _flat(server_ids: Iterable[str], sizes: Mapping[str, int]) -> list[str]:
    return [member for server_id in server_ids for member in _members(server_id, sizes)]


def _members(server_id: str, sizes: Mapping[str, int]) -> list[str]:
    """The servers of the run that `server_id` stands for: its replicas, or itself."""
    return replica_ids(server_id, sizes[server_id]) if server_id in sizes else [server_id]


def _spread(by_server: Mapping[str, V], sizes: Mapping[str, int]) -> dict[str, V]:
    """A map keyed by server id with each group's entry given to each of its replicas."""
    return {
        member: value
        for server_id, value in by_server.items()
        for member in _members(server_id, sizes)
    }
