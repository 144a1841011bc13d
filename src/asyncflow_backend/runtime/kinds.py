"""The node kinds of the scenario language and how each is built: the registry that
`SimulationModel.build` walks.

Adding a kind means one actor module (with `from_spec`, `connect` and `probes`)
and one row here; the model's passes do the rest.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from asyncflow_backend.runtime.actors import Component
from asyncflow_backend.runtime.actors.client import ClientRuntime
from asyncflow_backend.runtime.actors.generator import RequestGenerator
from asyncflow_backend.runtime.actors.load_balancer import LoadBalancerRuntime
from asyncflow_backend.runtime.actors.server import ServerRuntime
from asyncflow_backend.runtime.context import BuildContext
from asyncflow_backend.schemas.scenario import Scenario


@dataclass(frozen=True)
class NodeKind:
    """One kind of node: where its specs are in a scenario and how one is built."""

    name: str
    specs: Callable[[Scenario], Sequence[Any]]
    build: Callable[[Any, BuildContext], Component]


NODE_KINDS: tuple[NodeKind, ...] = (
    NodeKind("generator", lambda s: [s.rqs_input], RequestGenerator.from_spec),
    NodeKind("client", lambda s: [s.topology_graph.nodes.client], ClientRuntime.from_spec),
    NodeKind(
        "load_balancer",
        lambda s: [lb] if (lb := s.topology_graph.nodes.load_balancer) else [],
        LoadBalancerRuntime.from_spec,
    ),
    NodeKind("server", lambda s: s.topology_graph.nodes.servers, ServerRuntime.from_spec),
)
"""Every node kind, in the order they are built (and their probes listed)."""
