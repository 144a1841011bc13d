"""The state a request carries through the system."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asyncflow_backend.runtime.steps import EndpointPlan


class RequestState:
    """One request in flight. Only requests in flight exist: completed ones leave a number
    in the collector's arrays and nothing else, so memory follows the load, not the horizon.
    """

    __slots__ = (
        "arrived_at",
        "created_at",
        "generation",
        "holds_core",
        "plan",
        "returning",
        "step_index",
        "waited_since",
    )

    def __init__(self, created_at: float) -> None:
        self.created_at = created_at
        self.returning = False
        """True once the client has sent it on: its next visit to the client completes it."""
        self.plan: EndpointPlan | None = None
        self.step_index = 0
        self.holds_core = False
        self.arrived_at = 0.0
        """When it reached the server it is on: the start of its time there."""
        self.waited_since = 0.0
        """When it began waiting for a pool connection."""
        self.generation = 0
        """Bumped when the request is abandoned, so that its late timer callbacks, which
        carry the generation they were armed in, know to do nothing."""
