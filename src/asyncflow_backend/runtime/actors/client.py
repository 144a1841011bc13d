"""The client: where requests start their trip and where they complete."""

from asyncflow_backend.metrics.collector import MetricsCollector
from asyncflow_backend.runtime.actors.edge import EdgeRuntime
from asyncflow_backend.runtime.request import RequestState


class ClientRuntime:
    """Sends each new request on, and completes each one that comes back."""

    def __init__(self, client_id: str, collector: MetricsCollector) -> None:
        self.id = client_id
        self._collector = collector
        self.out_edge: EdgeRuntime | None = None

    def receive(self, request: RequestState) -> None:
        """First visit: forward along the out edge. Second visit: the request is complete."""
        if request.returning:
            self._collector.record_completion(request.created_at)
        else:
            request.returning = True
            assert self.out_edge is not None
            self.out_edge.send(request)
