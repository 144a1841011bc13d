"""Opening and closing the windows of injected events at their simulated times."""

from collections.abc import Generator, Mapping, Sequence
from typing import Protocol

import simpy

from asyncflow_backend.runtime.events.failures import Covering
from asyncflow_backend.runtime.events.slowdown import Slowdowns
from asyncflow_backend.schemas.events import EventInjection


class Spiking(Protocol):
    """An edge, whose delay a spike adds to."""

    spike_s: float
    """Seconds added to every delay drawn now."""


class Closable(Protocol):
    """A server's door (`runtime.actors.failures.Door`), closed while it is down."""

    def go_down(self) -> None:
        """One more cause keeps the server down."""

    def come_up(self) -> None:
        """One cause less keeps the server down."""


class EventInjector:
    """Applies each event as its own process: spikes add to an edge's delay while they
    last (overlapping spikes add up); an outage takes a server out of the load
    balancers that cover it and puts it back when it ends. Requests already sent
    to a server that goes down are still served: the outage stops new traffic.
    A server no balancer covers closes its door instead (`Door`): requests
    that reach it wait or are rejected, as its `when_down` says. A slowdown
    multiplies its target's factors (`Slowdown`) while it lasts: draws made then
    are scaled, those made before are not.
    """

    def __init__(
        self,
        env: simpy.Environment,
        edges: Mapping[str, Spiking],
        balancers: Sequence[Covering],
        doors: Mapping[str, Closable],
        slowdowns: Slowdowns,
    ) -> None:
        self.env = env
        self._edges = edges
        self._balancers = balancers
        self._doors = doors
        self._slowdowns = slowdowns

    def start(self, events: list[EventInjection]) -> None:
        """Register one process per event."""
        for event in events:
            self.env.process(self._window(event))

    def _window(self, event: EventInjection) -> Generator[simpy.Event, None, None]:
        """Yields a timeout until the window opens, then one until it closes."""
        yield self.env.timeout(event.start.t_start)
        self._apply(event, opening=True)
        yield self.env.timeout(event.end.t_end - self.env.now)
        self._apply(event, opening=False)

    def _apply(self, event: EventInjection, *, opening: bool) -> None:
        if event.is_outage:
            door = self._doors.get(event.target_id)
            if door is not None:
                if opening:
                    door.go_down()
                else:
                    door.come_up()
                return
            for balancer in self._balancers:
                if balancer.covers(event.target_id):
                    balancer.set_server_up(event.target_id, up=not opening)
            return
        if event.is_slowdown:
            factor = event.start.factor or 1.0
            for slowdown in self._slowdowns.of_event(event):
                if opening:
                    slowdown.open(factor)
                else:
                    slowdown.close(factor)
            return
        spike = event.start.spike_s or 0.0
        edge = self._edges[event.target_id]
        edge.spike_s = edge.spike_s + spike if opening else max(0.0, edge.spike_s - spike)
