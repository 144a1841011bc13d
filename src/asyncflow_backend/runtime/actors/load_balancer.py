"""The load balancer."""

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Protocol, runtime_checkable

from asyncflow_backend.config.constants import EndReason, LoadBalancerAlgorithm, Outcome, WhenDown
from asyncflow_backend.metrics.collector import MetricsCollector
from asyncflow_backend.metrics.sampler import Probe
from asyncflow_backend.runtime.actors import BuildError
from asyncflow_backend.runtime.actors.edge import EdgeRuntime
from asyncflow_backend.runtime.context import BuildContext
from asyncflow_backend.runtime.policies.rate_limit import TokenBucketLimiter
from asyncflow_backend.runtime.request import RequestState, SubRequest
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
    """Forwards each request to one of the servers it covers that is up.

    - `round_robin` walks the servers in the order they are listed.
    - `weighted_round_robin` is nginx's smooth weighted round robin: over any
      run of sum(weights) picks each server gets its weight's share, spread out
      rather than in bursts.
    - `least_connection` picks the server with the fewest open connections,
      counting a request from the moment it is sent until the server lets it
      go (as a balancer holding a connection until the response); ties go to
      the tied servers in turn.
    - `random` picks uniformly.
    - `power_of_two_choices` draws two distinct servers at random and sends to
      the one with fewer open connections (Mitzenmacher, "The Power of Two
      Choices in Randomized Load Balancing", 2001); a tie goes to the first drawn.

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
        self._algorithm = algorithm
        self._uniform = uniform
        self._weights = dict(weights or {})
        self._all: dict[str, Backend] = {}
        self._down: dict[str, int] = {}
        """Causes each server is down for (an outage, a failure)."""
        self._collector = collector
        self._rejects_when_none_up = rejects_when_none_up
        self._held: deque[RequestState] = deque()
        self._up: list[Backend] = []
        self._next = 0
        self._credit: dict[str, float] = {}
        self._covered: list[str] = []
        self._choose: Callable[[], Backend] = partial(_POLICIES[algorithm], self)

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
        self._credit = dict.fromkeys(backends, 0.0)
        self._rotate()

    def probes(self, enabled: frozenset[str]) -> list[Probe]:
        """The balancer samples nothing."""
        return []

    def receive(self, request: RequestState) -> None:
        """Send `request` down the edge of the chosen server, or hold or reject it while
        no server is up."""
        if self._up:
            self._choose().edge.send(request)
        elif not self._rejects_when_none_up:
            self._held.append(request)
        elif isinstance(request, SubRequest):
            request.caller.call_lost(request, self.id, EndReason.CALL_REJECTED)
        else:
            assert self._collector is not None
            self._collector.record_end(request, Outcome.REJECTED, self.id, EndReason.NO_SERVER_UP)

    def _round_robin(self) -> Backend:
        up = self._up
        index = self._next % len(up)
        self._next = index + 1
        return up[index]

    def _least_connection(self) -> Backend:
        up = self._up
        count = len(up)
        # Start the scan after the last pick, so ties rotate instead of always going
        # to the first listed server.
        start = self._next % count
        best = up[start]
        fewest = best.open_connections
        for k in range(1, count):
            candidate = up[(start + k) % count]
            connections = candidate.open_connections
            if connections < fewest:
                best, fewest = candidate, connections
        self._next = up.index(best) + 1
        return best

    def _random(self) -> Backend:
        up = self._up
        return up[min(int(self._uniform() * len(up)), len(up) - 1)]

    def _power_of_two_choices(self) -> Backend:
        up = self._up
        count = len(up)
        if count == 1:
            return up[0]
        first = min(int(self._uniform() * count), count - 1)
        second = min(int(self._uniform() * (count - 1)), count - 2)
        if second >= first:
            second += 1
        a, b = up[first], up[second]
        return b if b.open_connections < a.open_connections else a

    def _weighted_round_robin(self) -> Backend:
        credit = self._credit
        total = 0.0
        best: Backend | None = None
        for backend in self._up:
            credit[backend.server_id] += backend.weight
            total += backend.weight
            if best is None or credit[backend.server_id] > credit[best.server_id]:
                best = backend
        assert best is not None
        credit[best.server_id] -= total
        return best

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


_POLICIES: dict[LoadBalancerAlgorithm, Callable[[LoadBalancerRuntime], Backend]] = {
    LoadBalancerAlgorithm.ROUND_ROBIN: LoadBalancerRuntime._round_robin,
    LoadBalancerAlgorithm.LEAST_CONNECTION: LoadBalancerRuntime._least_connection,
    LoadBalancerAlgorithm.RANDOM: LoadBalancerRuntime._random,
    LoadBalancerAlgorithm.POWER_OF_TWO_CHOICES: LoadBalancerRuntime._power_of_two_choices,
    LoadBalancerAlgorithm.WEIGHTED_ROUND_ROBIN: LoadBalancerRuntime._weighted_round_robin,
}
