"""The client with a retry policy: each attempt is a request of its own on the wire, and the
request the user sent ends once, with the end of its last attempt."""

from asyncflow_backend.config.constants import Outcome
from asyncflow_backend.metrics.collector import MetricsCollector
from asyncflow_backend.runtime.actors.client import ClientRuntime
from asyncflow_backend.runtime.context import BuildContext
from asyncflow_backend.runtime.policies.retry import RetryPolicy
from asyncflow_backend.runtime.request import Fired, RequestState
from asyncflow_backend.runtime.timeouts import Expiry
from asyncflow_backend.samplers.variates import batched
from asyncflow_backend.schemas.retries import Retry
from asyncflow_backend.schemas.topology import Client


class Attempt(RequestState):
    """A retry: attempt number `number` (2, 3, ...) of the request `first`, the first attempt,
    which stands for the request the user sent (its creation time, its workload class, the
    closed user waiting for it).

    Its own `created_at` is when it was sent, from which its timeout counts; the latency of
    the request, if it completes, counts from `first.created_at`."""

    __slots__ = ("first", "number")

    def __init__(self, created_at: float, first: RequestState, number: int) -> None:
        super().__init__(created_at, first.spent)
        self.first = first
        self.number = number

    @property
    def workload_class(self) -> int:  # type: ignore[override]
        """The class of the request it retries."""
        return self.first.workload_class


def attempt_of(request: RequestState) -> tuple[RequestState, int]:
    """(the request's first attempt, which attempt this is)."""
    if isinstance(request, Attempt):
        return request.first, request.number
    return request, 1


class RetryingClient(ClientRuntime):
    """A client that sends an attempt again when it ends in one of the policy's `retry_on`
    (after the attempt's timeout, if the client has one), after a backoff.

    It hooks into the collector (`MetricsCollector.retry`), through which every end but a
    completion passes: an end it retries is not counted, so the request goes on (in its
    backoff, then on the wire) until an attempt completes or an end is not retried.
    """

    def __init__(
        self,
        client_id: str,
        collector: MetricsCollector,
        policy: RetryPolicy,
        expiry: Expiry | None,
    ) -> None:
        super().__init__(client_id, collector)
        self.env = collector.env
        self.policy = policy
        self.expiry = expiry
        self.backing_off = 0
        """Requests waiting out a backoff before their next attempt: in flight, on no wire."""
        collector.retry = self.after_end
        collector.attempts_per_second = self._sent = [0] * len(collector.completions_per_second)

    @classmethod
    def build(cls, spec: Client, ctx: BuildContext, retry: Retry) -> "RetryingClient":
        """The client `spec` with the policy `retry` (its jitter from stream `retry:client`)
        and the scenario's client timeout, if any."""
        policy = RetryPolicy(retry, batched(ctx.streams.generator("retry:client").random))
        timeouts = ctx.timeouts
        expiry = None
        if timeouts is not None and timeouts.client_timeout is not None:
            withdrawals = timeouts.withdrawals if timeouts.cancel_on_client_timeout else None
            expiry = Expiry(ctx.env, spec.id, timeouts.client_timeout, ctx.collector, withdrawals)
        return cls(spec.id, ctx.collector, policy, expiry)

    def receive(self, request: RequestState) -> None:
        """First visit: a first attempt, sent on. Second: complete, or note a late answer."""
        if request.returning:
            if self.expiry is None or self.expiry.answered(request):
                self._collector.record_completion(attempt_of(request)[0])
            else:
                self._collector.record_late_answer()
        else:
            self.policy.first_attempt()
            self._send(request)

    def _send(self, request: RequestState) -> None:
        request.returning = True
        self._sent[int(self.env._now)] += 1
        if self.expiry is not None:
            self.expiry.arm(request)
        assert self.out_edge is not None
        self.out_edge.send(request)

    def after_end(self, request: RequestState, outcome: Outcome) -> bool:
        """The collector's hook: `request` ended with `outcome`. True if the policy retries
        it (the end is then not counted). A request lost before the client sent it is not
        the client's to retry."""
        if not request.returning:
            return False
        first, number = attempt_of(request)
        delay = self.policy.after_attempt(number, outcome)
        if delay is None:
            self._collector.retries_refused = self.policy.refused
            return False
        self.backing_off += 1
        self.env.timeout(delay, (first, number + 1)).callbacks.append(self._retry)
        return True

    def _retry(self, event: Fired) -> None:
        first, number = event.value
        self.backing_off -= 1
        self._collector.retries += 1
        self._send(Attempt(self.env._now, first, number))
