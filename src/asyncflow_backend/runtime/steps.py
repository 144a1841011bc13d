"""Endpoint plans: what each step of an endpoint does, compiled for the hot path.

A leaf module (it imports no actor), so that actors, the request state and the
model builder can all share the plan types.
"""

from dataclasses import dataclass
from typing import Protocol

from asyncflow_backend.runtime.request import RequestState
from asyncflow_backend.samplers import Sampler


class StepHost(Protocol):
    """What a server offers the steps it runs."""

    def run_cpu(self, request: RequestState, duration: Sampler) -> None:
        """Burn a draw of `duration` on a core (taking one first if the request has none)."""

    def wait_io(self, request: RequestState, seconds: float) -> None:
        """Let go of any core and sleep `seconds` without using CPU."""

    def wait_io_pooled(self, request: RequestState, pool: int) -> None:
        """Like `wait_io`, holding one connection of pool number `pool` for the wait."""


class Step(Protocol):
    """One timed step of an endpoint; RAM steps are folded into `EndpointPlan.ram_mb`."""

    @property
    def duration(self) -> Sampler:
        """Draws the step's length in seconds."""

    def run(self, host: StepHost, request: RequestState) -> None:
        """Start the step; the host moves the request on when it ends."""


@dataclass(frozen=True, slots=True)
class CpuStep:
    """CPU work: holds a core for a draw of `duration` seconds."""

    duration: Sampler

    def run(self, host: StepHost, request: RequestState) -> None:
        """Burn CPU on the request's core, or queue for one."""
        host.run_cpu(request, self.duration)


@dataclass(frozen=True, slots=True)
class IoStep:
    """An I/O wait of a draw of `duration` seconds, holding no core."""

    duration: Sampler

    def run(self, host: StepHost, request: RequestState) -> None:
        """Sleep on the event loop."""
        host.wait_io(request, self.duration())


@dataclass(frozen=True, slots=True)
class PooledIoStep:
    """An I/O wait that holds a connection of one of the server's pools while it waits."""

    duration: Sampler
    pool: int
    """Index of the pool in the server's pool list."""

    def run(self, host: StepHost, request: RequestState) -> None:
        """Queue for a connection, then sleep holding it."""
        host.wait_io_pooled(request, self.pool)


@dataclass(frozen=True, slots=True)
class EndpointPlan:
    """An endpoint compiled for the hot path: its RAM total and its timed steps in order."""

    index: int
    """Position of the endpoint on its server: where its statistics are kept."""
    name: str
    ram_mb: float
    steps: tuple[Step, ...]
