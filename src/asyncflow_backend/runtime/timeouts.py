"""Timeouts: the client's, armed when it sends a request, and the withdrawal of the requests
whose timeout fired when the scenario says work is cancelled.

Nothing here runs in a scenario without timeouts: the model builds the plain client and
servers then, and only a scenario with `timeout_s` gets the client that arms them (and,
with `on_timeout: cancel`, servers that check for withdrawn requests).

Withdrawal follows an event loop's cancellation: wherever a request awaits something (a
queue for RAM, a core or a pool connection, an I/O wait, the answers to a call) it stops
at once and lets go of what it holds; a CPU burst cannot be interrupted, so a request on
a core stops when its burst ends; a request on the wire is discarded where it arrives.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, cast

import simpy

from asyncflow_backend.config.constants import EndReason, Outcome, TimeoutAction
from asyncflow_backend.metrics.collector import MetricsCollector
from asyncflow_backend.runtime.request import Fired, RequestState
from asyncflow_backend.samplers import Sampler, variate
from asyncflow_backend.samplers.streams import RandomStreams
from asyncflow_backend.schemas.scenario import Scenario
from asyncflow_backend.schemas.steps import CallStep, walk_steps


class Withdrawing(Protocol):
    """A server that can withdraw a request it holds."""

    id: str

    def withdraw(self, request: RequestState) -> EndReason:
        """Withdraw `request` from what it waits on (the reason names it), or mark it to
        stop once its CPU burst ends (`stopped_after_cpu_step`)."""


@dataclass
class Withdrawals:
    """The requests whose timeout fired under `cancel`, and the server each one is in."""

    gone: set[RequestState] = field(default_factory=set)
    """Withdrawn requests still running a step or on the wire: whoever meets one next
    stops it and takes it out of here."""
    where: dict[RequestState, Withdrawing] = field(default_factory=dict)
    """The server each request is in, kept by the servers while withdrawals are possible."""

    def withdraw(self, request: RequestState, on_the_wire: str) -> tuple[str, EndReason]:
        """Withdraw `request` wherever it is; returns where (a server, or `on_the_wire` for a
        request on an edge or at a balancer) and how."""
        server = self.where.get(request)
        if server is None:
            self.gone.add(request)
            return on_the_wire, EndReason.IN_TRANSIT
        return server.id, server.withdraw(request)


@dataclass(frozen=True)
class TimeoutSetup:
    """The timeouts of one run, built once: what the client and the servers are built with."""

    client_timeout: Sampler | None
    """Draws each request's timeout in seconds; None without a client timeout."""
    withdrawals: Withdrawals | None
    """Set when some timeout cancels work (the workload's or a call step's)."""
    cancel_on_client_timeout: bool


def timeout_setup(scenario: Scenario, streams: RandomStreams) -> TimeoutSetup | None:
    """The timeouts `scenario` asks for, or None when it has none (the engine then builds
    nothing that checks for them)."""
    workload = scenario.rqs_input
    calls_cancel = any(
        isinstance(step, CallStep) and step.on_timeout is TimeoutAction.CANCEL
        for server in scenario.topology_graph.nodes.servers
        for endpoint in server.endpoints
        for _, _, step in walk_steps(endpoint.steps)
    )
    if workload.timeout_s is None and not calls_cancel:
        return None
    client_timeout = (
        None
        if workload.timeout_s is None
        else variate(workload.timeout_s, streams.generator("timeout:client"))
    )
    cancels = workload.cancels_on_timeout
    return TimeoutSetup(client_timeout, Withdrawals() if cancels or calls_cancel else None, cancels)


class Expiry:
    """The client's half of a timeout: arms a request's timer when the client sends it,
    and ends the request as `timed_out` if the timer fires first.

    The requests the client waits for are the collector's `awaited`: whichever comes
    first, the answer or the timer, takes the request out, and the other finds it gone.
    """

    def __init__(
        self,
        env: simpy.Environment,
        client_id: str,
        timeout: Sampler,
        collector: MetricsCollector,
        withdrawals: Withdrawals | None,
    ) -> None:
        self.env = env
        self.client_id = client_id
        self._timeout = timeout
        self._collector = collector
        self._awaited: set[object] = set()
        collector.awaited = self._awaited
        if withdrawals is not None:
            collector.withdrawn = cast(set[object], withdrawals.gone)
        self.withdrawals = withdrawals
        """Set when a timed-out request is withdrawn; None when the servers keep working."""
        self._expired: Callable[[Fired], None] = (
            self._keep_working if withdrawals is None else self._cancel
        )

    def arm(self, request: RequestState) -> None:
        """Start `request`'s timer: its timeout counts from its creation, so that a request
        completes exactly when its latency is within its timeout."""
        self._awaited.add(request)
        remaining = max(0.0, self._timeout() - (self.env._now - request.created_at))
        self.env.timeout(remaining, request).callbacks.append(self._expired)

    def answered(self, request: RequestState) -> bool:
        """`request` is back at the client: True if it was still awaited (it completes),
        False if it had timed out (a late answer)."""
        awaited = self._awaited
        if request in awaited:
            awaited.discard(request)
            return True
        if self.withdrawals is not None:
            self.withdrawals.gone.discard(request)
        return False

    def _keep_working(self, event: Fired) -> None:
        request = event.value
        if request in self._awaited:
            self._collector.record_end(
                request, Outcome.TIMED_OUT, self.client_id, EndReason.CLIENT_TIMEOUT
            )

    def _cancel(self, event: Fired) -> None:
        request = event.value
        if request not in self._awaited:
            return
        assert self.withdrawals is not None
        place, reason = self.withdrawals.withdraw(request, self.client_id)
        self._collector.record_end(request, Outcome.TIMED_OUT, place, reason)
