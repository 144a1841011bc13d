"""Connection pools of one server."""

from typing import TypeVar

from asyncflow_backend.resources.base import Resource

T = TypeVar("T")


class ConnectionPool(Resource[T]):
    """`size` connections (to a database, a cache, a downstream service), one per holder.

    An I/O step that names the pool holds one connection for its whole wait; when
    all are taken the step queues FIFO for the next one to come back.
    """

    def __init__(self, name: str, size: int) -> None:
        super().__init__(size)
        self.name = name
        self.busy_seconds = 0.0
        """Connection-seconds held, counted when each hold starts (its length is known then)."""
        self.wait_seconds_total = 0.0
        self.waits = 0
        """Holds granted; with `wait_seconds_total`, the mean wait for a connection."""
