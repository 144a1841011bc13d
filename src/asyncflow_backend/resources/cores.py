"""CPU cores of one server."""

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class CoreSet(Generic[T]):
    """`cores` identical cores; holders queue in FIFO order when all are busy.

    The queue is the server's ready queue: requests ready to run that wait for
    the event loop of a core.
    """

    def __init__(self, cores: int) -> None:
        self.capacity = cores
        self.free = cores
        self.waiting: deque[tuple[T, Callable[[T], None]]] = deque()

    def acquire(self, holder: T, granted: Callable[[T], None]) -> None:
        """Call `granted(holder)` now if a core is free, else when one is released to it."""
        if self.free:
            self.free -= 1
            granted(holder)
        else:
            self.waiting.append((holder, granted))

    def release(self) -> None:
        """Give the core to the longest waiting holder, or put it back."""
        if self.waiting:
            holder, granted = self.waiting.popleft()
            granted(holder)
        else:
            self.free += 1

    @property
    def busy(self) -> int:
        """Cores held right now."""
        return self.capacity - self.free
