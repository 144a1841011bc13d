"""RAM of one server."""

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class RamPool(Generic[T]):
    """`capacity` megabytes handed out first come, first served.

    A reservation that does not fit waits, and so does everyone behind it:
    letting small requests overtake would starve large ones.
    """

    def __init__(self, capacity: float) -> None:
        self.capacity = capacity
        self.free = capacity
        self.waiting: deque[tuple[float, T, Callable[[T], None]]] = deque()

    def reserve(self, amount: float, holder: T, granted: Callable[[T], None]) -> None:
        """Call `granted(holder)` once `amount` MB are set aside for it."""
        if not self.waiting and amount <= self.free:
            self.free -= amount
            granted(holder)
        else:
            self.waiting.append((amount, holder, granted))

    def release(self, amount: float) -> None:
        """Return `amount` MB and serve the waiting reservations that now fit, in order."""
        self.free += amount
        waiting = self.waiting
        while waiting and waiting[0][0] <= self.free:
            needed, holder, granted = waiting.popleft()
            self.free -= needed
            granted(holder)

    @property
    def in_use(self) -> float:
        """Megabytes reserved right now."""
        return self.capacity - self.free
