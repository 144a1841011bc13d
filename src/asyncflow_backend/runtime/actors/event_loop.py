"""The event loop's own CPU: a cost per wake-up from an idle poll, and one per callback.

asyncio's `BaseEventLoop._run_once` (and libuv's `uv_run`, which uvloop drives) polls for
I/O, moves the timers that are due to the ready queue, then runs the callbacks that were
ready. When callbacks are ready the poll does not block (its timeout is 0) and the loop goes
straight round; only when nothing is ready does it block in the poll, and the process
sleeps until the kernel wakes it. That wake-up (the context switch, the blocking poll's
return, the clock and timer bookkeeping after it) is the cost paid once per busy spell of
the loop, however many callbacks then run before it is idle again; the rest is paid per
callback.

In the engine a callback is a CPU burst that takes a core: a request's first CPU steps, or
those after an I/O wait or a call (consecutive CPU steps are one burst, as they are one
callback of the coroutine). The ready queue is the cores' FIFO queue. The rule, exact:

- a burst that finds a core free wakes its loop: it pays `per_wakeup_s` before its work;
- a burst granted a core that a finishing burst hands over (from the ready queue) runs in
  the busy loop and pays no wake-up;
- every burst pays `per_callback_s`.

Both costs lengthen the burst, so they count as busy core time. So at low load every
request pays both; as the load grows the wake-up is paid only by the bursts that find the
core idle, a share 1 - rho of them under Poisson arrivals: the overhead per request falls as
it does on a real loop. Cores added by a capacity schedule take their waiting bursts as
hand-overs.
"""

from typing import TypeVar

from asyncflow_backend.resources import CoreSet
from asyncflow_backend.runtime.actors.host import ServerHost
from asyncflow_backend.runtime.request import RequestState
from asyncflow_backend.schemas.topology import EventLoop

T = TypeVar("T")


class WakingCores(CoreSet[T]):
    """Cores that know, at each grant, whether the burst woke an idle loop.

    A grant made while the queue is being served (`_granting`: a core handed over by a
    finishing burst, a cancel, a capacity change) is a hand-over; any other grant was made
    at once to a burst that found a core free: a wake-up.
    """

    def __init__(self, cores: int, per_wakeup_s: float, per_callback_s: float) -> None:
        super().__init__(cores)
        self.per_wakeup_s = per_wakeup_s
        self.per_callback_s = per_callback_s
        self.wakeups = 0
        """Bursts that woke an idle loop so far."""
        self.callbacks = 0
        """Bursts granted a core so far."""

    def charge(self) -> float:
        """CPU seconds the burst being granted costs besides its own work: `per_callback_s`,
        plus `per_wakeup_s` if it woke an idle loop."""
        self.callbacks += 1
        if self._granting:
            return self.per_callback_s
        self.wakeups += 1
        return self.per_wakeup_s + self.per_callback_s


def install_event_loop(server: ServerHost, spec: EventLoop) -> WakingCores[RequestState]:
    """Give `server` cores that charge `spec`'s costs, and wrap its `take_core` hook so that
    each granted burst lasts its draw plus the charge. Call before any collaborator wraps
    `take_core` (a failed server's deferred grant is then charged when it runs)."""
    cores: WakingCores[RequestState] = WakingCores(
        int(server.cores.capacity), spec.per_wakeup_s, spec.per_callback_s
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
