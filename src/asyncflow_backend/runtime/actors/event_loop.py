"""The event loop's own CPU: a cost per loop iteration shared by a batch, and one per callback.

asyncio's `BaseEventLoop._run_once` (and libuv's `uv_run`, which uvloop drives) polls for I/O,
moves the timers that are due to the ready queue, then runs exactly the callbacks that were
ready at that moment (`ntodo = len(self._ready)`); callbacks made ready while they run wait
for the next iteration. Some work is paid once per iteration whatever it then runs (the
poll, the clock, the timers, the wake-up itself), some once per callback.

In the engine a callback is a CPU burst that takes a core: a request's first CPU steps, or
those after an I/O wait or a call (consecutive CPU steps are one burst, as they are one
callback of the coroutine). The ready queue is the cores' FIFO queue. The rule, exact:

- a burst that finds a core free opens an iteration (the loop was idle: it wakes for it);
- a burst granted a core that comes free (FIFO, from the ready queue) runs in the current
  iteration if it was waiting when that iteration polled, else it opens a new one;
- an iteration that opens polls: every burst waiting at that moment joins it;
- the burst that opens an iteration pays `per_iteration_s` before its own work; every burst
  pays `per_callback_s`. Both lengthen the burst, so they count as busy core time.

With several cores the ready queue is shared, as it is everywhere in the engine: a burst
made ready by one core's poll runs on whichever core is free next, without another poll.
"""

from typing import TypeVar

from asyncflow_backend.resources import CoreSet
from asyncflow_backend.resources.base import Waiter
from asyncflow_backend.runtime.actors.host import ServerHost
from asyncflow_backend.runtime.request import RequestState
from asyncflow_backend.schemas.topology import EventLoop

T = TypeVar("T")


class PolledCores(CoreSet[T]):
    """Cores whose grants know which bursts the last poll made ready.

    `ready` counts the waiters at the head of the queue that were there at the last poll
    (a prefix of the queue: later ones join its tail); `charge` is asked once per grant.
    """

    def __init__(self, cores: int, per_iteration_s: float, per_callback_s: float) -> None:
        super().__init__(cores)
        self.per_iteration_s = per_iteration_s
        self.per_callback_s = per_callback_s
        self.ready = 0
        """Waiters made ready by the last poll and not yet granted."""
        self.iterations = 0
        """Iterations opened so far."""
        self.callbacks = 0
        """Bursts granted a core so far."""

    def charge(self) -> float:
        """CPU seconds the burst being granted costs besides its own work: `per_callback_s`,
        plus `per_iteration_s` if it opens an iteration (which then polls the queue)."""
        self.callbacks += 1
        if self.ready:
            self.ready -= 1
            return self.per_callback_s
        # `queued` already leaves out the burst being granted.
        self.ready = self.queued
        self.iterations += 1
        return self.per_iteration_s + self.per_callback_s

    def cancel(self, waiter: Waiter[T]) -> None:
        """Withdraw `waiter`; if the last poll had made it ready, the batch loses it (asyncio
        skips a cancelled handle in the same way)."""
        if self.ready:
            cancelled = self._cancelled
            ahead = 0
            for queued in self.waiting:
                if queued is waiter:
                    if ahead < self.ready and id(queued) not in cancelled:
                        self.ready -= 1
                    break
                if id(queued) not in cancelled:
                    ahead += 1
        super().cancel(waiter)

    def drain(self) -> list[T]:
        """Take every waiter out (a server that fails and loses its work): no batch is left."""
        self.ready = 0
        return super().drain()


def install_event_loop(server: ServerHost, spec: EventLoop) -> PolledCores[RequestState]:
    """Give `server` cores that charge `spec`'s costs, and wrap its `take_core` hook so that
    each granted burst lasts its draw plus the charge. Call before any collaborator wraps
    `take_core` (a failed server's deferred grant is then charged when it runs)."""
    cores: PolledCores[RequestState] = PolledCores(
        int(server.cores.capacity), spec.per_iteration_s, spec.per_callback_s
    )
    server.cores = cores
    charge = cores.charge

    def take_core(request: RequestState) -> None:
        request.holds_core = True
        plan = request.plan
        assert plan is not None
        # `burn` is looked up at each grant: a failure model wraps it after this.
        server.burn(request, charge() + plan.steps[request.step_index - 1].duration())

    server.take_core = take_core
    return cores
