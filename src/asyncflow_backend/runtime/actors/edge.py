"""Network links."""

import simpy

from asyncflow_backend.config.constants import EndReason
from asyncflow_backend.metrics.breakdown import HopCategory, HopKind
from asyncflow_backend.metrics.catalogue import EDGE_METRICS
from asyncflow_backend.metrics.collector import MetricsCollector
from asyncflow_backend.metrics.sampler import Probe, probes_for
from asyncflow_backend.runtime.actors import Node
from asyncflow_backend.runtime.context import BuildContext
from asyncflow_backend.runtime.events.slowdown import scaled
from asyncflow_backend.runtime.request import Fired, RequestState, SubRequest
from asyncflow_backend.samplers import Sampler, variate
from asyncflow_backend.samplers.variates import batched
from asyncflow_backend.schemas.topology import Edge


class EdgeRuntime:
    """A directed link that delays each request by a latency draw (times the factor of
    any active slowdown) plus any active spike, and drops it with probability
    `dropout_rate` before it sets off.
    """

    def __init__(
        self,
        env: simpy.Environment,
        edge_id: str,
        target: Node,
        latency: Sampler,
        dropout_rate: float,
        uniform: Sampler,
        collector: MetricsCollector,
    ) -> None:
        self.env = env
        self.id = edge_id
        self.target = target
        self._latency = latency
        self._dropout_rate = dropout_rate
        self._uniform = uniform
        self._collector = collector
        self.open_connections = 0
        self.spike_s = 0.0
        """Extra seconds added by the network spikes active now; overlapping spikes add up."""
        self._slot = collector.hops.slot(HopKind.EDGE, edge_id, HopCategory.NETWORK)

    @classmethod
    def from_spec(cls, spec: Edge, target: Node, ctx: BuildContext) -> "EdgeRuntime":
        """The edge `spec`, delivering to `target`, with its own latency and dropout streams;
        its latency draws are scaled if a slowdown targets it."""
        latency = variate(spec.latency, ctx.streams.generator(f"edge:{spec.id}"))
        return cls(
            ctx.env,
            spec.id,
            target,
            scaled(latency, ctx.slowdowns.edges.get(spec.id)),
            spec.dropout_rate,
            batched(ctx.streams.generator(f"dropout:{spec.id}").random),
            ctx.collector,
        )

    def probes(self, enabled: frozenset[str]) -> list[Probe]:
        """The edge's sampled metrics that are enabled."""
        return probes_for(EDGE_METRICS, self, self.id, enabled)

    def send(self, request: RequestState) -> None:
        """Put `request` on the wire; it reaches the target after the drawn delay."""
        if self._dropout_rate and self._uniform() < self._dropout_rate:
            if isinstance(request, SubRequest):
                request.caller.call_lost(request, self.id, EndReason.CALL_DROPPED)
            else:
                self._collector.record_drop(request, self.id)
            return
        self.open_connections += 1
        delay = self._latency() + self.spike_s
        request.spent[self._slot] += delay
        self.env.timeout(delay, request).callbacks.append(self._deliver)

    def _deliver(self, event: Fired) -> None:
        self.open_connections -= 1
        request: RequestState = event.value
        self.target.receive(request)
