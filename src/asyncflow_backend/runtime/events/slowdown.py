"""Slowdowns: the factors injected windows multiply a server's step times and an edge's
latency by, bound into the draws of their targets only."""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from asyncflow_backend.config.constants import EventKind, SlowdownScope
from asyncflow_backend.samplers import Sampler
from asyncflow_backend.schemas.events import EventInjection


class Slowdown:
    """What one target's draws are multiplied by now: the product of the factors of the
    slowdown windows open on it (overlapping windows multiply), 1 while none is."""

    __slots__ = ("_open", "factor")

    def __init__(self) -> None:
        self.factor = 1.0
        self._open: list[float] = []

    def open(self, factor: float) -> None:
        """A window multiplying by `factor` opens."""
        self._open.append(factor)
        self.factor = float(math.prod(self._open))

    def close(self, factor: float) -> None:
        """A window multiplying by `factor` closes."""
        self._open.remove(factor)
        # The product of those still open, not a division: exactly 1 once all are closed.
        self.factor = float(math.prod(self._open))


def scaled(draw: Sampler, slowdown: Slowdown | None) -> Sampler:
    """`draw`, each value multiplied by `slowdown`'s factor in force when it is drawn; `draw`
    itself for a target no slowdown has (so that it pays nothing)."""
    if slowdown is None:
        return draw

    def scaled_draw() -> float:
        return draw() * slowdown.factor

    return scaled_draw


@dataclass(frozen=True)
class Slowdowns:
    """The slowdowns of a run by target: servers' CPU and I/O step times (by server id)
    and edges' latencies (by edge id). Only the targets of some slowdown event have one,
    so every other server and edge draws as it always does, with no factor to read."""

    cpu: Mapping[str, Slowdown] = field(default_factory=dict)
    io: Mapping[str, Slowdown] = field(default_factory=dict)
    edges: Mapping[str, Slowdown] = field(default_factory=dict)

    @classmethod
    def of(cls, events: Iterable[EventInjection]) -> "Slowdowns":
        """One `Slowdown` per target (and per server part) of the slowdown `events`."""
        cpu: dict[str, Slowdown] = {}
        io: dict[str, Slowdown] = {}
        edges: dict[str, Slowdown] = {}
        for event in events:
            target = event.target_id
            if event.start.kind == EventKind.EDGE_SLOWDOWN_START:
                edges.setdefault(target, Slowdown())
            if event.scope in (SlowdownScope.CPU, SlowdownScope.BOTH):
                cpu.setdefault(target, Slowdown())
            if event.scope in (SlowdownScope.IO, SlowdownScope.BOTH):
                io.setdefault(target, Slowdown())
        return cls(cpu, io, edges)

    def of_event(self, event: EventInjection) -> list[Slowdown]:
        """The slowdowns the window of `event` opens and closes (none for other events)."""
        if event.start.kind == EventKind.EDGE_SLOWDOWN_START:
            return [self.edges[event.target_id]]
        scope = event.scope
        parts = []
        if scope in (SlowdownScope.CPU, SlowdownScope.BOTH):
            parts.append(self.cpu[event.target_id])
        if scope in (SlowdownScope.IO, SlowdownScope.BOTH):
            parts.append(self.io[event.target_id])
        return parts
