"""The state a request carries through the system."""

from asyncflow_backend.runtime.steps import EndpointPlan


class RequestState:
    """One request in flight. Only requests in flight exist: completed ones leave a number
    in the collector's arrays and nothing else, so memory follows the load, not the horizon.
    """

    __slots__ = (
        "arrived_at",
        "created_at",
        "holds_core",
        "plan",
        "returning",
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

    def __init__(self, created_at: float) -> None:
        self.created_at = created_at
        self.returning = False
        """True once the client has sent it on: its next visit to the client completes it."""
        self.holds_core = False
