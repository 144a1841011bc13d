"""The load balancer."""

from asyncflow_backend.config.constants import LoadBalancerAlgorithm
from asyncflow_backend.runtime.actors.edge import EdgeRuntime
from asyncflow_backend.runtime.request import RequestState


class LoadBalancerRuntime:
    """Forwards each request to one of the servers it covers that is up.

    Round robin walks the servers in the order they are listed, skipping those
    that are down. Least connection picks the edge with the fewest requests
    on the wire, the first listed on ties.
    """

    def __init__(
        self, lb_id: str, algorithm: LoadBalancerAlgorithm, edges_by_server: dict[str, EdgeRuntime]
    ) -> None:
        self.id = lb_id
        self._algorithm = algorithm
        self._all = edges_by_server
        self._down: set[str] = set()
        self._up: list[EdgeRuntime] = list(edges_by_server.values())
        self._next = 0

    def receive(self, request: RequestState) -> None:
        """Send `request` down the edge of the chosen server."""
        self._choose().send(request)

    def _choose(self) -> EdgeRuntime:
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
        self._up = [edge for sid, edge in self._all.items() if sid not in self._down]

    def covers(self, server_id: str) -> bool:
        """True if `server_id` is one of this balancer's servers."""
        return server_id in self._all


def _open_connections(edge: EdgeRuntime) -> int:
    return edge.open_connections
