"""The state a request carries through the system."""

from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

from asyncflow_backend.runtime.steps import CallSite, EndpointPlan, Join


class RequestState:
    """One request in flight. Only requests in flight exist: completed ones leave a number
    in the collector's arrays and nothing else, so memory follows the load, not the horizon.
    """

    __slots__ = (
        "arrived_at",
        "created_at",
        "holds_core",
        "lookups",
        "plan",
        "returning",
        "spent",
        "step_index",
        "waited_since",
    )

    # Set by the server that admits the request, before anything reads them; left out
    # of __init__ because every attribute stored there is paid once per request.
    plan: EndpointPlan | None
    step_index: int
    arrived_at: float
    """When it reached the server it is on: the start of its time there."""
    waited_since: float
    """When it began waiting for a pool connection."""

    def __init__(self, created_at: float, spent: list[float]) -> None:
        self.created_at = created_at
        self.spent = spent
        """The list of request-seconds per hop slot its spans are added to
        (`metrics.breakdown`): the run's totals, or the scratch list of parallel calls."""
        self.returning = False
        """True once the client has sent it on: its next visit to the client completes it."""
        self.holds_core = False

    parent: "RequestState | None" = None
    """The request whose call this one answers; None for a request from the client. A
    class attribute here, a slot of `SubRequest`: requests from the client pay nothing."""

    lookups: "dict[object, bool]"
    """By cache lookup (and the call sites that led here), whether the request's later
    attempts hit: set on a first attempt, only in runs that retry (`runtime.sticky`), and
    never read before it is set."""

    workload_class: int = 0
    """Index of the workload class that sent it (0: `rqs_input`). A class attribute here, a
    slot of `ClassRequest`: scenarios without classes pay nothing."""


class ClassRequest(RequestState):
    """A request of workload class `workload_class` > 0."""

    __slots__ = ("workload_class",)

    def __init__(self, created_at: float, spent: list[float], workload_class: int) -> None:
        super().__init__(created_at, spent)
        self.workload_class = workload_class


RequestFactory = Callable[[float, list[float]], RequestState]
"""Makes a request created at a time, booking its spans in a list of hop totals
(`RequestState`'s arguments): `RequestState` itself, or one of a workload class."""


def request_factory(workload_class: int) -> RequestFactory:
    """How a generator of class `workload_class` makes its requests."""
    if workload_class == 0:
        return RequestState
    return partial(ClassRequest, workload_class=workload_class)


class Fired(Protocol):
    """A triggered SimPy event as a callback reads it: its value is what the actor put in.

    Reading it through this protocol needs no `typing.cast`, which is a real function
    call, and these callbacks run for every hop of every request.
    """

    @property
    def value(self) -> Any:
        """What the event was triggered with: a request, or a (request, pool) pair."""


class Caller(Protocol):
    """The server a sub-request answers to."""

    id: str

    def call_lost(self, sub: "SubRequest", place: str, reason: str) -> None:
        """The sub-request was lost at `place` for `reason` (an `EndReason`): the call
        fails, and its caller's request."""


class SubRequest(RequestState):
    """A request a server sends to another node by a `call` step, on behalf of `parent`."""

    __slots__ = ("caller", "join", "parent", "site")

    def __init__(
        self,
        created_at: float,
        parent: RequestState,
        caller: Caller,
        site: CallSite,
        join: Join,
        spent: list[float],
    ) -> None:
        super().__init__(created_at, spent)
        self.parent = parent
        self.caller = caller
        self.site = site
        self.join = join

    attempt: int = 1
    """Which attempt at its call site this is: 1, a class attribute here, for a first
    attempt; a slot of `RetriedSubRequest`."""


class RetriedSubRequest(SubRequest):
    """A sub-request sent again by its call step's retry policy: attempt number `attempt`."""

    __slots__ = ("attempt",)

    def __init__(
        self,
        created_at: float,
        parent: RequestState,
        caller: Caller,
        site: CallSite,
        join: Join,
        spent: list[float],
        attempt: int,
    ) -> None:
        super().__init__(created_at, parent, caller, site, join, spent)
        self.attempt = attempt
