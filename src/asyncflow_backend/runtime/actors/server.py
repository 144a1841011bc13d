"""Servers: RAM reserved up front, cores held through CPU steps, released during I/O."""

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, cast

import simpy

from asyncflow_backend.config.constants import (
    EndReason,
    Outcome,
)
from asyncflow_backend.metrics.breakdown import HopCategory, HopKind
from asyncflow_backend.metrics.catalogue import POOL_METRICS, SERVER_METRICS
from asyncflow_backend.metrics.collector import MetricsCollector
from asyncflow_backend.metrics.sampler import Probe, probes_for
from asyncflow_backend.resources import ConnectionPool, CoreSet, RamPool
from asyncflow_backend.runtime.actors import BuildError
from asyncflow_backend.runtime.actors.edge import EdgeRuntime
from asyncflow_backend.runtime.admission import AdmissionCheck, admission_checks
from asyncflow_backend.runtime.context import BuildContext
from asyncflow_backend.runtime.plans import compile_plans, endpoint_picker
from asyncflow_backend.runtime.policies.circuit_breaker import Breaker
from asyncflow_backend.runtime.policies.retry import sub_request_outcome
from asyncflow_backend.runtime.request import Fired, RequestState, RetriedSubRequest, SubRequest
from asyncflow_backend.runtime.steps import (
    CallSite,
    CallStep,
    EndpointPlan,
    Guard,
    Join,
    TimedJoin,
)
from asyncflow_backend.runtime.timeouts import Withdrawals
from asyncflow_backend.schemas.topology import Server


class ServerRuntime:
    """An asynchronous server with `cpu_cores` event loops sharing `ram_mb` of memory.

    A request picks an endpoint, reserves the RAM of all its RAM steps (waiting
    in FIFO order if memory is short), then runs its steps in order. A CPU step
    needs a core; consecutive CPU steps keep it; an I/O step gives it back and
    waits without using CPU, holding one connection of a pool if it names one
    (queueing FIFO for it first). At the end the core and the RAM are released
    and the request leaves along the out edge.

    Built from a `Server` spec by `runtime.actors.kinds`; connected to its out
    edge (optional: a server no edge reaches may have none); asked for its
    results through its plans' `times`, `busy_core_seconds` and its resources.
    """

    def __init__(
        self,
        env: simpy.Environment,
        server_id: str,
        cores: int,
        ram_mb: float,
        endpoints: list[EndpointPlan],
        pick_endpoint: Callable[[], int],
        collector: MetricsCollector,
        pools: list[ConnectionPool[RequestState]] | None = None,
    ) -> None:
        self.env = env
        self._collector = collector
        self.id = server_id
        self.cores: CoreSet[RequestState] = CoreSet(cores)
        self.cpu_cores = cores
        """Cores the scenario gives it (`server_resources.cpu_cores`), before any change."""
        self.ram: RamPool[RequestState] = RamPool(ram_mb)
        self.pools: list[ConnectionPool[RequestState]] = pools or []
        self.endpoints = endpoints
        self._pick_endpoint = pick_endpoint
        self.out_edge: EdgeRuntime | None = None
        self.io_waiting = 0
        """Requests parked in an I/O wait: the event loop's sleeping tasks."""
        self._core_seconds = 0.0
        """Core-seconds there were before `_cores_since` (they change by `set_cores`)."""
        self._cores_since = 0.0
        self.in_service = 0
        """Requests admitted and not yet sent on: waiting for RAM, a core, or I/O, or running."""
        self._connection_granted = [partial(self._take_connection, pool) for pool in self.pools]
        self._connection_for_call = [partial(self._call_with_connection, p) for p in self.pools]
        self.call_sites: list[CallSite] = [
            site
            for plan in endpoints
            for step in plan.steps
            if isinstance(step, CallStep)
            for site in step.sites
        ]
        self.calls_waiting = 0
        """Requests waiting for the answer to a call."""
        self.callers: set[str] = set()
        """Servers whose calls this one answers (`answer_calls_from`)."""
        self.reply_edges: dict[str, EdgeRuntime] = {}
        self.reply_port = _ReplyPort(self)
        """Where answers to this server's calls are delivered."""
        self.withdrawals: Withdrawals | None = None
        """Where requests whose timeout fired under `cancel` are kept; None when the run
        never withdraws anything."""
        # Slots of the hop totals (`metrics.breakdown`) this server's spans go to; the pool,
        # call and nested slots are only ever used by servers with pools or calls.
        hops = collector.hops
        self._visit = hops.slot(HopKind.SERVER, server_id, HopCategory.VISIT)
        self._cpu = hops.slot(HopKind.SERVER, server_id, HopCategory.CPU)
        self._io = hops.slot(HopKind.SERVER, server_id, HopCategory.IO)
        self._pool_wait = self._calls = self._nested = self._visit
        if self.pools:
            self._pool_wait = hops.slot(HopKind.SERVER, server_id, HopCategory.POOL_WAIT)
        if self.call_sites:
            self._calls = hops.slot(HopKind.SERVER, server_id, HopCategory.CALLS)
            self._nested = hops.slot(HopKind.SERVER, server_id, HopCategory.NESTED)

    # Only servers whose call steps retry or have a breaker use these: set on first use
    # (`retrying`) or at build time (`_breaker_calls`), so others carry nothing more.
    retrying = 0
    """Sub-requests of this server's calls waiting out a backoff before they are sent again."""
    _breaker_calls: dict[RequestState, int]
    """Requests in a call a circuit breaker let through: the breaker's generation then."""

    @classmethod
    def from_spec(
        cls,
        spec: Server,
        ctx: BuildContext,
        extra_kinds: tuple[type["ServerRuntime"], ...] = (),
    ) -> "ServerRuntime":
        """The server `spec` with its endpoints compiled to plans and its pools made; its
        class is the one its admission caps and the run's timeouts call for, with
        `extra_kinds` (classes that go down, say) put before it.

        Each step draws from its own stream (`step:{server}:{endpoint}:{step}`), so
        adding a step elsewhere does not change this one's draws.
        """
        names = list(spec.server_resources.pool_sizes())
        pools: list[ConnectionPool[RequestState]] = [
            ConnectionPool(f"{spec.id}:{name}", size)
            for name, size in spec.server_resources.pool_sizes().items()
        ]
        plans = compile_plans(spec, names, ctx)
        # The choice is made here, once: a server without caps never checks any, and one
        # in a run where nothing is ever withdrawn never looks for withdrawn requests.
        withdrawals = ctx.timeouts.withdrawals if ctx.timeouts is not None else None
        if withdrawals is None and any(issubclass(k, CancellingServer) for k in extra_kinds):
            withdrawals = Withdrawals()  # its own: it withdraws what nobody else does
        base = _SERVER_CLASSES[spec.admission is not None, withdrawals is not None]
        kind = _composed(*extra_kinds, base) if extra_kinds else base
        server = kind(
            ctx.env,
            spec.id,
            spec.server_resources.cpu_cores,
            spec.server_resources.ram_mb,
            plans,
            endpoint_picker(spec, ctx.streams.generator(f"endpoint:{spec.id}")),
            ctx.collector,
            pools,
        )
        if isinstance(server, AdmittingServer) and spec.admission is not None:
            server.checks = admission_checks(spec.admission)
        server.withdrawals = withdrawals
        if any(isinstance(site.breaker, Breaker) for site in server.call_sites):
            server._breaker_calls = {}
        return server

    def answer_calls_from(self, caller: str) -> None:
        """Declare that `caller` calls this server (directly or through a balancer), so the
        edge to it carries answers."""
        self.callers.add(caller)

    @property
    def visit_seconds(self) -> float:
        """Seconds of the visits that ended so far, those of parallel call branches left out:
        what the breakdown splits into this server's categories."""
        visits = sum(sum(plan.times) for plan in self.endpoints)
        return visits - self._collector.hops.scratch[self._visit]

    @property
    def busy_core_seconds(self) -> float:
        """Core-seconds of CPU steps started so far, by every request and sub-request."""
        hops = self._collector.hops
        return hops.totals[self._cpu] + hops.scratch[self._cpu]

    def connect(self, out_edges: Mapping[str, EdgeRuntime]) -> None:
        """Take the edges to the nodes this server calls, the edges answers to its callers
        leave by, and the one edge its own answers leave by (a server no edge reaches, or
        one that only answers calls, may have none).

        Raises `BuildError` if a call or an answer has no edge, or if more than one other
        edge leaves the server.
        """
        routes = dict(out_edges)
        for site in self.call_sites:
            edge = out_edges.get(site.target)
            if edge is None:
                raise BuildError(f"server '{self.id}' calls '{site.target}' but has no edge to it")
            site.edge = edge
            routes.pop(site.target, None)
        for caller in self.callers:
            edge = routes.pop(caller, None)
            if edge is None:
                raise BuildError(f"server '{self.id}' answers '{caller}' but has no edge to it")
            self.reply_edges[caller] = edge
        if len(routes) > 1:
            raise BuildError(f"server '{self.id}' has {len(routes)} out edges; it needs one")
        self.out_edge = next(iter(routes.values()), None)

    def probes(self, enabled: frozenset[str]) -> list[Probe]:
        """The server's enabled sampled metrics, then its pools'."""
        probes = probes_for(SERVER_METRICS, self, self.id, enabled)
        for pool in self.pools:
            probes += probes_for(POOL_METRICS, pool, pool.name, enabled)
        return probes

    def set_cores(self, cores: int) -> None:
        """From now on the server has `cores` cores (a capacity schedule's change).

        A core taken away finishes the CPU step it runs, then is gone; cores
        added start on the ready queue at once.
        """
        now = self.env.now
        self._core_seconds += self.cores.capacity * (now - self._cores_since)
        self._cores_since = now
        self.cores.set_capacity(cores)

    def core_seconds(self, until: float) -> float:
        """Core-seconds the server had from time 0 to `until` (at least the last change)."""
        return self._core_seconds + self.cores.capacity * (until - self._cores_since)

    @property
    def ready_queue_len(self) -> int:
        """Requests ready to run a CPU step and waiting for a core."""
        return self.cores.queued

    @property
    def ram_in_use(self) -> float:
        """Megabytes reserved right now."""
        return self.ram.in_use

    def receive(self, request: RequestState) -> None:
        """Admit `request`: choose its endpoint and reserve its RAM before any step runs."""
        self.in_service += 1
        plan = self.endpoints[self._pick_endpoint()]
        request.plan = plan
        request.step_index = 0
        # SimPy's `now` is a property; its attribute spares a call on each request's path.
        request.arrived_at = self.env._now
        if plan.ram_mb:
            self.ram.request(request, self._advance, plan.ram_mb)
        else:
            self._advance(request)

    def advance(self, request: RequestState) -> None:
        """Run the request's next step, or finish it."""
        self._advance(request)

    def _advance(self, request: RequestState) -> None:
        plan = request.plan
        assert plan is not None
        index = request.step_index
        if index == len(plan.steps):
            self._finish(request)
            return
        request.step_index = index + 1
        plan.steps[index].run(self, request)

    # StepHost: the primitives the steps of `runtime.steps` are made of.

    def burn(self, request: RequestState, seconds: float) -> None:
        """Keep the request's core busy for `seconds`, then move the request on."""
        request.spent[self._cpu] += seconds
        self.env.timeout(seconds, request).callbacks.append(self._step_done)

    def take_core(self, request: RequestState) -> None:
        """Grant callback of the cores: burn the request's current CPU step."""
        request.holds_core = True
        plan = request.plan
        assert plan is not None
        self.burn(request, plan.steps[request.step_index - 1].duration())

    def sleep(self, request: RequestState, seconds: float) -> None:
        """Wait `seconds` on I/O, then move the request on."""
        self.io_waiting += 1
        request.spent[self._io] += seconds
        self.env.timeout(seconds, request).callbacks.append(self._wake_from_io)

    def wait_for_connection(self, request: RequestState, pool: int) -> None:
        """Queue for a connection of pool number `pool`, then wait holding it."""
        request.waited_since = self.env.now
        self.pools[pool].request(request, self._connection_granted[pool])

    def _take_connection(self, pool: ConnectionPool[RequestState], request: RequestState) -> None:
        plan = request.plan
        assert plan is not None
        seconds = plan.steps[request.step_index - 1].duration()
        waited = self.env.now - request.waited_since
        pool.busy_seconds += seconds
        pool.wait_seconds_total += waited
        pool.waits += 1
        spent = request.spent
        spent[self._pool_wait] += waited
        spent[self._io] += seconds
        self.io_waiting += 1
        self.env.timeout(seconds, (request, pool)).callbacks.append(self._wake_from_pooled_io)

    def call(self, request: RequestState, step: CallStep) -> None:
        """Send the call's sub-requests, holding a connection of its pool first if it names one;
        a call its circuit breaker refuses fails at once."""
        if step.breaker is not None and not self._breaker_permits(request, step.breaker):
            self._fail(request, step.place, EndReason.CIRCUIT_OPEN)
            return
        if step.pool is None:
            self._send_calls(request, step)
        else:
            request.waited_since = self.env.now
            self.pools[step.pool].request(request, self._connection_for_call[step.pool])

    def _call_with_connection(
        self, pool: ConnectionPool[RequestState], request: RequestState
    ) -> None:
        now = self.env.now
        waited = now - request.waited_since
        pool.wait_seconds_total += waited
        pool.waits += 1
        request.spent[self._pool_wait] += waited
        # Held until the answers: its length is counted when it is given back.
        request.waited_since = now
        self._send_calls(request, self._current_call(request))

    def _current_call(self, request: RequestState) -> CallStep:
        plan = request.plan
        assert plan is not None
        step = plan.steps[request.step_index - 1]
        assert isinstance(step, CallStep)
        return step

    def _send_calls(self, request: RequestState, step: CallStep) -> Join:
        """Send the step's sub-requests; returns the join that waits for their answers."""
        self.calls_waiting += 1
        now = self.env.now
        # One sub-request's hops tile the wait exactly, so they are booked as the caller's
        # are; parallel ones overlap, and the caller books the join's wait instead.
        spent = request.spent if len(step.sites) == 1 else self._collector.hops.scratch
        if step.timeout is None:
            join = Join(request, len(step.sites), step.wait_for)
            for site in step.sites:
                site.sent += 1
                assert site.edge is not None
                site.edge.send(SubRequest(now, request, self, site, join, spent))
            return join
        timed = TimedJoin(request, len(step.sites), step.wait_for)
        subs = [SubRequest(now, request, self, site, timed, spent) for site in step.sites]
        timed.pending = set(subs)
        self.env.timeout(step.timeout(), timed).callbacks.append(self._call_expired)
        for sub in subs:
            sub.site.sent += 1
            assert sub.site.edge is not None
            sub.site.edge.send(sub)
        return timed

    def _call_expired(self, event: Fired) -> None:
        """A call step's timeout fired: unless its answers are in, the call fails, and the
        sub-requests still out are withdrawn if the step says `cancel`."""
        join: TimedJoin = event.value
        if join.done:
            return
        join.done = True
        parent = join.parent
        step = self._current_call(parent)
        assert join.pending is not None
        if step.retry is not None and join.pending and self._retry_round(join, step):
            return
        for sub in join.pending:
            sub.site.timed_out += 1
            if step.cancel and self.withdrawals is not None:
                self.withdrawals.withdraw(sub, sub.site.id)
        self._end_call(parent, failed=True)
        self._fail(parent, step.place, EndReason.CALL_TIMED_OUT)

    # Circuit breakers: only a step with a breaker gets here.

    def _breaker_permits(self, request: RequestState, breaker: Guard) -> bool:
        generation = breaker.permits(self.env._now)
        if generation is None:
            return False
        self._breaker_calls[request] = generation
        return True

    def _breaker_records(self, request: RequestState, breaker: Guard, failed: bool | None) -> None:
        generation = self._breaker_calls.pop(request)
        if failed is not None:
            breaker.record(generation, failed, self.env._now)

    # Retries of a call step's sub-requests: only a step with a retry policy gets here.

    def _retry_round(self, join: TimedJoin, step: CallStep) -> bool:
        """The timeout of a call step with a retry policy fired: if it retries timeouts, the
        sub-requests still out are abandoned (withdrawn under `cancel`) and sent again after
        the backoff, under a fresh timeout. False if the policy does not retry."""
        assert join.pending is not None
        assert step.retry is not None
        abandoned = list(join.pending)
        delay = step.retry.after_attempt(max(sub.attempt for sub in abandoned), Outcome.TIMED_OUT)
        if delay is None:
            return False
        join.done = False  # the call waits on, through the backoff and the next round
        join.pending.clear()
        for sub in abandoned:
            sub.site.timed_out += 1
            if step.cancel and self.withdrawals is not None:
                self.withdrawals.withdraw(sub, sub.site.id)
        self.retrying += len(abandoned)
        self.env.timeout(delay, (join, abandoned)).callbacks.append(self._resend_round)
        return True

    def _resend_round(self, event: Fired) -> None:
        join: TimedJoin
        abandoned: list[SubRequest]
        join, abandoned = event.value
        self.retrying -= len(abandoned)
        if join.done:
            return
        timeout = self._current_call(join.parent).timeout
        assert timeout is not None
        for sub in abandoned:
            self._resend(sub)
            if join.done:  # lost at once, and not retried: the call has failed
                return
        self.env.timeout(timeout(), join).callbacks.append(self._call_expired)

    def _retried(self, sub: SubRequest, reason: str) -> bool:
        """A sub-request of a call that still waits was lost: True if the step's retry
        policy sends it again (after the backoff)."""
        retry = self._current_call(sub.join.parent).retry
        if retry is None:
            return False
        delay = retry.after_attempt(sub.attempt, sub_request_outcome(reason))
        if delay is None:
            return False
        if sub.join.pending is not None:
            sub.join.pending.discard(sub)
        self.retrying += 1
        self.env.timeout(delay, sub).callbacks.append(self._resend_lost)
        return True

    def _resend_lost(self, event: Fired) -> None:
        self.retrying -= 1
        if not event.value.join.done:
            self._resend(event.value)

    def _resend(self, sub: SubRequest) -> None:
        """Send the next attempt of `sub`, whose call still waits."""
        join = sub.join
        site = sub.site
        again = RetriedSubRequest(
            self.env._now, join.parent, self, site, join, sub.spent, sub.attempt + 1
        )
        site.sent += 1
        site.retries += 1
        if join.pending is not None:
            join.pending.add(again)
        assert site.edge is not None
        site.edge.send(again)

    def _end_call(self, request: RequestState, failed: bool | None) -> None:
        """Book-keeping common to a call that got its answers, one that `failed` and one
        withdrawn (`failed` None): the waiting count, the pool connection held for it, and
        its circuit breaker's record."""
        self.calls_waiting -= 1
        step = self._current_call(request)
        if step.breaker is not None:
            self._breaker_records(request, step.breaker, failed)
        pool_index = step.pool
        if pool_index is not None:
            pool = self.pools[pool_index]
            pool.busy_seconds += self.env.now - request.waited_since
            pool.release()

    def answered(self, sub: SubRequest) -> None:
        """An answer to a call of this server arrived; with enough answers in, the calling
        request carries on."""
        site = sub.site
        site.answered += 1
        seconds = self.env.now - sub.created_at
        site.times.append(seconds)
        join = sub.join
        pending = join.pending
        if pending is not None:
            if sub not in pending:
                return  # abandoned when a round of its call timed out: a late answer
            pending.discard(sub)
        join.answered += 1
        if join.done or join.answered < join.needed:
            return
        join.done = True
        parent = join.parent
        parent.spent[self._nested if join.sent == 1 else self._calls] += seconds
        self._end_call(parent, failed=False)
        self._advance(parent)

    def call_lost(self, sub: SubRequest, place: str, reason: str) -> None:
        """A sub-request of this server was lost at `place` for `reason` (an edge that
        dropped it, going or coming back, or a server that refused it). Once too many are
        lost for the call to get its answers, the calling request fails, and so, up the
        chain, do the requests whose calls it was answering. The caller learns of it at
        once."""
        sub.site.failed += 1
        join = sub.join
        if join.pending is not None and sub not in join.pending:
            return  # abandoned by a timed-out round, or already sent again
        if not join.done and self._retried(sub, reason):
            return
        join.failed += 1
        if join.done or join.sent - join.failed >= join.needed:
            return
        join.done = True
        parent = join.parent
        self._end_call(parent, failed=True)
        self._fail(parent, place, reason)

    def _fail(self, request: RequestState, place: str, reason: str) -> None:
        plan = request.plan
        assert plan is not None
        request.plan = None
        self.in_service -= 1
        if plan.ram_mb:
            self.ram.release(plan.ram_mb)
        if isinstance(request, SubRequest):
            request.caller.call_lost(request, place, reason)
        else:
            self._collector.record_end(request, Outcome.FAILED, place, reason)

    def _step_done(self, event: Fired) -> None:
        self._advance(event.value)

    def _wake_from_io(self, event: Fired) -> None:
        self.io_waiting -= 1
        self._advance(event.value)

    def _wake_from_pooled_io(self, event: Fired) -> None:
        request: RequestState
        pool: ConnectionPool[RequestState]
        request, pool = event.value
        self.io_waiting -= 1
        pool.release()
        self._advance(request)

    def _finish(self, request: RequestState) -> None:
        if request.holds_core:
            request.holds_core = False
            self.cores.release()
        plan = request.plan
        assert plan is not None
        request.plan = None
        self.in_service -= 1
        seconds = self.env._now - request.arrived_at
        plan.times.append(seconds)
        if plan.ram_mb:
            self.ram.release(plan.ram_mb)
        if isinstance(request, SubRequest):
            # Visits are read off `plan.times`; those of parallel branches, left out of the
            # breakdown, are set apart here (off the path of requests from the client).
            if request.spent is not self._collector.hops.totals:
                request.spent[self._visit] += seconds
            self.reply_edges[request.caller.id].send(request)
        else:
            assert self.out_edge is not None
            self.out_edge.send(request)


class AdmittingServer(ServerRuntime):
    """A server with admission control: each arrival is checked against the caps first,
    and one that would exceed a cap is rejected at once. A rejected sub-request fails its
    call, and the caller learns of it at once (a refusal is a fast answer)."""

    checks: tuple[AdmissionCheck, ...] = ()

    def receive(self, request: RequestState) -> None:
        """Reject `request` if a cap is reached, else admit it."""
        for check in self.checks:
            if check.refuses(self):
                self.reject(request, check.reason)
                return
        super().receive(request)

    def reject(self, request: RequestState, reason: EndReason) -> None:
        """Count `request` as rejected here, or fail the call it answers."""
        if isinstance(request, SubRequest):
            request.caller.call_lost(request, self.id, EndReason.CALL_REJECTED)
        else:
            self._collector.record_end(request, Outcome.REJECTED, self.id, reason)


class CancellingServer(ServerRuntime):
    """A server in a run where timeouts cancel work, as an event loop cancels a task: a
    withdrawn request leaves the queue it waits in, or its I/O wait or call wait, at once,
    letting go of what it holds; a CPU burst cannot be interrupted, so a request withdrawn
    while on a core stops when the burst ends. It keeps `withdrawals.where` up to date and
    what each request is waiting on, which a server without withdrawals never tracks."""

    withdrawals: Withdrawals

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sleeping: dict[RequestState, tuple[ConnectionPool[RequestState] | None, float]] = {}
        """Requests in an I/O wait: the pool connection held (if any) and when it ends."""
        self._calling: dict[RequestState, Join] = {}
        """Requests waiting for the answers to a call."""

    def receive(self, request: RequestState) -> None:
        """Discard a request withdrawn on its way here, else admit it."""
        withdrawals = self.withdrawals
        if request in withdrawals.gone:
            withdrawals.gone.discard(request)
            return
        withdrawals.where[request] = self
        super().receive(request)

    def answered(self, sub: SubRequest) -> None:
        """An answer; one to a withdrawn call is counted and forgotten."""
        self.withdrawals.gone.discard(sub)
        super().answered(sub)

    def call_lost(self, sub: SubRequest, place: str, reason: str) -> None:
        """A lost sub-request; a withdrawn one is forgotten."""
        self.withdrawals.gone.discard(sub)
        super().call_lost(sub, place, reason)

    def withdraw(self, request: RequestState) -> EndReason:
        """Take `request` out of what it waits on, letting go of what it holds; if it is on a
        core instead, mark it to stop when its CPU burst ends."""
        if self.cores.withdraw(request):
            reason = EndReason.WITHDRAWN_FROM_READY_QUEUE
        elif self.ram.withdraw(request):
            reason = EndReason.WITHDRAWN_FROM_RAM_QUEUE
        elif any(pool.withdraw(request) for pool in self.pools):
            reason = EndReason.WITHDRAWN_FROM_POOL_QUEUE
        elif request in self._sleeping:
            pool, wakes_at = self._sleeping.pop(request)
            self.io_waiting -= 1
            # The wait was booked in full when it began: take back the part not waited.
            request.spent[self._io] -= wakes_at - self.env._now
            if pool is not None:
                # Its hold was counted in full when it began: take back the part not held.
                pool.busy_seconds -= wakes_at - self.env._now
                pool.release()
            reason = EndReason.WITHDRAWN_FROM_IO_WAIT
        elif request in self._calling:
            # Answers still to come are counted at their call site and otherwise ignored.
            self._calling[request].done = True
            self._end_call(request, failed=None)
            reason = EndReason.WITHDRAWN_FROM_CALL
        else:
            self.withdrawals.gone.add(request)
            return EndReason.STOPPED_AFTER_CPU_STEP
        plan = request.plan
        assert plan is not None
        request.plan = None
        self.in_service -= 1
        if reason is not EndReason.WITHDRAWN_FROM_RAM_QUEUE and plan.ram_mb:
            self.ram.release(plan.ram_mb)
        self.withdrawals.where.pop(request, None)
        return reason

    def sleep(self, request: RequestState, seconds: float) -> None:
        """Wait on I/O, noted so that a withdrawal can cut the wait short."""
        self._sleeping[request] = (None, self.env._now + seconds)
        super().sleep(request, seconds)

    def _take_connection(self, pool: ConnectionPool[RequestState], request: RequestState) -> None:
        # The hold's length is drawn inside; the pool's count grows by exactly that much.
        before = pool.busy_seconds
        super()._take_connection(pool, request)
        self._sleeping[request] = (pool, self.env._now + (pool.busy_seconds - before))

    def _wake_from_io(self, event: Fired) -> None:
        if self._sleeping.pop(event.value, None) is None:
            return  # withdrawn during its wait, which was let go then
        super()._wake_from_io(event)

    def _wake_from_pooled_io(self, event: Fired) -> None:
        if self._sleeping.pop(event.value[0], None) is None:
            return
        super()._wake_from_pooled_io(event)

    def _send_calls(self, request: RequestState, step: CallStep) -> Join:
        join = super()._send_calls(request, step)
        # A call may fail while it is sent (an edge that drops a sub-request at once):
        # then it is over already and nothing waits.
        if not join.done:
            self._calling[request] = join
        return join

    def _end_call(self, request: RequestState, failed: bool | None) -> None:
        self._calling.pop(request, None)
        super()._end_call(request, failed)

    def _advance(self, request: RequestState) -> None:
        if request in self.withdrawals.gone:
            self._stop(request)
            return
        super()._advance(request)

    def _stop(self, request: RequestState) -> None:
        """A withdrawn request's CPU burst has ended: it lets go of everything and leaves
        no trace."""
        if request.holds_core:
            request.holds_core = False
            self.cores.release()
        plan = request.plan
        assert plan is not None
        request.plan = None
        self.in_service -= 1
        if plan.ram_mb:
            self.ram.release(plan.ram_mb)
        self._forget(request)

    def _forget(self, request: RequestState) -> None:
        self.withdrawals.gone.discard(request)
        self.withdrawals.where.pop(request, None)

    def _finish(self, request: RequestState) -> None:
        self.withdrawals.where.pop(request, None)
        super()._finish(request)

    def _fail(self, request: RequestState, place: str, reason: str) -> None:
        self._forget(request)
        super()._fail(request, place, reason)


class AdmittingCancellingServer(CancellingServer, AdmittingServer):
    """Admission caps in a run where timeouts cancel work."""

    def reject(self, request: RequestState, reason: EndReason) -> None:
        """Reject `request`, which was never admitted: the server forgets it."""
        self._forget(request)
        super().reject(request, reason)


_SERVER_CLASSES: dict[tuple[bool, bool], type[ServerRuntime]] = {
    (False, False): ServerRuntime,
    (True, False): AdmittingServer,
    (False, True): CancellingServer,
    (True, True): AdmittingCancellingServer,
}
"""The server class for (has admission caps, timeouts may cancel work)."""


_COMPOSED: dict[tuple[type[ServerRuntime], ...], type[ServerRuntime]] = {}


def _composed(*kinds: type[ServerRuntime]) -> type[ServerRuntime]:
    """One class made of `kinds`, the first overriding the others (made once per process
    for each combination)."""
    kind = _COMPOSED.get(kinds)
    if kind is None:
        name = "".join(k.__name__.removesuffix("Runtime").removesuffix("Server") for k in kinds)
        name += "Server"
        kind = _COMPOSED[kinds] = cast(type[ServerRuntime], type(name, kinds, {}))
    return kind


class _ReplyPort:
    """The end of an answering edge: hands each answer to the server that called."""

    __slots__ = ("id", "receive")

    def __init__(self, server: ServerRuntime) -> None:
        self.id = server.id
        self.receive = server.answered
