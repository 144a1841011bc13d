"""A circuit breaker on a call step, after resilience4j's `CircuitBreaker`
(https://resilience4j.readme.io/docs/circuitbreaker): the policy a call step consults before
it sends its sub-requests, and tells how each call it let through ended."""

from collections import deque
from enum import Enum

from asyncflow_backend.config.constants import SlidingWindowType
from asyncflow_backend.schemas.resilience import CircuitBreaker


class BreakerState(Enum):
    """The breaker's states."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Breaker:
    """Closed: every call passes, and each call's end goes into a sliding window (the last N
    calls, or the calls that ended in the last N seconds); once the window holds at least
    `minimum_number_of_calls` calls and `failure_rate_threshold` percent of them failed,
    the breaker opens. Open: every call is refused, until `wait_duration_in_open_state`
    seconds have passed; the next call then finds it half-open. Half-open: the first
    `permitted_number_of_calls_in_half_open_state` calls pass and the others are refused;
    once all the trial calls have ended, the breaker closes (with an empty window) if
    their failure rate is under the threshold, else opens again.

    Calls that end after the state they were let through in has changed (a slow call from
    before the breaker opened, say) are not recorded, as resilience4j ignores them.

    Counts `opened` (transitions to open) and `refused` (calls failed at once).
    """

    def __init__(self, spec: CircuitBreaker) -> None:
        self.threshold = spec.failure_rate_threshold / 100.0
        self.time_based = spec.sliding_window_type is SlidingWindowType.TIME_BASED
        self.window_size = spec.sliding_window_size
        self.minimum = spec.minimum_number_of_calls
        self.wait_s = spec.wait_duration_in_open_state
        self.trials = spec.permitted_number_of_calls_in_half_open_state
        self.state = BreakerState.CLOSED
        self.generation = 0
        """Bumped at every change of state: a call records its end only in its own."""
        self._window: deque[tuple[float, bool]] = deque(
            maxlen=None if self.time_based else self.window_size
        )
        self._failures = 0
        self._open_until = 0.0
        self._trials_let_through = 0
        self._trial_ends: list[bool] = []
        self.opened = 0
        self.refused = 0

    def permits(self, now: float) -> int | None:
        """Hook: a call is about to be sent at `now`. Returns the generation to record its end
        in (`record`), or None if the breaker refuses it."""
        state = self.state
        if state is BreakerState.OPEN:
            if now < self._open_until:
                self.refused += 1
                return None
            self._enter(BreakerState.HALF_OPEN)
            state = self.state
        if state is BreakerState.HALF_OPEN:
            if self._trials_let_through >= self.trials:
                self.refused += 1
                return None
            self._trials_let_through += 1
        return self.generation

    def record(self, generation: int, failed: bool, now: float) -> None:
        """Hook: a call let through in `generation` ended at `now`, failed or not."""
        if generation != self.generation:
            return
        if self.state is BreakerState.HALF_OPEN:
            self._trial_ends.append(failed)
            if len(self._trial_ends) == self.trials:
                if sum(self._trial_ends) >= self.threshold * self.trials:
                    self._enter(BreakerState.OPEN)
                    self._open_until = now + self.wait_s
                else:
                    self._enter(BreakerState.CLOSED)
            return
        window = self._window
        if not self.time_based and len(window) == self.window_size:
            self._failures -= window[0][1]
        window.append((now, failed))
        self._failures += failed
        if self.time_based:
            horizon = now - self.window_size
            while window and window[0][0] <= horizon:
                self._failures -= window.popleft()[1]
        if len(window) >= self.minimum and self._failures >= self.threshold * len(window):
            self._enter(BreakerState.OPEN)
            self._open_until = now + self.wait_s

    def _enter(self, state: BreakerState) -> None:
        self.state = state
        self.generation += 1
        if state is BreakerState.OPEN:
            self.opened += 1
        elif state is BreakerState.HALF_OPEN:
            self._trials_let_through = 0
            self._trial_ends = []
        else:
            self._window.clear()
            self._failures = 0
