"""Servers: RAM reserved up front, cores held through CPU steps, released during I/O.

The server runs steps and holds resources; every other mechanism is a collaborator it
holds only when the scenario uses it, chosen once when it is built: the call dispatcher
(`runtime.actors.calls`), the admission gate (`runtime.admission`), the withdrawal book
(`runtime.actors.cancellation`), a door and a failure model (`runtime.actors.failures`) and the
workload classes' endpoint routing (`runtime.workload_classes`) and the event loop's own
cost (`runtime.actors.event_loop`).

A collaborator takes part by wrapping the server's hooks, the callables below that a
request's path goes through (`receive`, `advance`, `burn`, `sleep`...). Each hook is an
attribute bound once at build time, so a server without a feature runs the plain
methods and tests no flag on its path.
"""

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Protocol

import simpy

from asyncflow_backend.config.constants import EndReason, Outcome
from asyncflow_backend.metrics import analyzer
from asyncflow_backend.metrics.breakdown import HopCategory, HopKind
from asyncflow_backend.metrics.catalogue import POOL_METRICS, SERVER_METRICS
from asyncflow_backend.metrics.collector import MetricsCollector
from asyncflow_backend.metrics.sampler import Probe, probes_for
from asyncflow_backend.resources import ConnectionPool, CoreSet, RamPool
from asyncflow_backend.runtime.actors import BuildError, Covering
from asyncflow_backend.runtime.actors.calls import CallDispatcher
from asyncflow_backend.runtime.actors.cancellation import WithdrawalBook
from asyncflow_backend.runtime.actors.edge import EdgeRuntime
from asyncflow_backend.runtime.actors.event_loop import install_event_loop
from asyncflow_backend.runtime.actors.host import Callback, Handler, PoolGrant
from asyncflow_backend.runtime.admission import AdmissionGate, admission_checks
from asyncflow_backend.runtime.context import BuildContext
from asyncflow_backend.runtime.events.capacity import CapacitySchedule
from asyncflow_backend.runtime.events.injection import Closable
from asyncflow_backend.runtime.plans import compile_plans, endpoint_picker
from asyncflow_backend.runtime.request import Fired, RequestState, SubRequest
from asyncflow_backend.runtime.steps import CallSite, CallStep, EndpointPlan
from asyncflow_backend.runtime.summary import Reading, ResultsBlock
from asyncflow_backend.runtime.timeouts import Withdrawals
from asyncflow_backend.schemas.results import CallStats
from asyncflow_backend.schemas.topology import CoreChange, Server


class FailurePart(Protocol):
    """A server's failure model (`runtime.actors.failures`), as the server's life cycle
    uses it."""

    def start(self, covering: Sequence[Covering]) -> None:
        """Start the failure process."""

    def summary(self, horizon: float) -> dict[str, object]:
        """The fields of the failures in the server's statistics."""


class ServerRuntime:
    """An asynchronous server with `cpu_cores` event loops sharing `ram_mb` of memory.

    A request picks an endpoint, reserves the RAM of all its RAM steps (waiting
    in FIFO order if memory is short), then runs its steps in order. A CPU step
    needs a core; consecutive CPU steps keep it; an I/O step gives it back and
    waits without using CPU, holding one connection of a pool if it names one
    (queueing FIFO for it first). At the end the core and the RAM are released
    and the request leaves along the out edge.

    Built from a `Server` spec by `from_spec`; connected to its out edge (optional: a
    server no edge reaches may have none); started (its capacity schedule and failures);
    asked for its block of the results (`summarise`: the server's, its pools' and its
    call sites').
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
        self.collector = collector
        self.id = server_id
        self.cores: CoreSet[RequestState] = CoreSet(cores)
        self.cpu_cores = cores
        """Cores the scenario gives it (`server_resources.cpu_cores`), before any change."""
        self.ram: RamPool[RequestState] = RamPool(ram_mb)
        self.pools: list[ConnectionPool[RequestState]] = pools or []
        self.endpoints = endpoints
        self.pick_endpoint = pick_endpoint
        """Draws the index of the endpoint an arriving request calls."""
        self.out_edge: EdgeRuntime | None = None
        self.io_waiting = 0
        """Requests parked in an I/O wait: the event loop's sleeping tasks."""
        self._core_seconds = 0.0
        """Core-seconds there were before `_cores_since` (they change by `set_cores`)."""
        self._cores_since = 0.0
        self.in_service = 0
        """Requests admitted and not yet sent on: waiting for RAM, a core, or I/O, or running."""
        self.call_sites: list[CallSite] = [
            site
            for plan in endpoints
            for step in plan.steps
            if isinstance(step, CallStep)
            for site in step.sites
        ]
        self.callers: set[str] = set()
        """Servers whose calls this one answers (`answer_calls_from`)."""
        self.reply_edges: dict[str, EdgeRuntime] = {}
        # Slots of the hop totals (`metrics.breakdown`) this server's spans go to; the pool,
        # call and nested slots are only ever used by servers with pools or calls.
        hops = collector.hops
        self.visit_slot = hops.slot(HopKind.SERVER, server_id, HopCategory.VISIT)
        self.cpu_slot = hops.slot(HopKind.SERVER, server_id, HopCategory.CPU)
        self.io_slot = hops.slot(HopKind.SERVER, server_id, HopCategory.IO)
        self.pool_wait_slot = self.visit_slot
        if self.pools:
            self.pool_wait_slot = hops.slot(HopKind.SERVER, server_id, HopCategory.POOL_WAIT)
        self.calls: CallDispatcher | None = None
        """Sends the requests of call steps and waits for their answers; None without any."""
        self.call: Callable[[RequestState, CallStep], None] = self._no_calls
        """Send the sub-requests of a call step; the request moves on with the answers."""
        if self.call_sites:
            self.calls = CallDispatcher(self, self.call_sites)
            self.call = self.calls.call
        self.book: WithdrawalBook | None = None
        """Where requests withdrawn here are tracked; None when nothing is ever withdrawn."""
        self.door: Closable | None = None
        """Holds or rejects arrivals while the server is down; None if it never goes down."""
        self.failure: FailurePart | None = None
        """Its random failures and repairs; None without `failures`."""
        # The hooks: the plain methods, which a collaborator may wrap while the server is
        # built. The grant callbacks of the pools are made by `connect`, from the hooks
        # as they are then.
        self.receive: Handler = self._admit
        """Take a request that has just arrived (the front door: admission, a door...)."""
        self.advance: Handler = self._next_step
        """Run the request's next step, or finish it."""
        self.finish: Handler = self._finish
        """The request ran its last step: let go of it and send it on."""
        self.fail: Callable[[RequestState, str, str], None] = self._fail
        """End the request here as failed at a place, for a reason (a call that failed)."""
        self.reject: Callable[[RequestState, EndReason], None] = self._refuse
        """Turn away a request that was never admitted, for a reason."""
        self.burn: Callable[[RequestState, float], None] = self._burn
        """Keep the request's core busy for some seconds, then move the request on."""
        self.step_done: Callback = self._step_done
        self.take_core: Handler = self._take_core
        """Grant callback of the cores: burn the request's current CPU step."""
        self.sleep: Callable[[RequestState, float], None] = self._sleep
        """Wait some seconds on I/O, then move the request on."""
        self.take_connection: PoolGrant = self._take_connection
        """Grant callback of a pool: wait the current step's I/O holding the connection."""
        self.wake_from_io: Callback = self._wake_from_io
        self.wake_from_pooled_io: Callback = self._wake_from_pooled_io
        self._connection_granted: list[Handler] = []
        self.capacity_changes: Sequence[CoreChange] = ()
        """The capacity schedule: the changes of its cores, in time order."""

    @classmethod
    def from_spec(
        cls, spec: Server, ctx: BuildContext, *, own_withdrawals: bool = False
    ) -> "ServerRuntime":
        """The server `spec` with its endpoints compiled to plans, its pools made, and the
        collaborators its features call for: admission checks for its caps, and a
        withdrawal book when the run withdraws requests (or, with `own_withdrawals`, when
        the server withdraws them itself, as a failure that loses work does).

        Each step draws from its own stream (`step:{server}:{endpoint}:{step}`), so
        adding a step elsewhere does not change this one's draws.
        """
        names = list(spec.server_resources.pool_sizes())
        pools: list[ConnectionPool[RequestState]] = [
            ConnectionPool(f"{spec.id}:{name}", size)
            for name, size in spec.server_resources.pool_sizes().items()
        ]
        plans = compile_plans(spec, names, ctx)
        server = cls(
            ctx.env,
            spec.id,
            spec.server_resources.cpu_cores,
            spec.server_resources.ram_mb,
            plans,
            endpoint_picker(spec, ctx.streams.generator(f"endpoint:{spec.id}")),
            ctx.collector,
            pools,
        )
        # First, so that its cores are the ones every collaborator sees and its grant is
        # the innermost `take_core`.
        if spec.event_loop is not None:
            install_event_loop(server, spec.event_loop)
        # The choice is made here, once: a server without caps never checks any, and one
        # in a run where nothing is ever withdrawn never looks for withdrawn requests.
        if spec.admission is not None:
            AdmissionGate(server, admission_checks(spec.admission)).install()
        withdrawals = ctx.timeouts.withdrawals if ctx.timeouts is not None else None
        if withdrawals is None and own_withdrawals:
            withdrawals = Withdrawals()  # its own: it withdraws what nobody else does
        if withdrawals is not None:
            server.book = WithdrawalBook(server, server.calls, withdrawals)
            server.book.install()
        if server.calls is not None:
            server.calls.withdrawals = withdrawals
        server.capacity_changes = spec.capacity_schedule or ()
        return server

    def answer_calls_from(self, caller: str) -> None:
        """Declare that `caller` calls this server (directly or through a balancer), so the
        edge to it carries answers."""
        self.callers.add(caller)

    @property
    def reply_port(self) -> CallDispatcher | None:
        """Where answers to this server's calls are delivered; None if it makes none."""
        return self.calls

    @property
    def visit_seconds(self) -> float:
        """Seconds of the visits that ended so far, those of parallel call branches left out:
        what the breakdown splits into this server's categories."""
        visits = sum(sum(plan.times) for plan in self.endpoints)
        return visits - self.collector.hops.scratch[self.visit_slot]

    @property
    def busy_core_seconds(self) -> float:
        """Core-seconds of CPU steps started so far, by every request and sub-request."""
        hops = self.collector.hops
        return hops.totals[self.cpu_slot] + hops.scratch[self.cpu_slot]

    def connect(self, out_edges: Mapping[str, EdgeRuntime]) -> None:
        """Take the edges to the nodes this server calls, the edges answers to its callers
        leave by, and the one edge its own answers leave by (a server no edge reaches, or
        one that only answers calls, may have none); then make the grant callbacks of its
        pools from its hooks, which are final by now.

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
        self._connection_granted = [partial(self.take_connection, pool) for pool in self.pools]
        if self.calls is not None:
            self.calls.connect()

    def probes(self, enabled: frozenset[str]) -> list[Probe]:
        """The server's enabled sampled metrics, then its pools'."""
        probes = probes_for(SERVER_METRICS, self, self.id, enabled)
        for pool in self.pools:
            probes += probes_for(POOL_METRICS, pool, pool.name, enabled)
        return probes

    def start(self, covering: Sequence[Covering]) -> None:
        """Start the processes of its capacity schedule and of its failures, if it has them
        (a failed server leaves the balancers of `covering` that cover it while it is down)."""
        if self.capacity_changes:
            CapacitySchedule(self.env, self).start(self.capacity_changes)
        if self.failure is not None:
            self.failure.start(covering)

    def summarise(self, reading: Reading) -> ResultsBlock:
        """The server's statistics (with its availability if it fails), its pools', its
        call sites', and the visit seconds the breakdown splits."""
        horizon, probes = reading.horizon_s, reading.probes
        stats = analyzer.server_stats(
            self.id,
            self.busy_core_seconds,
            self.core_seconds(horizon),
            self.cpu_cores,
            self.ram.capacity,
            {plan.name: plan.times for plan in self.endpoints},
            horizon,
            probes,
        )
        if self.failure is not None:
            stats = stats.model_copy(update=self.failure.summary(horizon))
        pools = {
            pool.name: analyzer.pool_stats(
                pool.name,
                int(pool.capacity),
                pool.busy_seconds,
                pool.waits,
                pool.wait_seconds_total,
                horizon,
                probes,
            )
            for pool in self.pools
        }
        calls = {
            site.id: CallStats(
                target=site.target,
                sent=site.sent,
                answered=site.answered,
                failed=site.failed,
                timed_out=site.timed_out,
                retries=site.retries,
                circuit_opened=0 if site.breaker is None else site.breaker.opened,
                circuit_refused=0 if site.breaker is None else site.breaker.refused,
                latency=analyzer.duration_stats([site.times]),
            )
            for site in self.call_sites
        }
        return ResultsBlock(
            servers={self.id: stats},
            pools=pools,
            calls=calls,
            visits={self.id: self.visit_seconds},
        )

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

    def _admit(self, request: RequestState) -> None:
        """Admit `request`: choose its endpoint and reserve its RAM before any step runs."""
        self.in_service += 1
        plan = self.endpoints[self.pick_endpoint()]
        request.plan = plan
        request.step_index = 0
        # SimPy's `now` is a property; its attribute spares a call on each request's path.
        request.arrived_at = self.env._now
        if plan.ram_mb:
            self.ram.request(request, self.advance, plan.ram_mb)
        else:
            self.advance(request)

    def _next_step(self, request: RequestState) -> None:
        plan = request.plan
        assert plan is not None
        index = request.step_index
        if index == len(plan.steps):
            self.finish(request)
            return
        request.step_index = index + 1
        plan.steps[index].run(self, request)

    # StepHost: the primitives the steps of `runtime.steps` are made of.

    def _burn(self, request: RequestState, seconds: float) -> None:
        request.spent[self.cpu_slot] += seconds
        self.env.timeout(seconds, request).callbacks.append(self.step_done)

    def _take_core(self, request: RequestState) -> None:
        request.holds_core = True
        plan = request.plan
        assert plan is not None
        self.burn(request, plan.steps[request.step_index - 1].duration())

    def _sleep(self, request: RequestState, seconds: float) -> None:
        self.io_waiting += 1
        request.spent[self.io_slot] += seconds
        self.env.timeout(seconds, request).callbacks.append(self.wake_from_io)

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
        spent[self.pool_wait_slot] += waited
        spent[self.io_slot] += seconds
        self.io_waiting += 1
        self.env.timeout(seconds, (request, pool)).callbacks.append(self.wake_from_pooled_io)

    def _no_calls(self, request: RequestState, step: CallStep) -> None:
        raise AssertionError(f"server '{self.id}' has no call steps, so no call dispatcher")

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
            self.collector.record_end(request, Outcome.FAILED, place, reason)

    def _refuse(self, request: RequestState, reason: EndReason) -> None:
        """Count `request` as rejected here for `reason`, or fail the call it answers (a
        refusal is a fast answer: the caller learns of it at once)."""
        if isinstance(request, SubRequest):
            request.caller.call_lost(request, self.id, EndReason.CALL_REJECTED)
        else:
            self.collector.record_end(request, Outcome.REJECTED, self.id, reason)

    def _step_done(self, event: Fired) -> None:
        self.advance(event.value)

    def _wake_from_io(self, event: Fired) -> None:
        self.io_waiting -= 1
        self.advance(event.value)

    def _wake_from_pooled_io(self, event: Fired) -> None:
        request: RequestState
        pool: ConnectionPool[RequestState]
        request, pool = event.value
        self.io_waiting -= 1
        pool.release()
        self.advance(request)

    def let_go(self, request: RequestState, *, holds_ram: bool = True) -> None:
        """`request` leaves the server without finishing: it gives back its plan and its
        RAM (unless it was still waiting for it)."""
        plan = request.plan
        assert plan is not None
        request.plan = None
        self.in_service -= 1
        if holds_ram and plan.ram_mb:
            self.ram.release(plan.ram_mb)

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
            if request.spent is not self.collector.hops.totals:
                request.spent[self.visit_slot] += seconds
            self.reply_edges[request.caller.id].send(request)
        else:
            assert self.out_edge is not None
            self.out_edge.send(request)
