"""The one way anything in the engine waits for a share of a capacity.

Read after SimPy's `resources/base.py`: a waiting queue, a grant, a release and a
cancel for a waiter that gives up. Ours hands a grant to a callback instead of
triggering an event, so a holder that finds room starts in the same step without
a scheduled grant event (half the events per request, the engine's main saving).
"""

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Waiter(Generic[T]):
    """A holder queued for `amount` of a resource; `cancelled` once it gave up."""

    __slots__ = ("amount", "cancelled", "granted", "holder")

    def __init__(self, holder: T, amount: float, granted: Callable[[T], None]) -> None:
        self.holder = holder
        self.amount = amount
        self.granted = granted
        self.cancelled = False


class Resource(Generic[T]):
    """`capacity` units handed out first come, first served, with head-of-line blocking.

    A request that does not fit waits, and so does everyone behind it: letting
    small requests overtake would starve large ones. Grants are made by a loop,
    never by recursion: a holder whose grant callback releases at once (an
    endpoint with nothing but a RAM step, say) adds its units back and returns,
    and the loop already running hands them on. So a chain of any length uses
    constant stack.
    """

    def __init__(self, capacity: float) -> None:
        self.capacity = capacity
        self.free = capacity
        self.waiting: deque[Waiter[T]] = deque()
        self.queued = 0
        """Waiters not yet granted nor cancelled: the length of the queue as users see it."""
        self._granting = False

    def request(
        self, holder: T, granted: Callable[[T], None], amount: float = 1
    ) -> Waiter[T] | None:
        """Call `granted(holder)` once `amount` units are set aside for it.

        Returns None if the grant was made at once, else the `Waiter` to pass to
        `cancel` if the holder gives up before its turn.
        """
        if not self.queued and amount <= self.free:
            self.free -= amount
            granted(holder)
            return None
        waiter = Waiter(holder, amount, granted)
        self.waiting.append(waiter)
        self.queued += 1
        return waiter

    def release(self, amount: float = 1) -> None:
        """Give back `amount` units and grant the waiters that now fit, in order."""
        self.free += amount
        if self.queued and not self._granting:
            self._grant()

    def cancel(self, waiter: Waiter[T]) -> None:
        """Withdraw `waiter`: it will never be granted. Cancelling twice, or after the
        grant, does nothing.
        """
        if waiter.cancelled or waiter.granted is _GRANTED:
            return
        waiter.cancelled = True
        self.queued -= 1
        # A cancelled head may have been blocking smaller requests behind it.
        if self.queued and not self._granting:
            self._grant()

    def _grant(self) -> None:
        self._granting = True
        waiting = self.waiting
        try:
            while waiting:
                head = waiting[0]
                if head.cancelled:
                    waiting.popleft()
                    continue
                if head.amount > self.free:
                    break
                waiting.popleft()
                self.free -= head.amount
                self.queued -= 1
                granted = head.granted
                head.granted = _GRANTED
                granted(head.holder)
        finally:
            self._granting = False

    @property
    def in_use(self) -> float:
        """Units held right now."""
        return self.capacity - self.free


def _GRANTED(holder: object) -> None:  # noqa: N802 - a sentinel, named like a constant
    """Marks a waiter whose grant was made, so that a late `cancel` is ignored."""
