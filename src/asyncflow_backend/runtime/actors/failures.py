"""Servers that go down: a door that holds or rejects arrivals while the server is down,
and random failures that pause (`resume`) or lose (`lose`) the work on it.

Only a server that can go down is built with these collaborators: a failure model for
one with `failures`, a door for one with `failures` or with `when_down` whose outages no
balancer routes around (`build_server` installs them when it builds the server), so a
server that never goes down pays nothing.

`resume` is preemptive-resume (the queueing literature's term, e.g. Avi-Itzhak and
Naor, "Some queuing problems with the service station subject to breakdown",
Operations Research 11, 1963): a CPU burst cut by a failure runs its remaining time
after the repair; nothing else starts on the server while it is down. `lose` ends
every request on the server at once, as a crash does, with the server's withdrawal
book (`runtime.actors.cancellation`) letting go of what each one holds.
"""

from collections import deque
from collections.abc import Callable, Sequence
from functools import partial

from asyncflow_backend.config.constants import EndReason, Outcome, WhenDown, WorkInProgress
from asyncflow_backend.resources import ConnectionPool
from asyncflow_backend.runtime.actors import Covering
from asyncflow_backend.runtime.actors.cancellation import WithdrawalBook
from asyncflow_backend.runtime.actors.server import ServerRuntime
from asyncflow_backend.runtime.context import BuildContext
from asyncflow_backend.runtime.events.failures import FailureProcess
from asyncflow_backend.runtime.request import Fired, RequestState, SubRequest
from asyncflow_backend.samplers import Sampler, variate
from asyncflow_backend.schemas.topology import Server


class Door:
    """The front door of a server that can be down. While it is, a request that reaches it
    waits at the door, in order of arrival, until the server is back up (`when_down:
    wait`), or is rejected at once (`reject`: reason `server_down`; a sub-request fails its
    call as `call_rejected`).

    The server is down while at least one cause holds: a failure, an outage."""

    def __init__(self, server: ServerRuntime, rejects_when_down: bool) -> None:
        self.server = server
        self.id = server.id
        self.down = 0
        """Causes the server is down for right now (a failure, an outage)."""
        self.rejects_when_down = rejects_when_down
        self.held: deque[RequestState] = deque()
        """Requests waiting at the door, in order of arrival."""
        self._admit = server.receive

    def install(self) -> None:
        """Put the door in front of the server's arrivals."""
        self.server.receive = self.receive

    def receive(self, request: RequestState) -> None:
        """Admit `request`, or hold or reject it while the server is down."""
        if not self.down:
            self._admit(request)
        elif self.rejects_when_down:
            # The plain refusal: the request never reached the server's own book-keeping.
            self.server._refuse(request, EndReason.SERVER_DOWN)
        else:
            self.held.append(request)

    def go_down(self) -> None:
        """One more cause keeps the server down."""
        self.down += 1

    def come_up(self) -> None:
        """One cause less; with none left, the requests held at the door come in, in order."""
        self.down -= 1
        held = self.held
        while held and not self.down:
            self.server.receive(held.popleft())


MAX_FAILURE_WINDOWS = 500
"""Failure windows a server keeps for the results (the first ones): enough to shade a chart."""


class FailureModel:
    """The random failures of a server behind `door`: `fail` and `repair` are called by its
    failure process (`runtime.events.failures`). It counts the failures and the downtime,
    and keeps the end time of each CPU burst running, so that a failure can cut it."""

    def __init__(self, server: ServerRuntime, door: Door) -> None:
        self.server = server
        self.id = server.id
        self.door = door
        self.time_to_failure: Sampler | None = None
        """Draws the seconds up before each failure; set when the server is built."""
        self.time_to_repair: Sampler | None = None
        """Draws the seconds down before each repair; set when the server is built."""
        self.failed = False
        self.failures = 0
        self._downtime = 0.0
        self._failed_since = 0.0
        self._bursts: dict[RequestState, tuple[float, Fired]] = {}
        """Requests on a core: when their burst ends, and the event that ends it."""
        self.windows: list[tuple[float, float]] = []
        """(failure, repair) times of the first `MAX_FAILURE_WINDOWS` repaired failures."""
        self._step_done = server.step_done

    def install(self) -> None:
        """Put the model in the server's path: its bursts are noted."""
        self.server.burn = self.burn
        self.server.step_done = self.step_done

    def start(self, covering: Sequence[Covering]) -> None:
        """Start the failure process, which also takes the server out of the balancers of
        `covering` that cover it while it is down."""
        assert self.time_to_failure is not None
        assert self.time_to_repair is not None
        FailureProcess(
            self.server.env, self, covering, self.time_to_failure, self.time_to_repair
        ).start()

    def summary(self, horizon: float) -> dict[str, object]:
        """Availability, failures, downtime and failure windows up to `horizon`: the
        fields they fill in the server's statistics."""
        downtime = min(horizon, self.downtime(horizon))
        return {
            "availability": 1.0 - downtime / horizon,
            "failures": self.failures,
            "downtime_s": downtime,
            "failure_windows": self.failure_windows(horizon),
        }

    def burn(self, request: RequestState, seconds: float) -> None:
        """Burn `seconds` on the request's core, noting when the burst ends."""
        server = self.server
        request.spent[server.cpu_slot] += seconds
        event = server.env.timeout(seconds, request)
        event.callbacks.append(self.step_done)
        self._bursts[request] = (server.env._now + seconds, event)

    def step_done(self, event: Fired) -> None:
        """A burst ended; one a failure cut was resumed by a new one, or lost."""
        request = event.value
        burst = self._bursts.get(request)
        if burst is None or burst[1] is not event:
            return
        del self._bursts[request]
        self._step_done(event)

    def fail(self) -> None:
        """The server fails: it goes down and its work waits or is lost."""
        self.failed = True
        self.failures += 1
        self._failed_since = self.server.env._now
        self.door.go_down()
        self._on_failure()

    def repair(self) -> None:
        """The server is repaired: its work carries on, then the door opens."""
        now = self.server.env._now
        self._downtime += now - self._failed_since
        if len(self.windows) < MAX_FAILURE_WINDOWS:
            self.windows.append((self._failed_since, now))
        self.failed = False
        self._on_repair()
        self.door.come_up()

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
        now = self.server.env._now
        cut = [(request, ends - now) for request, (ends, _) in self._bursts.items()]
        self._bursts.clear()
        cpu = self.server.cpu_slot
        for request, remaining in cut:
            request.spent[cpu] -= remaining
        return cut

    def _on_failure(self) -> None:
        raise NotImplementedError

    def _on_repair(self) -> None:
        raise NotImplementedError


class Resuming(FailureModel):
    """`work_in_progress: resume`: while the server is failed nothing starts on it. CPU
    bursts are cut and resume their remaining time at the repair (preemptive-resume);
    a request whose I/O wait or call ends, or that is granted RAM, a core or a
    connection, waits for the repair before it goes on."""

    def __init__(self, server: ServerRuntime, door: Door) -> None:
        super().__init__(server, door)
        self.deferred: list[Callable[[], None]] = []
        """What was to happen while the server was failed, in order."""
        self._advance = server.advance
        self._take_core = server.take_core
        self._take_connection = server.take_connection
        calls = server.calls
        self._call_with_connection = None if calls is None else calls.call_with_connection

    def install(self) -> None:
        """Put the model in the server's path: whatever would start while the server is
        failed waits for the repair."""
        super().install()
        server = self.server
        server.advance = self.advance
        server.take_core = self.take_core
        server.take_connection = self.take_connection
        if server.calls is not None:
            server.calls.call_with_connection = self.call_with_connection

    def _on_failure(self) -> None:
        deferred = self.deferred
        for request, remaining in self._cut_bursts():
            deferred.append(partial(self.server.burn, request, remaining))

    def _on_repair(self) -> None:
        deferred, self.deferred = self.deferred, []
        for resume in deferred:
            resume()

    def advance(self, request: RequestState) -> None:
        """Run the request's next step, after the repair if the server is failed."""
        if self.failed:
            self.deferred.append(partial(self.advance, request))
            return
        self._advance(request)

    def take_core(self, request: RequestState) -> None:
        """A core granted while failed is held, and its burst waits for the repair."""
        if self.failed:
            self.deferred.append(partial(self.take_core, request))
            return
        self._take_core(request)

    def take_connection(self, pool: ConnectionPool[RequestState], request: RequestState) -> None:
        """A connection granted while failed is held, and its wait starts at the repair."""
        if self.failed:
            self.deferred.append(partial(self.take_connection, pool, request))
            return
        self._take_connection(pool, request)

    def call_with_connection(
        self, pool: ConnectionPool[RequestState], request: RequestState
    ) -> None:
        """A connection granted to a call while failed is held; the call is sent at the
        repair."""
        if self.failed:
            self.deferred.append(partial(self.call_with_connection, pool, request))
            return
        assert self._call_with_connection is not None
        self._call_with_connection(pool, request)


class Losing(FailureModel):
    """`work_in_progress: lose`: a failure ends every request on the server at once
    (`failed`, reason `server_failure`, at the server; a sub-request fails its call),
    each letting go of what it holds, as `on_timeout: cancel` withdraws a request, except
    that a CPU burst is cut at once. A request whose timeout already withdrew it leaves
    no second trace."""

    def __init__(self, server: ServerRuntime, door: Door, book: WithdrawalBook) -> None:
        super().__init__(server, door)
        self.book = book

    def _on_failure(self) -> None:
        server, book = self.server, self.book
        # Queues first, RAM's before the others: letting go of a holder then grants
        # nothing, since nobody waits any more.
        for holder in server.ram.drain():
            self._let_go(holder, holds_ram=False)
        for resource in (*server.pools, server.cores):
            for holder in resource.drain():
                self._let_go(holder, holds_ram=True)
        for request in [*book.sleeping, *book.calling]:
            book.withdraw(request)
            self._lost(request)
        for request, _ in self._cut_bursts():
            request.holds_core = False
            server.cores.release()
            gone = request in book.withdrawals.gone
            book.stop(request)
            if not gone:
                self._lost(request)

    def _let_go(self, request: RequestState, *, holds_ram: bool) -> None:
        """A request taken out of a queue gives back its RAM (unless it was waiting for it)
        and is lost."""
        self.server.let_go(request, holds_ram=holds_ram)
        self.book.withdrawals.where.pop(request, None)
        self._lost(request)

    def _lost(self, request: RequestState) -> None:
        if isinstance(request, SubRequest):
            request.caller.call_lost(request, self.id, EndReason.SERVER_FAILURE)
        else:
            self.server.collector.record_end(
                request, Outcome.FAILED, self.id, EndReason.SERVER_FAILURE
            )

    def _on_repair(self) -> None:
        """Nothing was kept: the server starts empty."""


def build_server(spec: Server, ctx: BuildContext) -> ServerRuntime:
    """The server `spec`, built to go down if it can: with a failure model (and its door)
    for a server with `failures`, with a door alone for one whose outages no balancer
    routes around. A server that loses work on a failure has a withdrawal book even in a
    run that withdraws nothing else."""
    lose = spec.failures is not None and spec.failures.work_in_progress is WorkInProgress.LOSE
    server = ServerRuntime.from_spec(spec, ctx, own_withdrawals=lose)
    if spec.failures is None and spec.id not in ctx.doors:
        return server
    door = Door(server, rejects_when_down=spec.when_down is WhenDown.REJECT)
    server.door = door
    if spec.failures is not None:
        if lose:
            assert server.book is not None
            failure: FailureModel = Losing(server, door, server.book)
        else:
            failure = Resuming(server, door)
        failure.time_to_failure = variate(
            spec.failures.time_to_failure, ctx.streams.generator(f"fail:{spec.id}")
        )
        failure.time_to_repair = variate(
            spec.failures.time_to_repair, ctx.streams.generator(f"repair:{spec.id}")
        )
        failure.install()
        server.failure = failure
    door.install()
    return server
