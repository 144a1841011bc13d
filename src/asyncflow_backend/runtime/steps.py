"""Endpoint plans: what each step of an endpoint does, compiled for the hot path.

A leaf module of the engine (it imports no other runtime module), so that
actors, the request state and the model builder can all share the plan types.
Each step kind is a small class that runs itself on the primitives its host
server offers (`StepHost`), for any request type that says whether it holds a
core (`Progress`).
"""

import itertools
from array import array
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from asyncflow_backend.resources import CoreSet
from asyncflow_backend.samplers import Sampler


class Progress(Protocol):
    """What a step needs to know of the request it runs."""

    holds_core: bool
    step_index: int
    """Index of the next step to run in the plan."""


R = TypeVar("R", bound=Progress)


class StepHost(Protocol[R]):
    """What a server offers the steps it runs."""

    cores: CoreSet[R]

    def burn(self, request: R, seconds: float) -> None:
        """Keep the request's core busy for `seconds`, then move the request on."""

    def take_core(self, request: R) -> None:
        """Grant callback: the request now holds a core; burn its current CPU step."""

    def sleep(self, request: R, seconds: float) -> None:
        """Wait `seconds` on I/O without a core, then move the request on."""

    def wait_for_connection(self, request: R, pool: int) -> None:
        """Queue for a connection of pool number `pool`, then wait the current step's I/O
        holding it."""

    def advance(self, request: R) -> None:
        """Run the request's next step (the one at its `step_index`), or finish it."""

    def call(self, request: R, step: "CallStep") -> None:
        """Send a sub-request for `step` (holding a pool connection first if it names a
        pool) and move the request on when the answer comes back."""


class Step(Protocol):
    """One timed step of an endpoint; RAM steps are folded into `EndpointPlan.ram_mb`."""

    @property
    def duration(self) -> Sampler:
        """Draws the step's length in seconds."""

    def run(self, host: StepHost[R], request: R) -> None:
        """Start the step; the host moves the request on when it ends."""


def _let_go_of_core(host: StepHost[R], request: R) -> None:
    if request.holds_core:
        request.holds_core = False
        host.cores.release()


@dataclass(frozen=True, slots=True)
class CpuStep:
    """CPU work: holds a core for a draw of `duration` seconds (consecutive CPU steps keep
    the core they have)."""

    duration: Sampler

    def run(self, host: StepHost[R], request: R) -> None:
        """Burn on the request's core, or queue for one (the ready queue)."""
        if request.holds_core:
            host.burn(request, self.duration())
        else:
            host.cores.request(request, host.take_core)


@dataclass(frozen=True, slots=True)
class IoStep:
    """An I/O wait of a draw of `duration` seconds, holding no core."""

    duration: Sampler

    def run(self, host: StepHost[R], request: R) -> None:
        """Give the core back and sleep on the event loop."""
        if request.holds_core:
            request.holds_core = False
            host.cores.release()
        host.sleep(request, self.duration())


@dataclass(frozen=True, slots=True)
class PooledIoStep:
    """An I/O wait that holds a connection of one of the server's pools while it waits."""

    duration: Sampler
    pool: int
    """Index of the pool in the server's pool list."""

    def run(self, host: StepHost[R], request: R) -> None:
        """Give the core back, queue for a connection, then sleep holding it."""
        _let_go_of_core(host, request)
        host.wait_for_connection(request, self.pool)


class Retries(Protocol):
    """A retry policy as a call step uses it (`runtime.policies.retry.RetryPolicy`)."""

    def first_attempt(self, count: int = 1) -> None:
        """`count` first attempts were sent."""

    def after_attempt(self, attempt: int, outcome: Any) -> float | None:
        """Seconds before the next attempt after attempt `attempt` ended with `outcome`
        (an `Outcome`), or None if it is not retried."""


class Guard(Protocol):
    """A circuit breaker as a call step uses it (`runtime.policies.circuit_breaker.Breaker`)."""

    opened: int
    refused: int

    def permits(self, now: float) -> int | None:
        """The generation to record the call's end in, or None if the call is refused."""

    def record(self, generation: int, failed: bool, now: float) -> None:
        """A call let through in `generation` ended, `failed` or not."""


class Sender(Protocol):
    """Where a call's sub-requests are put on the wire: the edge to the called node."""

    def send(self, request: Any) -> None:
        """Put `request` on the wire."""


class CallSite:
    """One target of a call step, and what it measured: calls sent, answered, lost, and
    the seconds from sending each sub-request to its answer."""

    __slots__ = (
        "answered",
        "breaker",
        "edge",
        "failed",
        "id",
        "retries",
        "sent",
        "target",
        "timed_out",
        "times",
    )

    def __init__(self, site_id: str, target: str) -> None:
        self.id = site_id
        self.target = target
        self.edge: Sender | None = None
        """The edge to `target`, set when the server is connected."""
        self.sent = 0
        self.answered = 0
        self.failed = 0
        self.timed_out = 0
        """Sub-requests not answered when their step's timeout fired."""
        self.retries = 0
        """Sub-requests sent again by the step's retry policy (counted in `sent` too)."""
        self.breaker: Guard | None = None
        """The circuit breaker of the site's call step, if it has one."""
        self.times: array[float] = array("d")


NO_TIME: Sampler = itertools.repeat(0.0).__next__


class Join:
    """One execution of a call step: the answers it still waits for.

    The step carries on once `needed` answers are in (all of them, or the first k),
    and fails once so many sub-requests are lost that `needed` can no longer come.
    Answers that come after either are counted at their call site and ignored.
    """

    __slots__ = ("answered", "done", "failed", "needed", "parent", "sent")

    def __init__(self, parent: Any, sent: int, needed: int) -> None:
        self.parent = parent
        self.sent = sent
        self.needed = needed
        self.answered = 0
        self.failed = 0
        self.done = False

    pending: "set[Any] | None" = None
    """The sub-requests not yet answered, kept only by a `TimedJoin`: a class attribute
    here, so that a call without a timeout pays nothing for it."""


class TimedJoin(Join):
    """A `Join` of a call step with a timeout, which must know who has not answered: its
    sender fills `pending`."""

    __slots__ = ("pending",)


@dataclass(frozen=True, slots=True)
class CallStep:
    """Calls to other nodes, one sub-request per site, sent together: the request lets go
    of its core and waits, holding its RAM (and a connection of pool number `pool`, if
    given), until `wait_for` answers are back (fork-join when it is every site)."""

    sites: tuple[CallSite, ...]
    wait_for: int
    pool: int | None = None
    duration: Sampler = NO_TIME
    """A call takes no time of its own: its length is the answer's."""
    timeout: Sampler | None = None
    """Draws the seconds the step waits for its answers; None: it waits for ever."""
    cancel: bool = False
    """On a timeout, withdraw the sub-requests not yet answered (else they run on)."""
    place: str = ""
    """`server:endpoint#step`, where a timeout of this step is counted."""
    retry: "Retries | None" = None
    """The caller's retry policy for the sub-requests; None: a lost one fails the call."""
    breaker: Guard | None = None
    """The step's circuit breaker; None: every call is sent."""

    def run(self, host: StepHost[R], request: R) -> None:
        """Give the core back and send the sub-request."""
        _let_go_of_core(host, request)
        if self.retry is not None:
            self.retry.first_attempt(len(self.sites))
        host.call(request, self)


@dataclass(frozen=True, slots=True)
class CacheLookup:
    """A cache step compiled to a branch: on a hit (probability `hit_ratio`) the request
    runs on into the hit steps that follow; on a miss it jumps to `miss_at`. The hit steps
    end with a `JumpTo` past the miss steps."""

    hit_ratio: float
    uniform: Sampler
    miss_at: int
    duration: Sampler = NO_TIME
    """A lookup takes no time of its own: its branches' steps do."""

    def run(self, host: StepHost[R], request: R) -> None:
        """Draw hit or miss and go on with the branch."""
        if self.uniform() >= self.hit_ratio:
            request.step_index = self.miss_at
        host.advance(request)


@dataclass(frozen=True, slots=True)
class JumpTo:
    """The end of a cache step's hit steps: skip the miss steps."""

    index: int
    duration: Sampler = NO_TIME

    def run(self, host: StepHost[R], request: R) -> None:
        """Go on after the cache step."""
        request.step_index = self.index
        host.advance(request)


@dataclass(frozen=True, slots=True)
class EndpointPlan:
    """An endpoint compiled for the hot path: its RAM total and its timed steps in order."""

    index: int
    """Position of the endpoint on its server."""
    name: str
    ram_mb: float
    steps: tuple[Step, ...]
    times: "array[float]" = field(default_factory=lambda: array("d"))
    """Seconds each request that called this endpoint spent on the server."""
