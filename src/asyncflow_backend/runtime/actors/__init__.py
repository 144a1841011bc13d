"""The SimPy actors, one module per node kind: generator, client, load balancer, server,
and the edges between them.

Requests move by callbacks on SimPy timeouts rather than by one process per
request: each hop costs one scheduled event and no generator frame.

Every node goes through the same life cycle (read after desmod's components):
it is built from its schema by its kind (`runtime.kinds`), connected to the
edges that leave it (`connect`, which raises `BuildError` for a connection it
needs and did not get), asked for its probes, and read for its results.
"""

from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import simpy

from asyncflow_backend.metrics.sampler import Probe
from asyncflow_backend.runtime.context import BuildError
from asyncflow_backend.runtime.request import RequestState

__all__ = ["BuildError", "Component", "Node", "Source"]

if TYPE_CHECKING:
    from asyncflow_backend.runtime.actors.edge import EdgeRuntime


@runtime_checkable
class Node(Protocol):
    """Anything an edge can deliver a request to."""

    id: str

    def receive(self, request: RequestState) -> None:
        """Take `request`, which has just arrived, and decide where it goes next."""


class Component(Protocol):
    """A built node: it connects to its out edges and declares its probes."""

    id: str

    def connect(self, out_edges: Mapping[str, "EdgeRuntime"]) -> None:
        """Take the edges leaving this node, by target id.

        Raises `BuildError` if an edge it needs is missing.
        """

    def probes(self, enabled: frozenset[str]) -> list[Probe]:
        """One probe per enabled metric of this node (and of what it owns, such as pools)."""


@runtime_checkable
class Source(Protocol):
    """A node with a process of its own: a workload, which the model starts."""

    def run(self) -> Generator[simpy.Event, None, None]:
        """The node's SimPy process."""
