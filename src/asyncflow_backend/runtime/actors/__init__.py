"""The SimPy actors, one module per node kind: generator, client, load balancer, server,
and the edges between them.

Requests move by callbacks on SimPy timeouts rather than by one process per
request: each hop costs one scheduled event and no generator frame.

Every node goes through the same life cycle (read after desmod's components,
whose `elaborate` and `get_result_hook` these steps follow): it is built from its
schema by its kind (`runtime.kinds`), connected to the edges that leave it
(`connect`, which raises `BuildError` for a connection it needs and did not get),
asked for its probes, started (`start`: the processes it runs of its own), and,
once the run is over, asked for its block of the results (`summarise`).

What a node can do besides is a protocol too: `Source` (a workload, started before
the rest), `Answering` (a node that answers calls), `Calling` (a node whose calls
are answered at a reply port of its own).
"""

from collections.abc import Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import simpy

from asyncflow_backend.metrics.sampler import Probe
from asyncflow_backend.runtime.context import BuildError
from asyncflow_backend.runtime.events.failures import Covering
from asyncflow_backend.runtime.request import RequestState
from asyncflow_backend.runtime.summary import Reading, ResultsBlock

__all__ = ["Answering", "BuildError", "Calling", "Component", "Covering", "Node", "Source"]

if TYPE_CHECKING:
    from asyncflow_backend.runtime.actors.edge import EdgeRuntime


@runtime_checkable
class Node(Protocol):
    """Anything an edge can deliver a request to."""

    id: str

    def receive(self, request: RequestState) -> None:
        """Take `request`, which has just arrived, and decide where it goes next."""


class Component(Protocol):
    """A built node: it connects to its out edges, declares its probes, starts, and
    summarises its results."""

    id: str

    def connect(self, out_edges: Mapping[str, "EdgeRuntime"]) -> None:
        """Take the edges leaving this node, by target id.

        Raises `BuildError` if an edge it needs is missing.
        """

    def probes(self, enabled: frozenset[str]) -> list[Probe]:
        """One probe per enabled metric of this node (and of what it owns, such as pools)."""

    def start(self, covering: Sequence[Covering]) -> None:
        """Start the processes the node runs of its own, if any (a workload's arrivals, a
        server's failures or capacity changes); `covering` are the run's balancers, which
        a server that fails leaves while it is down."""

    def summarise(self, reading: Reading) -> ResultsBlock:
        """The node's block of the results, read once the run is over."""


@runtime_checkable
class Source(Protocol):
    """A workload: a node whose process (`run`, registered by its `start`) makes the
    requests. The model starts the workloads before anything else, then the sampler and
    the injected events, then the other nodes, so that the order of the events scheduled
    at the same instant never depends on the node kinds a scenario has."""

    def run(self) -> Generator[simpy.Event, None, None]:
        """The workload's SimPy process: yields a timeout until each arrival (or each
        change of a closed population)."""


@runtime_checkable
class Answering(Protocol):
    """A node that answers calls: the edges to its callers carry its answers."""

    def answer_calls_from(self, caller: str) -> None:
        """Declare that `caller` calls this node (directly or through a balancer)."""


@runtime_checkable
class Calling(Protocol):
    """A node that makes calls: their answers arrive at its reply port, not its door."""

    @property
    def reply_port(self) -> Node | None:
        """Where the answers to its calls are delivered; None if it makes none."""
