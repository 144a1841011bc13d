"""Admission control: the checks a server makes when a request arrives, one class per cap.

A server without `admission` has none and pays nothing: only a server with caps is built
with an `AdmissionGate` in front of it, which checks them.
"""

from collections.abc import Callable
from typing import Any, Protocol

from asyncflow_backend.config.constants import EndReason
from asyncflow_backend.resources import CoreSet
from asyncflow_backend.schemas.topology import Admission


class Admitting(Protocol):
    """What the checks read of the server."""

    @property
    def cores(self) -> CoreSet[Any]:
        """The server's cores; their waiters are its ready queue."""

    in_service: int
    """Requests in the server."""


class Gated(Admitting, Protocol):
    """The server an `AdmissionGate` stands in front of: its hooks for arrivals."""

    receive: Callable[[Any], None]
    """Take a request that has just arrived."""
    reject: Callable[[Any, EndReason], None]
    """Turn away a request that was never admitted, for a reason."""


class AdmissionCheck(Protocol):
    """One cap: whether an arrival now would exceed it, and the reason it gives."""

    reason: EndReason

    def refuses(self, server: Admitting) -> bool:
        """True if a request arriving at `server` now must be rejected."""


class ReadyQueueCap:
    """At most `limit` requests waiting for a core: an arrival that would have to wait
    (no core free, or others already waiting) behind `limit` others is refused.

    With one core and a first step on the CPU this is M/M/1/K with K = limit + 1.
    """

    reason = EndReason.QUEUE_FULL

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def refuses(self, server: Admitting) -> bool:
        """True if the ready queue is at its cap and the arrival would join it."""
        cores = server.cores
        return cores.queued >= self.limit and (cores.queued > 0 or cores.free < 1)


class ConcurrencyCap:
    """At most `limit` requests in the server at once, whatever they are doing.

    With c cores, `limit` = c and one CPU step this is the M/M/c/c loss system (Erlang B).
    """

    reason = EndReason.CONCURRENCY_LIMIT

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def refuses(self, server: Admitting) -> bool:
        """True if the server already holds `limit` requests."""
        return server.in_service >= self.limit


def admission_checks(spec: Admission) -> tuple[AdmissionCheck, ...]:
    """The checks of `spec`, the concurrency cap first (it is the cheaper to read)."""
    checks: list[AdmissionCheck] = []
    if spec.max_concurrency is not None:
        checks.append(ConcurrencyCap(spec.max_concurrency))
    if spec.max_ready_queue is not None:
        checks.append(ReadyQueueCap(spec.max_ready_queue))
    return tuple(checks)


class AdmissionGate:
    """Admission control in front of a server: each arrival is checked against the caps
    first, and one that would exceed a cap is rejected at once (the server's `reject`: a
    rejected sub-request fails its call, and the caller learns of it at once)."""

    def __init__(self, server: Gated, checks: tuple[AdmissionCheck, ...]) -> None:
        self.server = server
        self.checks = checks
        self._admit = server.receive

    def install(self) -> None:
        """Put the gate in front of the server's arrivals."""
        self.server.receive = self.receive

    def receive(self, request: Any) -> None:
        """Reject `request` if a cap is reached, else admit it."""
        server = self.server
        for check in self.checks:
            if check.refuses(server):
                server.reject(request, check.reason)
                return
        self._admit(request)
