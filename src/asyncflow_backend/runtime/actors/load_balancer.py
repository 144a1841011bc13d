"""The load balancer."""

from dataclasses import dataclass

from asyncflow_backend.config.constants import LoadBalancerAlgorithm
from asyncflow_backend.runtime.actors.edge import EdgeRuntime
from asyncflow_backend.runtime.actors.server import ServerRuntime
from asyncflow_backend.runtime.request import RequestState


@dataclass(frozen=True, slots=True)
class Backend:
    """A server behind the balancer and the edge that leads to it."""

    edge: EdgeRuntime
    server: ServerRuntime

    @property
    def open_connections(self) -> int:
        """Requests sent to this server that have not left it yet: on the wire or inside."""
        return self.edge.open_connections + self.server.in_service


class LoadBalancerRuntime:
    """Forwards each request to one of the servers it covers that is up.

    Round robin walks the servers in the order they are listed, skipping those
    that are down. Least connection picks the server with the fewest open
    connections, counting a request from the moment it is sent until the
    server lets it go (as a balancer holding a connection until the response);
    the first listed wins ties.
    """

    def __init__(
        self, lb_id: str, algorithm: LoadBalancerAlgorithm, backends: dict[str, Backend]
    ) -> None:
        self.id = lb_id
        self._algorithm = algorithm
        self._all = backends
        self._down: set[str] = set()
        self._up: list[Backend] = list(backends.values())
        self._next = 0

    def receive(self, request: RequestState) -> None:
        """Send `request` down the edge of the chosen server."""
        self._choose().edge.send(request)

    def _choose(self) -> Backend:
        up = self._up
        if self._algorithm is LoadBalancerAlgorithm.LEAST_CONNECTION:
            return min(up, key=_open_connections)
        index = self._next % len(up)
        self._next = index + 1
        return up[index]

    def set_server_up(self, server_id: str, up: bool) -> None:
        """Take a server out of rotation, or bring it back in its listed position."""
        if up:
            self._down.discard(server_id)
        else:
            self._down.add(server_id)
        self._up = [backend for sid, backend in self._all.items() if sid not in self._down]

    def covers(self, server_id: str) -> bool:
        """True if `server_id` is one of this balancer's servers."""
        return server_id in self._all


def _open_connections(backend: Backend) -> int:
    return backend.open_connections
