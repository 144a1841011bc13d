"""Random failures and repairs of a server, as one process per failing server."""

from collections.abc import Generator, Sequence

import simpy

from asyncflow_backend.runtime.actors.failures import FailureModel
from asyncflow_backend.runtime.actors.load_balancer import LoadBalancerRuntime
from asyncflow_backend.samplers import Sampler


class FailureProcess:
    """Alternates a server's up and down times: up for a draw of `time_to_failure`, then
    failed (`FailureModel.fail`, and out of every balancer that covers it) for a draw of
    `time_to_repair`, then repaired, and so on. The failure clock runs whether the server
    is busy or idle."""

    def __init__(
        self,
        env: simpy.Environment,
        server: FailureModel,
        balancers: Sequence[LoadBalancerRuntime],
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
