"""The node kinds of the scenario language and how each is built: the registry that
`SimulationModel.build` walks.

A new node kind is a schema model (`schemas/`), an actor module under
`runtime/actors/` whose class meets `runtime.actors.Component` (`from_spec`,
`connect`, `probes`, `start`, `summarise`), one row here, and a results model
(`schemas/results.py`, with its field in `runtime.summary.ResultsBlock`); the
model's passes and the runner do the rest.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from asyncflow_backend.runtime.actors import Component
from asyncflow_backend.runtime.actors.arrivals import ScheduledArrivals
from asyncflow_backend.runtime.actors.client import ClientRuntime
from asyncflow_backend.runtime.actors.closed_users import ClosedUsers
from asyncflow_backend.runtime.actors.generator import RequestGenerator
from asyncflow_backend.runtime.actors.load_balancer import LoadBalancerRuntime
from asyncflow_backend.runtime.actors.retrying_client import RetryingClient
from asyncflow_backend.runtime.context import BuildContext
from asyncflow_backend.runtime.workload_classes import build_class_routed_server
from asyncflow_backend.schemas.scenario import Scenario
from asyncflow_backend.schemas.topology import Client
from asyncflow_backend.schemas.workload import RqsGenerator, WorkloadModel


@dataclass(frozen=True)
class NodeKind:
    """One kind of node: where its specs are in a scenario and how one is built."""

    name: str
    specs: Callable[[Scenario], Sequence[Any]]
    build: Callable[[Any, BuildContext], Component]


GENERATORS: dict[WorkloadModel, Callable[[RqsGenerator, BuildContext], Component]] = {
    WorkloadModel.USERS_PER_WINDOW: RequestGenerator.from_spec,
    WorkloadModel.RATE_SCHEDULE: ScheduledArrivals.from_spec,
    WorkloadModel.CLOSED: ClosedUsers.from_spec,
}
"""The actor of each workload model."""


def build_generator(spec: RqsGenerator, ctx: BuildContext) -> Component:
    """The actor of the workload model `spec` uses."""
    return GENERATORS[spec.model](spec, ctx)


def build_client(spec: Client, ctx: BuildContext) -> ClientRuntime:
    """The client: one that retries when the workload has a retry policy."""
    if ctx.client_retry is not None:
        return RetryingClient.build(spec, ctx, ctx.client_retry)
    return ClientRuntime.from_spec(spec, ctx)


NODE_KINDS: tuple[NodeKind, ...] = (
    NodeKind("generator", lambda s: s.generators, build_generator),
    NodeKind("client", lambda s: [s.topology_graph.nodes.client], build_client),
    NodeKind(
        "load_balancer",
        lambda s: [lb for _, lb in s.topology_graph.nodes.balancers()],
        LoadBalancerRuntime.from_spec,
    ),
    NodeKind("server", lambda s: s.topology_graph.nodes.servers, build_class_routed_server),
)
"""Every node kind, in the order they are built (and their probes listed)."""
