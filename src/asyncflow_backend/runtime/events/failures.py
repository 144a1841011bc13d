"""Random failures and repairs of a server, as one process per failing server."""

from collections.abc import Generator, Sequence
from typing import Protocol, runtime_checkable

import simpy

from asyncflow_backend.samplers import Sampler


class Failing(Protocol):
    """A server's failure model (`runtime.actors.failures.FailureModel`)."""

    id: str

    def fail(self) -> None:
        """The server fails."""

    def repair(self) -> None:
        """The server is repaired."""


@runtime_checkable
class Covering(Protocol):
    """A node that spreads requests over servers (a load balancer), and stops sending to
    one while it is down."""

    def covers(self, server_id: str) -> bool:
        """True if `server_id` is one of the servers it sends to."""

    def set_server_up(self, server_id: str, up: bool) -> None:
        """One cause more (`up` False) or less that keeps `server_id` out of rotation."""


class FailureProcess:
    """Alternates a server's up and down times: up for a draw of `time_to_failure`, then
    failed (`Failing.fail`, and out of every balancer that covers it) for a draw of
    `time_to_repair`, then repaired, and so on. The failure clock runs whether the server
    is busy or idle."""

    def __init__(
        self,
        env: simpy.Environment,
        server: Failing,
        balancers: Sequence[Covering],
        time_to_failure: Sampler,
        time_to_repair: Sampler,
    ) -> None:
        self.env = env
        self.server = server
        self._balancers = [b for b in balancers if b.covers(server.id)]
        self._time_to_failure = time_to_failure
        self._time_to_repair = time_to_repair

    def start(self) -> None:
        """Register the process."""
        self.env.process(self._cycle())

    def _cycle(self) -> Generator[simpy.Event, None, None]:
        """Yields a timeout until each failure, then one until its repair."""
        server = self.server
        while True:
            yield self.env.timeout(self._time_to_failure())
            server.fail()
            for balancer in self._balancers:
                balancer.set_server_up(server.id, up=False)
            yield self.env.timeout(self._time_to_repair())
            server.repair()
            for balancer in self._balancers:
                balancer.set_server_up(server.id, up=True)
