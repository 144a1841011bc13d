"""The withdrawal book: what a server keeps so that a request can be withdrawn from it.

A server holds one only in a run where timeouts cancel work (or when its failures lose
work), so the others track nothing. Withdrawal is an event loop's cancellation of a
task: a withdrawn request leaves the queue it waits in, or its I/O wait or call wait, at
once, letting go of what it holds; a CPU burst cannot be interrupted, so a request
withdrawn while on a core stops when the burst ends.

The book takes part by wrapping the server's hooks when it is installed: arrivals are
noted in the run's `Withdrawals.where` (a withdrawn one arriving is discarded), I/O waits
and calls are noted so that a withdrawal can cut them short, and a withdrawn request
met between steps stops there.
"""

from collections.abc import Callable

from asyncflow_backend.config.constants import EndReason
from asyncflow_backend.resources import ConnectionPool
from asyncflow_backend.runtime.actors.calls import CallDispatcher
from asyncflow_backend.runtime.actors.host import Callback, Handler, ServerHost
from asyncflow_backend.runtime.request import Fired, RequestState, SubRequest
from asyncflow_backend.runtime.steps import CallStep, Join
from asyncflow_backend.runtime.timeouts import Withdrawals


class WithdrawalBook:
    """The requests of `server` (and of its call dispatcher `calls`, if it has one) that a
    withdrawal must find, kept up to date in `withdrawals` (the run's, or the server's
    own)."""

    def __init__(
        self, server: ServerHost, calls: CallDispatcher | None, withdrawals: Withdrawals
    ) -> None:
        self.server = server
        self.calls = calls
        self.id = server.id
        self.withdrawals = withdrawals
        self.sleeping: dict[RequestState, tuple[ConnectionPool[RequestState] | None, float]] = {}
        """Requests in an I/O wait: the pool connection held (if any) and when it ends."""
        self.calling: dict[RequestState, Join] = {}
        """Requests waiting for the answers to a call."""
        # The hooks this book wraps, as they were when it was installed.
        self._receive: Handler = server.receive
        self._advance: Handler = server.advance
        self._finish: Handler = server.finish
        self._fail: Callable[[RequestState, str, str], None] = server.fail
        self._reject: Callable[[RequestState, EndReason], None] = server.reject
        self._sleep: Callable[[RequestState, float], None] = server.sleep
        self._take_connection = server.take_connection
        self._wake_from_io: Callback = server.wake_from_io
        self._wake_from_pooled_io: Callback = server.wake_from_pooled_io

    def install(self) -> None:
        """Put the book in the server's path (and its call dispatcher's, if it has one)."""
        server = self.server
        server.receive = self.receive
        server.advance = self.advance
        server.finish = self.finish
        server.fail = self.fail
        server.reject = self.reject
        server.sleep = self.sleep
        server.take_connection = self.take_connection
        server.wake_from_io = self.wake_from_io
        server.wake_from_pooled_io = self.wake_from_pooled_io
        calls = self.calls
        if calls is not None:
            send_calls, end_call = calls.send_calls, calls.end_call
            answered, call_lost = calls.answered, calls.call_lost
            gone = self.withdrawals.gone

            def sent(request: RequestState, step: CallStep) -> Join:
                join = send_calls(request, step)
                # A call may fail while it is sent (an edge that drops a sub-request at
                # once): then it is over already and nothing waits.
                if not join.done:
                    self.calling[request] = join
                return join

            def ended(request: RequestState, failed: bool | None) -> None:
                self.calling.pop(request, None)
                end_call(request, failed)

            def answer(sub: SubRequest) -> None:
                gone.discard(sub)  # an answer to a withdrawn call is counted and forgotten
                answered(sub)

            def lost(sub: SubRequest, place: str, reason: str) -> None:
                gone.discard(sub)
                call_lost(sub, place, reason)

            calls.send_calls, calls.end_call = sent, ended
            calls.answered, calls.call_lost = answer, lost

    def receive(self, request: RequestState) -> None:
        """Discard a request withdrawn on its way here, else note where it is and admit it."""
        withdrawals = self.withdrawals
        if request in withdrawals.gone:
            withdrawals.gone.discard(request)
            return
        withdrawals.where[request] = self
        self._receive(request)

    def withdraw(self, request: RequestState) -> EndReason:
        """Take `request` out of what it waits on, letting go of what it holds; if it is on a
        core instead, mark it to stop when its CPU burst ends. Returns how it was withdrawn."""
        server = self.server
        if server.cores.withdraw(request):
            reason = EndReason.WITHDRAWN_FROM_READY_QUEUE
        elif server.ram.withdraw(request):
            reason = EndReason.WITHDRAWN_FROM_RAM_QUEUE
        elif any(pool.withdraw(request) for pool in server.pools):
            reason = EndReason.WITHDRAWN_FROM_POOL_QUEUE
        elif request in self.sleeping:
            pool, wakes_at = self.sleeping.pop(request)
            server.io_waiting -= 1
            now = server.env._now
            # The wait was booked in full when it began: take back the part not waited.
            request.spent[server.io_slot] -= wakes_at - now
            if pool is not None:
                # Its hold was counted in full when it began: take back the part not held.
                pool.busy_seconds -= wakes_at - now
                pool.release()
            reason = EndReason.WITHDRAWN_FROM_IO_WAIT
        elif request in self.calling:
            # Answers still to come are counted at their call site and otherwise ignored.
            self.calling[request].done = True
            assert self.calls is not None
            self.calls.end_call(request, None)
            reason = EndReason.WITHDRAWN_FROM_CALL
        else:
            self.withdrawals.gone.add(request)
            return EndReason.STOPPED_AFTER_CPU_STEP
        server.let_go(request, holds_ram=reason is not EndReason.WITHDRAWN_FROM_RAM_QUEUE)
        self.withdrawals.where.pop(request, None)
        return reason

    def sleep(self, request: RequestState, seconds: float) -> None:
        """Wait on I/O, noted so that a withdrawal can cut the wait short."""
        self.sleeping[request] = (None, self.server.env._now + seconds)
        self._sleep(request, seconds)

    def take_connection(self, pool: ConnectionPool[RequestState], request: RequestState) -> None:
        """Wait holding a connection, noted so that a withdrawal can cut the wait short."""
        # The hold's length is drawn inside; the pool's count grows by exactly that much.
        before = pool.busy_seconds
        self._take_connection(pool, request)
        self.sleeping[request] = (pool, self.server.env._now + (pool.busy_seconds - before))

    def wake_from_io(self, event: Fired) -> None:
        """An I/O wait ended; one withdrawn during it was let go then."""
        if self.sleeping.pop(event.value, None) is None:
            return
        self._wake_from_io(event)

    def wake_from_pooled_io(self, event: Fired) -> None:
        """A pooled I/O wait ended; one withdrawn during it was let go then."""
        if self.sleeping.pop(event.value[0], None) is None:
            return
        self._wake_from_pooled_io(event)

    def advance(self, request: RequestState) -> None:
        """Stop a withdrawn request between two steps, else run its next one."""
        if request in self.withdrawals.gone:
            self.stop(request)
            return
        self._advance(request)

    def stop(self, request: RequestState) -> None:
        """A withdrawn request's CPU burst has ended: it lets go of everything and leaves
        no trace."""
        server = self.server
        if request.holds_core:
            request.holds_core = False
            server.cores.release()
        server.let_go(request)
        self.forget(request)

    def forget(self, request: RequestState) -> None:
        """`request` leaves the server: nothing more is kept of it."""
        self.withdrawals.gone.discard(request)
        self.withdrawals.where.pop(request, None)

    def finish(self, request: RequestState) -> None:
        """The request leaves having run every step."""
        self.withdrawals.where.pop(request, None)
        self._finish(request)

    def fail(self, request: RequestState, place: str, reason: str) -> None:
        """The request fails here, and is forgotten."""
        self.forget(request)
        self._fail(request, place, reason)

    def reject(self, request: RequestState, reason: EndReason) -> None:
        """The request, never admitted, is rejected, and forgotten."""
        self.forget(request)
        self._reject(request, reason)
