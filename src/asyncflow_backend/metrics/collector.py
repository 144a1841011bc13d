"""What the actors record while the simulation runs: counts and latencies, in flat arrays."""

import math
from array import array
from typing import Any, Protocol

import simpy

from asyncflow_backend.config.constants import EndReason, Outcome
from asyncflow_backend.metrics.breakdown import HopTotals


class Sent(Protocol):
    """A request from the client, as the collector reads it."""

    created_at: float
    returning: bool
    """True once the client has sent it on (and armed its timeout, if any)."""


class EndHook(Protocol):
    """A policy that may take the end of an attempt for a retry (the retrying client)."""

    def __call__(self, request: Any, outcome: Outcome) -> bool:
        """True if `request`'s end is an attempt's, to be retried: the request goes on."""


EndKey = tuple[Outcome, str, str]
"""(outcome, place, reason): how, where and why requests ended."""


class Stamped(Protocol):
    """A request as the collector reads it: when it was created."""

    created_at: float


class GeneratedCount(Protocol):
    """Where a generator counts the requests it creates: the run's collector, or the
    tally of its workload class."""

    generated: int


class MetricsCollector:
    """Request counts, the latency of every completed request and completions per second.

    Latencies go into an `array('d')`: eight bytes per completed request and
    no object, so a long run costs memory in proportion to its length only
    through this array. Every other end of a request goes through `record_end`,
    which counts it by outcome, place and reason, and per second.
    """

    # Set by the retrying client only (`runtime.actors.retrying_client`): a run without
    # client retries reads the class defaults and carries nothing more.
    retry: EndHook | None = None
    """With client retries: consulted on each end, it may turn it into a retry."""
    retries = 0
    """Attempts the client sent again, once their backoff is over (requests on the wire
    are `generated + retries`)."""
    retries_refused = 0
    """Retries the retry budget did not allow."""
    attempts_per_second: list[int] | None = None
    """With client retries: attempts the client sent in each second, retries included."""

    def __init__(self, env: simpy.Environment, horizon_s: float) -> None:
        self.env = env
        self.generated = 0
        self.latencies = array("d")
        self.end_latencies = array("d")
        """Seconds from its creation to its end of every request counted by `record_end`
        (a timed-out request: its timeout), in the order they ended; with `latencies`, the
        time to outcome of every request that ended. Empty in a run where all complete."""
        self.completion_times: array[float] | None = None
        """With `keep_completion_times`, the simulated second of each completion, in the
        order of `latencies` (so nondecreasing); None otherwise, sparing the memory."""
        self.end_times: array[float] | None = None
        """With `keep_end_times`, the simulated second of each end in `end_latencies`, in
        their order; None otherwise."""
        self._seconds = math.ceil(horizon_s) + 1
        self.completions_per_second = [0] * self._seconds
        self.ends: dict[EndKey, int] = {}
        """Requests that ended other than completed, by (outcome, place, reason)."""
        self.ends_per_second: dict[Outcome, list[int]] = {}
        """Those ends in each second, per outcome; an outcome that never happens has none."""
        self.late_answers = 0
        """Answers that reached the client after their request had timed out."""
        self.late_answers_per_second: list[int] | None = None
        self.awaited: set[object] | None = None
        """With client timeouts: the requests the client has sent on and still waits for.
        An end of a request sent on and not in it is not counted (its request already
        timed out); None without timeouts, when every request counts until it ends."""
        self.withdrawn: set[object] | None = None
        """With timeouts that cancel: the withdrawn requests not yet stopped, which an end
        (a drop on the wire, say) takes out."""
        self.hops = HopTotals()

    # Both ends of a request from the client (completed, or `record_end`) take the
    # request, so that a subclass can tell whoever waits for it (a closed user).

    def record_completion(self, request: Stamped) -> None:
        """`request` came back to the client."""
        # SimPy's `now` is a property; its attribute spares a call on every request.
        now = self.env._now
        self.latencies.append(now - request.created_at)
        if self.completion_times is not None:
            self.completion_times.append(now)
        self.completions_per_second[int(now)] += 1

    def keep_completion_times(self) -> None:
        """Record when each request completes from now on (eight more bytes a completion)."""
        if self.completion_times is None:
            self.completion_times = array("d")

    def keep_end_times(self) -> None:
        """Record when each counted end (not a completion) happens from now on."""
        if self.end_times is None:
            self.end_times = array("d")

    def record_end(self, request: Sent, outcome: Outcome, place: str, reason: str) -> bool:
        """`request` (one from the client) ended with `outcome` at the node or edge `place`,
        for `reason` (an `EndReason`). Every way a request ends but completion comes here,
        so a policy that reacts to ends (a retry, say) has one place to hook into.

        An end of a request that had already timed out is ignored: the client counted it.
        Returns whether this end was counted: False too for an end the client's retry
        policy takes for a retry (the request goes on, with its next attempt).
        """
        awaited = self.awaited
        # Before its first visit to the client a request has no timer: it cannot have
        # timed out, and the client does not await it yet.
        if awaited is not None and request.returning:
            if request not in awaited:
                if self.withdrawn is not None:
                    self.withdrawn.discard(request)  # its last trace: nobody meets it again
                return False
            awaited.discard(request)
        retry = self.retry
        if retry is not None and retry(request, outcome):
            return False  # an attempt's end: the request goes on
        key = (outcome, place, reason)
        self.ends[key] = self.ends.get(key, 0) + 1
        series = self.ends_per_second.get(outcome)
        if series is None:
            series = self.ends_per_second[outcome] = [0] * self._seconds
        now = self.env._now
        series[int(now)] += 1
        # A retried request counts from its first attempt, as its completion would: a
        # retry's `first` is its request's first attempt (a first attempt has none).
        self.end_latencies.append(now - (getattr(request, "first", None) or request).created_at)
        if self.end_times is not None:
            self.end_times.append(now)
        return True

    def record_late_answer(self) -> None:
        """An answer came back to the client after its request had timed out: work done
        for nothing, counted in the throughput and not in the goodput."""
        self.late_answers += 1
        if self.late_answers_per_second is None:
            self.late_answers_per_second = [0] * self._seconds
        self.late_answers_per_second[int(self.env._now)] += 1

    def record_drop(self, request: Sent, where: str) -> None:
        """A request was lost on the edge `where`."""
        self.record_end(request, Outcome.DROPPED, where, EndReason.DROPOUT)

    def ended_at(self, outcome: Outcome) -> dict[str, int]:
        """Requests that ended with `outcome`, by place, all reasons together."""
        places: dict[str, int] = {}
        for (ended, place, _), count in self.ends.items():
            if ended is outcome:
                places[place] = places.get(place, 0) + count
        return places

    def count(self, outcome: Outcome) -> int:
        """Requests that ended with `outcome`."""
        if outcome is Outcome.COMPLETED:
            return self.completed
        return sum(n for (ended, _, _), n in self.ends.items() if ended is outcome)

    @property
    def dropped_at(self) -> dict[str, int]:
        """Dropped requests by edge."""
        return self.ended_at(Outcome.DROPPED)

    @property
    def failed_at(self) -> dict[str, int]:
        """Failed requests by the edge or node that lost or refused their call."""
        return self.ended_at(Outcome.FAILED)

    @property
    def failed(self) -> int:
        """Requests that failed anywhere."""
        return self.count(Outcome.FAILED)

    @property
    def completed(self) -> int:
        """Requests that came back to the client."""
        return len(self.latencies)

    @property
    def dropped(self) -> int:
        """Requests lost anywhere."""
        return self.count(Outcome.DROPPED)
