"""The client: where requests start their trip and where they complete."""

from collections.abc import Mapping, Sequence

from asyncflow_backend.metrics.collector import MetricsCollector
from asyncflow_backend.metrics.sampler import Probe
from asyncflow_backend.runtime.actors import BuildError, Covering
from asyncflow_backend.runtime.actors.edge import EdgeRuntime
from asyncflow_backend.runtime.context import BuildContext
from asyncflow_backend.runtime.request import RequestState
from asyncflow_backend.runtime.summary import Reading, ResultsBlock
from asyncflow_backend.runtime.timeouts import Expiry
from asyncflow_backend.schemas.topology import Client


class ClientRuntime:
    """Sends each new request on, and completes each one that comes back."""

    def __init__(self, client_id: str, collector: MetricsCollector) -> None:
        self.id = client_id
        self._collector = collector
        self.out_edge: EdgeRuntime | None = None

    @classmethod
    def from_spec(cls, spec: Client, ctx: BuildContext) -> "ClientRuntime":
        """The client `spec`, recording completions in the run's collector; one that arms
        a timeout on each request when the scenario has a client timeout."""
        timeouts = ctx.timeouts
        if timeouts is None or timeouts.client_timeout is None:
            return cls(spec.id, ctx.collector)
        withdrawals = timeouts.withdrawals if timeouts.cancel_on_client_timeout else None
        expiry = Expiry(ctx.env, spec.id, timeouts.client_timeout, ctx.collector, withdrawals)
        return TimingOutClient(spec.id, ctx.collector, expiry)

    def connect(self, out_edges: Mapping[str, EdgeRuntime]) -> None:
        """Take the one edge that carries requests into the system.

        Raises `BuildError` unless exactly one edge leaves the client.
        """
        self.out_edge = only_out_edge(self.id, out_edges)

    def probes(self, enabled: frozenset[str]) -> list[Probe]:
        """The client samples nothing."""
        return []

    def start(self, covering: Sequence[Covering]) -> None:
        """The client runs no process of its own."""

    def summarise(self, reading: Reading) -> ResultsBlock:
        """Nothing of its own: the collector counts what ends at the client."""
        return ResultsBlock()

    def receive(self, request: RequestState) -> None:
        """First visit: forward along the out edge. Second visit: the request is complete."""
        if request.returning:
            self._collector.record_completion(request)
        else:
            request.returning = True
            assert self.out_edge is not None
            self.out_edge.send(request)


class TimingOutClient(ClientRuntime):
    """A client with a timeout: it arms each request's timer as it sends it, and an answer
    that comes after the timer fired is a late answer, not a completion."""

    def __init__(self, client_id: str, collector: MetricsCollector, expiry: Expiry) -> None:
        super().__init__(client_id, collector)
        self.expiry = expiry

    def receive(self, request: RequestState) -> None:
        """First visit: arm the timeout and forward. Second: complete, or note a late answer."""
        if request.returning:
            if self.expiry.answered(request):
                self._collector.record_completion(request)
            else:
                self._collector.record_late_answer()
        else:
            request.returning = True
            self.expiry.arm(request)
            assert self.out_edge is not None
            self.out_edge.send(request)


def only_out_edge(node_id: str, out_edges: Mapping[str, EdgeRuntime]) -> EdgeRuntime:
    """The single edge leaving `node_id`. Raises `BuildError` if there is not exactly one."""
    if len(out_edges) != 1:
        raise BuildError(
            f"node '{node_id}' needs exactly one out edge, got {len(out_edges)}"
            + (f" (to {', '.join(sorted(out_edges))})" if out_edges else "")
        )
    return next(iter(out_edges.values()))
