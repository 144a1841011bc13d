"""A horizontal autoscaler at work: one process per autoscaled replica group.

The group's `max_replicas` servers are all built and covered by its balancers; the
autoscaler keeps those it has not put in service out of rotation (one cause of
`Covering.set_server_up`, which composes with outages). Every `sync_period_s` it reads
the metric of its replicas, asks `runtime.policies.horizontal_scaling` how many to have,
and adds or removes the difference:

- **Adding** puts the lowest-numbered replica out of service in service. It is *starting*
  for `startup_delay_s`: no balancer sends to it and the metric leaves it out (a
  not-yet-ready pod); then it joins the rotation of every balancer that covers the group.
- **Removing** takes the newest replica in service out (the last one added: a starting one
  before any ready one, as Kubernetes' ReplicaSet picks unready and younger pods first).
  It *drains*: no balancer sends it new requests and it finishes the ones it holds. It
  is out of the count and the metric at once, as a terminating pod is. Added back while
  still draining, it starts again and finishes its old requests meanwhile.

A replica is *ready* for a tick when it took traffic through the whole last sync period
(`cpu_utilisation`: Kubernetes' rule that a CPU sample must be taken after the pod became
ready) or at the tick (`in_flight_requests`, a gauge read at the tick). The replicas in
service at the start are ready from time 0.
"""

import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

import simpy

from asyncflow_backend.config.constants import MAX_AUTOSCALER_TICKS, ScalingMetric
from asyncflow_backend.runtime.events.failures import Covering
from asyncflow_backend.runtime.policies.horizontal_scaling import (
    WINDOW_EPSILON_S,
    HorizontalScaling,
    recommend,
)
from asyncflow_backend.schemas.autoscaling import Autoscaler
from asyncflow_backend.schemas.results import AutoscalerTicks, AutoscalingStats, ScalingEvent


class Scalable(Protocol):
    """A replica, as the autoscaler reads it (`runtime.actors.server.ServerRuntime`)."""

    id: str

    @property
    def busy_core_seconds(self) -> float:
        """Core-seconds of the CPU steps started so far."""

    def core_seconds(self, until: float) -> float:
        """Core-seconds the server had from time 0 to `until`."""

    @property
    def in_service(self) -> int:
        """Requests admitted and not yet sent on."""


@dataclass(eq=False)
class _Replica:
    server: Scalable
    serving: bool = False
    """In service: counted, starting or ready (not out, not draining)."""
    in_rotation: bool = False
    ready_at: float = -math.inf
    starts: int = 0
    """Starts so far: a start-up timer that finds another start since is stale."""
    busy: float = 0.0
    capacity: float = 0.0
    """`busy_core_seconds` and `core_seconds` at the last tick."""


@dataclass
class Ticks:
    """What each sync saw and decided, in parallel lists (the first `MAX_AUTOSCALER_TICKS`)."""

    t: list[float] = field(default_factory=list)
    metric: list[float | None] = field(default_factory=list)
    """The metric averaged over the ready replicas; None with none ready."""
    ready: list[int] = field(default_factory=list)
    recommended: list[int | None] = field(default_factory=list)
    """The metric's recommendation before stabilisation and policies."""
    replicas: list[int] = field(default_factory=list)
    """Replicas in service after the decision."""


class HorizontalAutoscaler:
    """Scales one replica group between its `min_replicas` and `max_replicas`."""

    def __init__(
        self,
        env: simpy.Environment,
        spec: Autoscaler,
        servers: Sequence[Scalable],
        initial: int,
        balancers: Sequence[Covering],
    ) -> None:
        self.env = env
        self.spec = spec
        self._replicas = [_Replica(server) for server in servers]
        self._serving: list[_Replica] = []
        """Replicas in service, oldest first."""
        self._initial = initial
        self._balancers = [b for b in balancers if any(b.covers(s.id) for s in servers)]
        self._scaling = HorizontalScaling(spec)
        self.ticks = Ticks()
        self.events: list[tuple[float, int, int]] = []
        """(time, replicas before, after) of each change, the first `MAX_AUTOSCALER_TICKS`."""
        self.ready_over_time: list[tuple[float, int]] = [(0.0, initial)]
        """(time, replicas in rotation) at the start and at each change."""
        self._replica_seconds = 0.0
        self._since = 0.0
        self._in_rotation = initial

    def start(self) -> None:
        """Put the first `initial` replicas in service and ready, take the others out of
        rotation, and register the sync process."""
        for replica in self._replicas[: self._initial]:
            replica.serving = replica.in_rotation = True
            self._serving.append(replica)
        for replica in self._replicas[self._initial :]:
            self._tell_balancers(replica, False)
        self.env.process(self._run())

    def replica_seconds(self, until: float) -> float:
        """Replica-seconds in service from time 0 to `until` (at least the last change)."""
        return self._replica_seconds + len(self._serving) * (until - self._since)

    def summary(self, horizon: float) -> AutoscalingStats:
        """Its size over time and its decisions, up to `horizon`."""
        spec, ticks = self.spec, self.ticks
        sizes = [self._initial, *(after for _, _, after in self.events)]
        steps = [(0.0, self._initial), *((t, after) for t, _, after in self.events)]
        return AutoscalingStats(
            metric=str(spec.metric),
            target=spec.target,
            replicas_mean=self.replica_seconds(horizon) / horizon,
            replicas_min=min(sizes),
            replicas_max=max(sizes),
            replicas_over_time=[*steps, (horizon, steps[-1][1])],
            ready_over_time=[*self.ready_over_time, (horizon, self.ready_over_time[-1][1])],
            events=[
                ScalingEvent(t=t, replicas_before=b, replicas_after=a) for t, b, a in self.events
            ],
            ticks=AutoscalerTicks(
                t=ticks.t,
                metric=ticks.metric,
                ready=ticks.ready,
                recommended=ticks.recommended,
                replicas=ticks.replicas,
            ),
        )

    def _run(self) -> Generator[simpy.Event, None, None]:
        """Yields a timeout to each tick, `k * sync_period_s`, then syncs."""
        env, period = self.env, self.spec.sync_period_s
        k = 1
        while True:
            yield env.timeout(max(0.0, k * period - env.now))
            self._sync(env.now)
            k += 1

    def _sync(self, now: float) -> None:
        spec = self.spec
        values, unready = self._measure(now)
        current = len(self._serving)
        recommended = recommend(current, values, unready, spec.target, spec.tolerance)
        if recommended is not None:
            desired = self._scaling.decide(now, current, recommended)
            while len(self._serving) < desired:
                self._add(now)
            while len(self._serving) > desired:
                self._remove()
            if desired != current:
                self._count_change(now, current)
        self._snapshot(now)
        ticks = self.ticks
        if len(ticks.t) < MAX_AUTOSCALER_TICKS:
            ticks.t.append(now)
            ticks.metric.append(sum(values) / len(values) if values else None)
            ticks.ready.append(len(values))
            ticks.recommended.append(recommended)
            ticks.replicas.append(len(self._serving))

    def _measure(self, now: float) -> tuple[list[float], int]:
        """The metric of each ready replica in service, and how many are not ready."""
        cpu = self.spec.metric is ScalingMetric.CPU_UTILISATION
        ready_by = now - (self.spec.sync_period_s if cpu else 0.0) + WINDOW_EPSILON_S
        values: list[float] = []
        for replica in self._serving:
            if not replica.in_rotation or replica.ready_at > ready_by:
                continue
            server = replica.server
            if cpu:
                capacity = server.core_seconds(now) - replica.capacity
                busy = server.busy_core_seconds - replica.busy
                values.append(busy / capacity if capacity > 0 else 0.0)
            else:
                values.append(float(server.in_service))
        return values, len(self._serving) - len(values)

    def _snapshot(self, now: float) -> None:
        """Start the next period's CPU window of every replica in service."""
        if self.spec.metric is not ScalingMetric.CPU_UTILISATION:
            return
        for replica in self._serving:
            replica.busy = replica.server.busy_core_seconds
            replica.capacity = replica.server.core_seconds(now)

    def _add(self, now: float) -> None:
        replica = next(r for r in self._replicas if not r.serving)
        replica.serving = True
        replica.starts += 1
        replica.ready_at = now + self.spec.startup_delay_s
        self._serving.append(replica)
        if self.spec.startup_delay_s == 0:
            self._rotate(replica, True)
            return
        timer = self.env.timeout(self.spec.startup_delay_s, replica.starts)
        timer.callbacks.append(partial(self._started, replica))

    def _started(self, replica: _Replica, timer: simpy.Event) -> None:
        """The start-up delay is over: the replica takes traffic, unless it was removed
        (or removed and added again) meanwhile."""
        if replica.serving and replica.starts == timer.value:
            self._rotate(replica, True)
            self._note_rotation()

    def _remove(self) -> None:
        replica = self._serving.pop()
        replica.serving = False
        if replica.in_rotation:
            self._rotate(replica, False)

    def _rotate(self, replica: _Replica, up: bool) -> None:
        replica.in_rotation = up
        self._in_rotation += 1 if up else -1
        self._tell_balancers(replica, up)

    def _tell_balancers(self, replica: _Replica, up: bool) -> None:
        for balancer in self._balancers:
            if balancer.covers(replica.server.id):
                balancer.set_server_up(replica.server.id, up)

    def _count_change(self, now: float, before: int) -> None:
        self._replica_seconds += before * (now - self._since)
        self._since = now
        if len(self.events) < MAX_AUTOSCALER_TICKS:
            self.events.append((now, before, len(self._serving)))
        self._note_rotation()

    def _note_rotation(self) -> None:
        series, now = self.ready_over_time, self.env.now
        if series[-1][0] == now:
            series[-1] = (now, self._in_rotation)
        elif series[-1][1] != self._in_rotation and len(series) < MAX_AUTOSCALER_TICKS:
            series.append((now, self._in_rotation))
