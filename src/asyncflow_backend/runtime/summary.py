"""What a node reads its results with, and the block of results it gives back.

The last step of a node's life cycle (`runtime.actors`): once the run is over, the
runner asks every node for its block (`summarise`) and puts the blocks together into
the results document, in the order the nodes were built.
"""

from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

from asyncflow_backend.metrics.analyzer import Probes
from asyncflow_backend.schemas.results import CallStats, ClosedLoopStats, PoolStats, ServerStats


@dataclass(frozen=True)
class Reading:
    """What the run leaves for the nodes to read: its horizon, its sampled series and the
    latencies of the completed requests of each workload."""

    horizon_s: float
    probes: Probes
    """Every probe, by (metric, component id)."""
    latencies: Callable[[str], "array[float]"]
    """The latencies (seconds) of the completed requests a generator, by id, sent."""


@dataclass
class ResultsBlock:
    """A node's part of the results document: its entries in the document's maps, by id.

    Empty for a node that reports nothing of its own (its numbers are the collector's)."""

    servers: dict[str, ServerStats] = field(default_factory=dict)
    pools: dict[str, PoolStats] = field(default_factory=dict)
    """Connection pools by `server:pool`."""
    calls: dict[str, CallStats] = field(default_factory=dict)
    """Call sites by `server:endpoint#step->target`."""
    visits: dict[str, float] = field(default_factory=dict)
    """Seconds of the visits to each server that the breakdown splits (`visit_seconds`)."""
    closed: dict[str, ClosedLoopStats] = field(default_factory=dict)
    """The closed-loop reading of each closed workload, by generator id."""

    def add(self, other: "ResultsBlock") -> None:
        """Put `other`'s entries after this block's."""
        self.servers.update(other.servers)
        self.pools.update(other.pools)
        self.calls.update(other.calls)
        self.visits.update(other.visits)
        self.closed.update(other.closed)
