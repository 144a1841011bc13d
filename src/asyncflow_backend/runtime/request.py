"""The state a request carries through the system."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asyncflow_backend.runtime.actors.server import EndpointPlan


class RequestState:
    """One request in flight. Only requests in flight exist: completed ones leave a number
    in the collector's arrays and nothing else, so memory follows the load, not the horizon.
    """

    __slots__ = ("created_at", "holds_core", "plan", "returning", "step_index")

    def __init__(self, created_at: float) -> None:
        self.created_at = created_at
        self.returning = False
        """True once the client has sent it on: its next visit to the client completes it."""
        self.plan: EndpointPlan | None = None
        self.step_index = 0
        self.holds_core = False
