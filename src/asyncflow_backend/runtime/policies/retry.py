"""The retry policy: whether an attempt that ended badly is sent again, and after how long.

Written the way Dramatiq writes its `Retries` middleware: a small object with named hooks
(`first_attempt`, `after_attempt`) that the sender calls, built only for a scenario that
asks for retries, so nothing in a run without them ever consults one.
"""

from asyncflow_backend.config.constants import EndReason, Jitter, Outcome
from asyncflow_backend.samplers import Sampler
from asyncflow_backend.schemas.retries import Backoff, Retry, RetryBudget

_EPSILON = 1e-9
"""Slack on a token count: ten deposits of 0.1 make one token, not 0.9999999999999999."""


class TokenBucket:
    """A retry budget (Finagle's `RetryBudget`, gRPC's retry throttling): first attempts
    earn `ratio` tokens each up to `max_tokens`, a retry spends one. The bucket starts full,
    so retries <= max_tokens + ratio x first attempts over any stretch of a run."""

    __slots__ = ("max_tokens", "ratio", "tokens")

    def __init__(self, spec: RetryBudget) -> None:
        self.ratio = spec.ratio
        self.max_tokens = float(spec.max_tokens)
        self.tokens = self.max_tokens

    def deposit(self, first_attempts: int = 1) -> None:
        """`first_attempts` first attempts were sent: each earns `ratio` tokens."""
        self.tokens = min(self.max_tokens, self.tokens + self.ratio * first_attempts)

    def withdraw(self) -> bool:
        """Spend a token for a retry; False (and nothing spent) if less than one is left."""
        if self.tokens < 1.0 - _EPSILON:
            return False
        self.tokens = max(0.0, self.tokens - 1.0)
        return True


def backoff_delays(spec: Backoff) -> list[float]:
    """d for retries 1, 2, ...: `base_s` doubling up to `cap_s`, listed until the cap (every
    later retry has the cap)."""
    delays = [spec.base_s]
    while delays[-1] < spec.cap_s:
        delays.append(min(spec.cap_s, delays[-1] * 2))
    return delays


class RetryPolicy:
    """One sender's retries (the client's, or one call step's): at most `max_attempts`
    attempts, a retry only for an end in `retry_on`, then only if the budget (if any) has a
    token, after a capped exponential backoff with jitter (Brooker, "Exponential Backoff
    And Jitter", AWS Architecture Blog, 2015: full jitter draws uniformly in [0, d]).

    Counts `retries` sent and `refused` by the budget.
    """

    def __init__(self, spec: Retry, uniform: Sampler) -> None:
        self.max_attempts = spec.max_attempts
        self.retry_on = frozenset(Outcome(value) for value in spec.retry_on)
        self._delays = backoff_delays(spec.backoff)
        self._jitter = spec.backoff.jitter
        self._uniform = uniform
        self.budget = None if spec.budget is None else TokenBucket(spec.budget)
        self.retries = 0
        self.refused = 0
        """Retries the budget did not allow."""

    def first_attempt(self, count: int = 1) -> None:
        """Hook: `count` first attempts were sent (they fill the budget)."""
        if self.budget is not None:
            self.budget.deposit(count)

    def after_attempt(self, attempt: int, outcome: Outcome) -> float | None:
        """Hook: attempt number `attempt` (1 for the first) ended with `outcome`. Returns the
        seconds to wait before the next attempt, or None if it is not retried."""
        if attempt >= self.max_attempts or outcome not in self.retry_on:
            return None
        if self.budget is not None and not self.budget.withdraw():
            self.refused += 1
            return None
        self.retries += 1
        return self.delay(attempt)

    def delay(self, retry: int) -> float:
        """Seconds before retry number `retry` (1 for the first retry)."""
        delays = self._delays
        d = delays[min(retry, len(delays)) - 1]
        if self._jitter is Jitter.FULL:
            return d * self._uniform()
        if self._jitter is Jitter.EQUAL:
            return d * (0.5 + 0.5 * self._uniform())
        return d


_SUB_REQUEST_OUTCOMES = {
    EndReason.CALL_DROPPED: Outcome.DROPPED,
    EndReason.CALL_REJECTED: Outcome.REJECTED,
    EndReason.CALL_TIMED_OUT: Outcome.TIMED_OUT,
}


def sub_request_outcome(reason: str) -> Outcome:
    """How a lost sub-request ended, from the reason its caller is told: dropped on an edge
    (here or further down the chain of calls), refused, timed out further down, or failed
    (any other reason)."""
    return _SUB_REQUEST_OUTCOMES.get(EndReason(reason), Outcome.FAILED)
