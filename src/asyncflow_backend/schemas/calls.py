"""The call graph of a scenario: which server calls which node, and the edges calls use.

A `call` step of server A naming node T sends a sub-request over the edge A -> T
and takes the answer back over the edge S -> A from the server S that served
it (S = T, or each server a balancer T covers). Those edges carry calls, not
routes: validation and the builder leave them out of the route checks.
"""

from collections.abc import Iterator
from dataclasses import dataclass

from asyncflow_backend.schemas.scenario import Scenario
from asyncflow_backend.schemas.steps import CallStep, walk_steps

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class CallSite:
    """One target of a call step: who calls what, and where it is written (`loc`)."""

    caller: str
    target: str
    endpoint: str
    step: str
    """The step's label in its endpoint: its index, or `2.miss.0` inside a cache step."""
    loc: Loc

    @property
    def id(self) -> str:
        """`caller:endpoint#step->target`, the key of the call site in the results."""
        return call_site_id(self.caller, self.endpoint, self.step, self.target)


def call_site_id(caller: str, endpoint: str, step: str, target: str) -> str:
    """The key of a call site in the results: `caller:endpoint#step->target`."""
    return f"{caller}:{endpoint}#{step}->{target}"


def call_sites(scenario: Scenario) -> Iterator[CallSite]:
    """Every target of every call step of every server, in document order."""
    for i, server in enumerate(scenario.topology_graph.nodes.servers):
        for j, endpoint in enumerate(server.endpoints):
            where_steps: Loc = ("topology_graph", "nodes", "servers", i, "endpoints", j, "steps")
            for k, loc, step in walk_steps(endpoint.steps, where_steps):
                if not isinstance(step, CallStep):
                    continue
                for n, target in enumerate(step.call_targets):
                    where = (*loc, "target") if step.targets is None else (*loc, "targets", n)
                    yield CallSite(server.id, target, endpoint.endpoint_name, k, where)


def has_retries(scenario: Scenario) -> bool:
    """True if some request may be sent again: the client or a call step retries."""
    if scenario.rqs_input.retry is not None:
        return True
    return any(
        isinstance(step, CallStep) and step.retry is not None
        for server in scenario.topology_graph.nodes.servers
        for endpoint in server.endpoints
        for _, _, step in walk_steps(endpoint.steps)
    )


def answering_servers(scenario: Scenario, target: str) -> list[str]:
    """The servers that may answer a call to `target`: itself, or a balancer's servers."""
    lb = scenario.topology_graph.nodes.balancer(target)
    return [target] if lb is None else list(lb.server_covered)


def call_edges(scenario: Scenario) -> set[tuple[str, str]]:
    """(source, target) of every edge calls use: caller -> target and answerer -> caller."""
    edges: set[tuple[str, str]] = set()
    for site in call_sites(scenario):
        edges.add((site.caller, site.target))
        for server in answering_servers(scenario, site.target):
            edges.add((server, site.caller))
    return edges
