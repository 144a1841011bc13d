"""Servers: RAM reserved up front, cores held through CPU steps, released during I/O."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import simpy

from asyncflow_backend.resources import CoreSet, RamPool
from asyncflow_backend.runtime.actors.edge import EdgeRuntime
from asyncflow_backend.runtime.request import RequestState
from asyncflow_backend.samplers import Sampler


@dataclass(frozen=True, slots=True)
class EndpointPlan:
    """An endpoint compiled for the hot path: its RAM total and its timed steps."""

    name: str
    ram_mb: float
    steps: tuple[tuple[bool, Sampler], ...]
    """(is_cpu, duration sampler) per CPU or I/O step, in order; RAM steps are in ram_mb."""


class ServerRuntime:
    """An asynchronous server with `cpu_cores` event loops sharing `ram_mb` of memory.

    A request picks an endpoint, reserves the RAM of all its RAM steps (waiting
    in FIFO order if memory is short), then runs its steps in order. A CPU step
    needs a core; consecutive CPU steps keep it; an I/O step gives it back and
    waits without using CPU. At the end the core and the RAM are released and
    the request leaves along the out edge.
    """

    def __init__(
        self,
        env: simpy.Environment,
        server_id: str,
        cores: int,
        ram_mb: float,
        endpoints: list[EndpointPlan],
        pick_endpoint: Callable[[], int],
    ) -> None:
        self.env = env
        self.id = server_id
        self.cores: CoreSet[RequestState] = CoreSet(cores)
        self.ram: RamPool[RequestState] = RamPool(ram_mb)
        self._endpoints = endpoints
        self._pick_endpoint = pick_endpoint
        self.out_edge: EdgeRuntime | None = None
        self.io_waiting = 0
        """Requests parked in an I/O wait: the event loop's sleeping tasks."""
        self.busy_core_seconds = 0.0
        self.in_service = 0
        """Requests admitted and not yet sent on: waiting for RAM, a core, or I/O, or running."""

    @property
    def ready_queue_len(self) -> int:
        """Requests ready to run a CPU step and waiting for a core."""
        return len(self.cores.waiting)

    def receive(self, request: RequestState) -> None:
        """Admit `request`: choose its endpoint and reserve its RAM before any step runs."""
        self.in_service += 1
        plan = self._endpoints[self._pick_endpoint()]
        request.plan = plan
        request.step_index = 0
        if plan.ram_mb:
            self.ram.reserve(plan.ram_mb, request, self._advance)
        else:
            self._advance(request)

    def _advance(self, request: RequestState) -> None:
        plan = request.plan
        assert plan is not None
        index = request.step_index
        if index == len(plan.steps):
            self._finish(request)
            return
        is_cpu, duration = plan.steps[index]
        request.step_index = index + 1
        if is_cpu:
            if request.holds_core:
                self._burn(request)
            else:
                self.cores.acquire(request, self._take_core)
            return
        if request.holds_core:
            request.holds_core = False
            self.cores.release()
        self.io_waiting += 1
        self.env.timeout(duration(), request).callbacks.append(self._wake_from_io)

    def _take_core(self, request: RequestState) -> None:
        request.holds_core = True
        self._burn(request)

    def _burn(self, request: RequestState) -> None:
        plan = request.plan
        assert plan is not None
        cpu_time = plan.steps[request.step_index - 1][1]()
        self.busy_core_seconds += cpu_time
        self.env.timeout(cpu_time, request).callbacks.append(self._step_done)

    def _step_done(self, event: simpy.Event) -> None:
        self._advance(cast(RequestState, event.value))

    def _wake_from_io(self, event: simpy.Event) -> None:
        self.io_waiting -= 1
        self._advance(cast(RequestState, event.value))

    def _finish(self, request: RequestState) -> None:
        if request.holds_core:
            request.holds_core = False
            self.cores.release()
        plan = request.plan
        assert plan is not None
        assert self.out_edge is not None
        request.plan = None
        self.in_service -= 1
        if plan.ram_mb:
            self.ram.release(plan.ram_mb)
        self.out_edge.send(request)
