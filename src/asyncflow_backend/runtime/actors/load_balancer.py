"""The load balancer."""

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from asyncflow_backend.config.constants import EndReason, LoadBalancerAlgorithm, Outcome, WhenDown
from asyncflow_backend.metrics.collector import MetricsCollector
from asyncflow_backend.metrics.sampler import Probe
from asyncflow_backend.runtime.actors import BuildError, Covering
from asyncflow_backend.runtime.actors.edge import EdgeRuntime
from asyncflow_backend.runtime.context import BuildContext
from asyncflow_backend.runtime.policies.balancing import policy_for
from asyncflow_backend.runtime.policies.rate_limit import TokenBucketLimiter
from asyncflow_backend.runtime.request import RequestState, SubRequest
from asyncflow_backend.runtime.summary import Reading, ResultsBlock
from asyncflow_backend.samplers import Sampler
from asyncflow_backend.samplers.variates import batched
from asyncflow_backend.schemas.topology import LoadBalancer


@runtime_checkable
class Occupied(Protocol):
    """A node that counts the requests it holds."""

    @property
    def in_service(self) -> int:
        """Requests admitted and not yet sent on."""


@dataclass(frozen=True, slots=True)
class Backend:
    """A server behind the balancer, the edge that leads to it, and its weight."""

    server_id: str
    edge: EdgeRuntime
    server: Occupied
    weight: float = 1.0

    @property
    def open_connections(self) -> int:
        """Requests sent to this server that have not left it yet: on the wire or inside."""
        return self.edge.open_connections + self.server.in_service


class LoadBalancerRuntime:
    """Forwards each request to one of the servers it covers that is up, the one its
    policy chooses (`runtime.policies.balancing`).

    Servers that are down are skipped by every policy. While none is up, a request
    waits at the balancer until one is back (`when_none_up: wait`), or is rejected
    (`reject`: reason `no_server_up`; a sub-request fails its call as `call_rejected`).
    """

    def __init__(
        self,
        lb_id: str,
        algorithm: LoadBalancerAlgorithm,
        uniform: Sampler,
        weights: Mapping[str, float] | None = None,
        collector: MetricsCollector | None = None,
        rejects_when_none_up: bool = False,
    ) -> None:
        self.id = lb_id
        self._weights = dict(weights or {})
        self._all: dict[str, Backend] = {}
        self._down: dict[str, int] = {}
        """Causes each server is down for (an outage, a failure)."""
        self._collector = collector
        self._rejects_when_none_up = rejects_when_none_up
        self._held: deque[RequestState] = deque()
        self._up: list[Backend] = []
        self._covered: list[str] = []
        self._choose = policy_for(algorithm, uniform).choose

    @classmethod
    def from_spec(cls, spec: LoadBalancer, ctx: BuildContext) -> "LoadBalancerRuntime":
        """The balancer `spec`; its servers join when it is connected. One with a
        `rate_limit` checks it on each arrival; one without never looks for it."""
        kind = cls if spec.rate_limit is None else RateLimitedBalancer
        balancer = kind(
            spec.id,
            spec.algorithms,
            batched(ctx.streams.generator(f"balancer:{spec.id}").random),
            spec.weights,
            ctx.collector,
            spec.when_none_up is WhenDown.REJECT,
        )
        if isinstance(balancer, RateLimitedBalancer) and spec.rate_limit is not None:
            balancer.limit(TokenBucketLimiter(spec.rate_limit), ctx)
        balancer._covered = list(spec.server_covered)
        return balancer

    def connect(self, out_edges: Mapping[str, EdgeRuntime]) -> None:
        """Put each covered server behind its edge, in the listed order.

        Raises `BuildError` if a covered server has no edge from the balancer.
        """
        missing = [sid for sid in self._covered if sid not in out_edges]
        if missing:
            raise BuildError(
                f"load balancer '{self.id}' has no edge to {', '.join(map(repr, missing))}"
            )
        backends: dict[str, Backend] = {}
        for sid in self._covered:
            edge = out_edges[sid]
            target = edge.target
            if not isinstance(target, Occupied):
                raise BuildError(f"load balancer '{self.id}' covers '{sid}', not a server")
            backends[sid] = Backend(sid, edge, target, self._weights.get(sid, 1.0))
        self._all = backends
        self._rotate()

    def probes(self, enabled: frozenset[str]) -> list[Probe]:
        """The balancer samples nothing."""
        return []

    def start(self, covering: Sequence[Covering]) -> None:
        """The balancer runs no process of its own."""

    def summarise(self, reading: Reading) -> ResultsBlock:
        """Nothing of its own: its drops and rejections are the collector's."""
        return ResultsBlock()

    def receive(self, request: RequestState) -> None:
        """Send `request` down the edge of the chosen server, or hold or reject it while
        no server is up."""
        if self._up:
            self._choose(self._up).edge.send(request)
        elif not self._rejects_when_none_up:
            self._held.append(request)
        elif isinstance(request, SubRequest):
            request.caller.call_lost(request, self.id, EndReason.CALL_REJECTED)
        else:
            assert self._collector is not None
            self._collector.record_end(request, Outcome.REJECTED, self.id, EndReason.NO_SERVER_UP)

    def set_server_up(self, server_id: str, up: bool) -> None:
        """One cause more (`up` False) or less that keeps a server out of rotation; with
        none left it is back in its listed position, and the requests held while no
        server was up go to it, in order."""
        causes = self._down.get(server_id, 0) + (-1 if up else 1)
        if causes > 0:
            self._down[server_id] = causes
        else:
            self._down.pop(server_id, None)
        self._rotate()
        held = self._held
        while held and self._up:
            self.receive(held.popleft())

    def _rotate(self) -> None:
        self._up = [backend for sid, backend in self._all.items() if sid not in self._down]

    def covers(self, server_id: str) -> bool:
        """True if `server_id` is one of this balancer's servers."""
        return server_id in self._all


class RateLimitedBalancer(LoadBalancerRuntime):
    """A balancer with a token-bucket rate limit: a request that finds the bucket empty is
    rejected at once, here (reason `rate_limited`); a rejected sub-request fails its call,
    and its caller learns of it at once (`call_rejected`)."""

    limiter: TokenBucketLimiter
    rejected = 0
    """Requests and sub-requests rejected by the rate limit."""

    def limit(self, limiter: TokenBucketLimiter, ctx: BuildContext) -> None:
        """Check every arrival against `limiter`, counting rejections in `ctx`'s collector."""
        self.limiter = limiter
        self._env = ctx.env
        self._rate_limited_ends: MetricsCollector = ctx.collector

    def receive(self, request: RequestState) -> None:
        """Reject `request` if the bucket is empty, else balance it as any balancer does."""
        if self.limiter.admits(self._env._now):
            super().receive(request)
            return
        self.rejected += 1
        if isinstance(request, SubRequest):
            request.caller.call_lost(request, self.id, EndReason.CALL_REJECTED)
        else:
            self._rate_limited_ends.record_end(
                request, Outcome.REJECTED, self.id, EndReason.RATE_LIMITED
            )
