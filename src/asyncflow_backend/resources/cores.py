"""CPU cores of one server."""

from typing import TypeVar

from asyncflow_backend.resources.base import Resource

T = TypeVar("T")


class CoreSet(Resource[T]):
    """`cores` identical cores, one per holder; the waiters are the server's ready queue:
    requests ready to run that wait for the event loop of a core.
    """

    @property
    def busy(self) -> int:
        """Cores held right now."""
        return int(self.capacity - self.free)
