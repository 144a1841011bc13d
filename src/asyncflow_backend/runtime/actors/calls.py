"""The call dispatcher: a server's calls to other nodes, their joins, retries and breakers.

Only a server with call steps owns one, so the others pay nothing for calls. The server
hands it each call step to run (`call`); the dispatcher sends the sub-requests, waits
for their answers at the server's reply port (it is that port), retries lost ones as the
step's policy says, keeps the step's circuit breaker informed, and gives the calling
request back to the server (`advance`) once enough answers are in, or fails it there
(`fail`). The step's policies decide; the dispatcher does the work.

A sub-request is lost when an edge drops it, a server refuses it, or a server fails it;
whoever loses it tells its caller, this dispatcher, at once (`call_lost`).
"""

from collections.abc import Callable
from functools import partial

from asyncflow_backend.config.constants import EndReason, Outcome
from asyncflow_backend.metrics.breakdown import HopCategory, HopKind
from asyncflow_backend.resources import ConnectionPool
from asyncflow_backend.runtime.actors.host import PoolGrant, ServerHost
from asyncflow_backend.runtime.policies.retry import sub_request_outcome
from asyncflow_backend.runtime.request import Fired, RequestState, RetriedSubRequest, SubRequest
from asyncflow_backend.runtime.steps import CallSite, CallStep, Guard, Join, TimedJoin
from asyncflow_backend.runtime.timeouts import Withdrawals


class CallDispatcher:
    """The call machinery of server `server`, whose call steps have the sites `sites`.

    Its hooks `send_calls`, `end_call`, `answered`, `call_lost` and `call_with_connection`
    are attributes bound at build time, which the server's other collaborators (the
    withdrawal book, a failure model) may wrap.
    """

    def __init__(self, server: ServerHost, sites: list[CallSite]) -> None:
        self.server = server
        self.id = server.id
        """The calling server's id: answers go back along the edge to it."""
        self.env = server.env
        self.sites = sites
        self.waiting = 0
        """Requests waiting for the answers to a call."""
        self.retrying = 0
        """Sub-requests waiting out a backoff before they are sent again."""
        self.withdrawals: Withdrawals | None = None
        """Where a step that says `cancel` withdraws the sub-requests a timeout abandons;
        None when the run withdraws nothing."""
        self._breaker_calls: dict[RequestState, int] = {}
        """Requests in a call a circuit breaker let through: the breaker's generation then."""
        hops = server.collector.hops
        self._scratch = hops.scratch
        self._calls_slot = hops.slot(HopKind.SERVER, server.id, HopCategory.CALLS)
        self._nested_slot = hops.slot(HopKind.SERVER, server.id, HopCategory.NESTED)
        self.send_calls: Callable[[RequestState, CallStep], Join] = self._send_calls
        """Send the step's sub-requests; returns the join that waits for their answers."""
        self.end_call: Callable[[RequestState, bool | None], None] = self._end_call
        """Book-keeping of a call that ended: answered (False), failed (True) or withdrawn
        (None)."""
        self.answered: Callable[[SubRequest], None] = self._answered
        """An answer to one of the calls arrived."""
        self.call_lost: Callable[[SubRequest, str, str], None] = self._call_lost
        """A sub-request was lost at a place for a reason (an `EndReason`)."""
        self.call_with_connection: PoolGrant = self._call_with_connection
        """Grant callback of a pool a call step holds: send the call."""
        self._connection_for_call: list[Callable[[RequestState], None]] = []

    @property
    def receive(self) -> Callable[[SubRequest], None]:
        """The reply port's door: an answering edge delivers each answer here."""
        return self.answered

    def connect(self) -> None:
        """Make the grant callbacks of the server's pools for calls, from the hooks as they
        are once the server is built."""
        self._connection_for_call = [
            partial(self.call_with_connection, pool) for pool in self.server.pools
        ]

    def call(self, request: RequestState, step: CallStep) -> None:
        """Send the call's sub-requests, holding a connection of its pool first if it names one;
        a call its circuit breaker refuses fails at once."""
        if step.breaker is not None and not self._breaker_permits(request, step.breaker):
            self.server.fail(request, step.place, EndReason.CIRCUIT_OPEN)
            return
        if step.pool is None:
            self.send_calls(request, step)
        else:
            request.waited_since = self.env.now
            self.server.pools[step.pool].request(request, self._connection_for_call[step.pool])

    def _call_with_connection(
        self, pool: ConnectionPool[RequestState], request: RequestState
    ) -> None:
        now = self.env.now
        waited = now - request.waited_since
        pool.wait_seconds_total += waited
        pool.waits += 1
        request.spent[self.server.pool_wait_slot] += waited
        # Held until the answers: its length is counted when it is given back.
        request.waited_since = now
        self.send_calls(request, self._current_call(request))

    def _current_call(self, request: RequestState) -> CallStep:
        plan = request.plan
        assert plan is not None
        step = plan.steps[request.step_index - 1]
        assert isinstance(step, CallStep)
        return step

    def _send_calls(self, request: RequestState, step: CallStep) -> Join:
        self.waiting += 1
        now = self.env.now
        # One sub-request's hops tile the wait exactly, so they are booked as the caller's
        # are; parallel ones overlap, and the caller books the join's wait instead.
        spent = request.spent if len(step.sites) == 1 else self._scratch
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
        self.end_call(parent, True)
        self.server.fail(parent, step.place, EndReason.CALL_TIMED_OUT)

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
        """The waiting count, the pool connection held for the call, and its circuit
        breaker's record."""
        self.waiting -= 1
        step = self._current_call(request)
        if step.breaker is not None:
            self._breaker_records(request, step.breaker, failed)
        pool_index = step.pool
        if pool_index is not None:
            pool = self.server.pools[pool_index]
            pool.busy_seconds += self.env.now - request.waited_since
            pool.release()

    def _answered(self, sub: SubRequest) -> None:
        """With enough answers in, the calling request carries on."""
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
        parent.spent[self._nested_slot if join.sent == 1 else self._calls_slot] += seconds
        self.end_call(parent, False)
        self.server.advance(parent)

    def _call_lost(self, sub: SubRequest, place: str, reason: str) -> None:
        """Once too many are lost for the call to get its answers, the calling request
        fails, and so, up the chain, do the requests whose calls it was answering."""
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
        self.end_call(parent, True)
        self.server.fail(parent, place, reason)
