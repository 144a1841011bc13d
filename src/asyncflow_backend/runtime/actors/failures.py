"""Servers that go down: a door that holds or rejects arrivals while the server is down,
and random failures that pause (`resume`) or lose (`lose`) the work on it.

Only a server that can go down is built with these: one with `failures`, or one with
`when_down` whose outages no balancer routes around (`build_server` adds them to the
server's class at build time), so a server that never goes down pays nothing.

`resume` is preemptive-resume (the queueing literature's term, e.g. Avi-Itzhak and
Naor, "Some queuing problems with the service station subject to breakdown",
Operations Research 11, 1963): a CPU burst cut by a failure runs its remaining time
after the repair; nothing else starts on the server while it is down. `lose` ends
every request on the server at once, as a crash does, with the withdrawal machinery
of `on_timeout: cancel` letting go of what each one holds.
"""

from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

from asyncflow_backend.config.constants import EndReason, Outcome, WhenDown, WorkInProgress
from asyncflow_backend.resources import ConnectionPool
from asyncflow_backend.runtime.actors.server import CancellingServer, ServerRuntime
from asyncflow_backend.runtime.context import BuildContext
from asyncflow_backend.runtime.request import Fired, RequestState, SubRequest
from asyncflow_backend.schemas.topology import Server


class DoorServer(ServerRuntime):
    """A server that can be down. While it is, a request that reaches it waits at its door,
    in order of arrival, until it is back up (`when_down: wait`), or is rejected at once
    (`reject`: reason `server_down`; a sub-request fails its call as `call_rejected`).

    It is down while at least one cause holds: a failure, an outage."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.down = 0
        """Causes the server is down for right now (a failure, an outage)."""
        self.rejects_when_down = False
        self._held: deque[RequestState] = deque()

    def receive(self, request: RequestState) -> None:
        """Admit `request`, or hold or reject it while the server is down."""
        if not self.down:
            super().receive(request)
        elif self.rejects_when_down:
            if isinstance(request, SubRequest):
                request.caller.call_lost(request, self.id, EndReason.CALL_REJECTED)
            else:
                self._collector.record_end(
                    request, Outcome.REJECTED, self.id, EndReason.SERVER_DOWN
                )
        else:
            self._held.append(request)

    def go_down(self) -> None:
        """One more cause keeps the server down."""
        self.down += 1

    def come_up(self) -> None:
        """One cause less; with none left, the requests held at the door come in, in order."""
        self.down -= 1
        held = self._held
        while held and not self.down:
            self.receive(held.popleft())


MAX_FAILURE_WINDOWS = 500
"""Failure windows a server keeps for the results (the first ones): enough to shade a chart."""


class FailingServer(DoorServer):
    """A server with random failures: `fail` and `repair` are called by its failure
    process (`runtime.events.failures`). It counts its failures and its downtime, and keeps
    the end time of each CPU burst running, so that a failure can cut it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failed = False
        self.failures = 0
        self._downtime = 0.0
        self._failed_since = 0.0
        self._bursts: dict[RequestState, tuple[float, Fired]] = {}
        """Requests on a core: when their burst ends, and the event that ends it."""
        self.windows: list[tuple[float, float]] = []
        """(failure, repair) times of the first `MAX_FAILURE_WINDOWS` repaired failures."""

    def burn(self, request: RequestState, seconds: float) -> None:
        """Burn `seconds` on the request's core, noting when the burst ends."""
        request.spent[self._cpu] += seconds
        event = self.env.timeout(seconds, request)
        event.callbacks.append(self._step_done)
        self._bursts[request] = (self.env._now + seconds, event)

    def _step_done(self, event: Fired) -> None:
        request = event.value
        burst = self._bursts.get(request)
        if burst is None or burst[1] is not event:
            return  # a burst a failure cut: it was resumed by a new one, or lost
        del self._bursts[request]
        super()._step_done(event)

    def fail(self) -> None:
        """The server fails: it goes down and its work waits or is lost."""
        self.failed = True
        self.failures += 1
        self._failed_since = self.env._now
        self.go_down()
        self._on_failure()

    def repair(self) -> None:
        """The server is repaired: its work carries on, then the door opens."""
        now = self.env._now
        self._downtime += now - self._failed_since
        if len(self.windows) < MAX_FAILURE_WINDOWS:
            self.windows.append((self._failed_since, now))
        self.failed = False
        self._on_repair()
        self.come_up()

    def downtime(self, until: float) -> float:
        """Seconds the server spent failed from time 0 to `until` (at least the last
        failure or repair)."""
        ongoing = until - self._failed_since if self.failed else 0.0
        return self._downtime + ongoing

    def failure_windows(self, until: float) -> list[tuple[float, float]]:
        """The failure windows up to `until` (a failure not yet repaired ends there), the
        first `MAX_FAILURE_WINDOWS` of them."""
        windows = [(start, min(end, until)) for start, end in self.windows if start < until]
        if self.failed and self._failed_since < until and len(windows) < MAX_FAILURE_WINDOWS:
            windows.append((self._failed_since, until))
        return windows

    def _cut_bursts(self) -> list[tuple[RequestState, float]]:
        """End every burst now: each request on a core with its remaining seconds, which
        are taken back from the CPU time booked in full when the burst began (the busy
        core-seconds, and the breakdown's CPU part)."""
        now = self.env._now
        cut = [(request, ends - now) for request, (ends, _) in self._bursts.items()]
        self._bursts.clear()
        for request, remaining in cut:
            request.spent[self._cpu] -= remaining
        return cut

    def _on_failure(self) -> None:
        raise NotImplementedError

    def _on_repair(self) -> None:
        raise NotImplementedError


class ResumingServer(FailingServer):
    """`work_in_progress: resume`: while the server is failed nothing starts on it. CPU
    bursts are cut and resume their remaining time at the repair (preemptive-resume);
    a request whose I/O wait or call ends, or that is granted RAM, a core or a
    connection, waits for the repair before it goes on."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deferred: list[Callable[[], None]] = []
        """What was to happen while the server was failed, in order."""

    def _on_failure(self) -> None:
        deferred = self._deferred
        for request, remaining in self._cut_bursts():
            deferred.append(partial(self.burn, request, remaining))

    def _on_repair(self) -> None:
        deferred, self._deferred = self._deferred, []
        for resume in deferred:
            resume()

    def _advance(self, request: RequestState) -> None:
        if self.failed:
            self._deferred.append(partial(self._advance, request))
            return
        super()._advance(request)

    def take_core(self, request: RequestState) -> None:
        """A core granted while failed is held, and its burst waits for the repair."""
        if self.failed:
            self._deferred.append(partial(self.take_core, request))
            return
        super().take_core(request)

    def _take_connection(self, pool: ConnectionPool[RequestState], request: RequestState) -> None:
        if self.failed:
            self._deferred.append(partial(self._take_connection, pool, request))
            return
        super()._take_connection(pool, request)

    def _call_with_connection(
        self, pool: ConnectionPool[RequestState], request: RequestState
    ) -> None:
        if self.failed:
            self._deferred.append(partial(self._call_with_connection, pool, request))
            return
        super()._call_with_connection(pool, request)


class LosingServer(FailingServer, CancellingServer):
    """`work_in_progress: lose`: a failure ends every request on the server at once
    (`failed`, reason `server_failure`, at the server; a sub-request fails its call),
    each letting go of what it holds, as `on_timeout: cancel` withdraws a request, except
    that a CPU burst is cut at once. A request whose timeout already withdrew it leaves
    no second trace."""

    def _on_failure(self) -> None:
        withdrawals = self.withdrawals
        # Queues first, RAM's before the others: letting go of a holder then grants
        # nothing, since nobody waits any more.
        for holder in self.ram.drain():
            self._let_go(holder, holds_ram=False)
        for resource in (*self.pools, self.cores):
            for holder in resource.drain():
                self._let_go(holder, holds_ram=True)
        for request in [*self._sleeping, *self._calling]:
            self.withdraw(request)
            self._lost(request)
        for request, _ in self._cut_bursts():
            request.holds_core = False
            self.cores.release()
            gone = request in withdrawals.gone
            self._stop(request)
            if not gone:
                self._lost(request)

    def _let_go(self, request: RequestState, *, holds_ram: bool) -> None:
        """A request taken out of a queue gives back its RAM (unless it was waiting for it)
        and is lost."""
        plan = request.plan
        assert plan is not None
        request.plan = None
        self.in_service -= 1
        if holds_ram and plan.ram_mb:
            self.ram.release(plan.ram_mb)
        self.withdrawals.where.pop(request, None)
        self._lost(request)

    def _lost(self, request: RequestState) -> None:
        if isinstance(request, SubRequest):
            request.caller.call_lost(request, self.id, EndReason.SERVER_FAILURE)
        else:
            self._collector.record_end(request, Outcome.FAILED, self.id, EndReason.SERVER_FAILURE)

    def _on_repair(self) -> None:
        """Nothing was kept: the server starts empty."""


def down_kinds(spec: Server, has_door: bool) -> tuple[type[ServerRuntime], ...]:
    """The classes a server goes down with, put before its base class: a failure kind for
    a server with `failures`, a door for one whose outages no balancer routes around."""
    if spec.failures is not None:
        lose = spec.failures.work_in_progress is WorkInProgress.LOSE
        return (LosingServer if lose else ResumingServer,)
    return (DoorServer,) if has_door else ()


def build_server(spec: Server, ctx: BuildContext) -> ServerRuntime:
    """The server `spec`, built to go down if it can (see `down_kinds`)."""
    server = ServerRuntime.from_spec(spec, ctx, down_kinds(spec, spec.id in ctx.doors))
    if isinstance(server, DoorServer):
        server.rejects_when_down = spec.when_down is WhenDown.REJECT
    return server
