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

Waiter = tuple[T, Callable[[T], None], float]
"""(holder, grant callback, amount): a queued request, the token `cancel` takes.

A plain tuple because a third of all requests queue somewhere: an object with an
`__init__` per waiter cost the engine several percent.
"""


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
        """Waiters neither granted nor cancelled: the length of the queue as users see it."""
        self._cancelled: set[int] = set()
        """`id`s of cancelled waiters still in `waiting` (a waiter's id is unique while
        it is queued, and it is dropped from here when it leaves the queue)."""
        self._granting = False

    def request(
        self, holder: T, granted: Callable[[T], None], amount: float = 1
    ) -> Waiter[T] | None:
        """Call `granted(holder)` once `amount` units are set aside for it.

        Returns None if the grant was made at once, else the waiter to pass to
        `cancel` if the holder gives up before its turn.
        """
        if not self.queued and amount <= self.free:
            self.free -= amount
            granted(holder)
            return None
        waiter = (holder, granted, amount)
        self.waiting.append(waiter)
        self.queued += 1
        return waiter

    def release(self, amount: float = 1) -> None:
        """Give back `amount` units and grant the waiters that now fit, in order."""
        self.free += amount
        if self.queued and not self._granting:
            self._grant()

    def set_capacity(self, capacity: float) -> None:
        """Make it `capacity` units from now on.

        Units added are granted to the waiters at once. Units taken away stay
        with their holders until released: `free` goes below zero, and nobody
        is granted anything until enough are given back.
        """
        self.free += capacity - self.capacity
        self.capacity = capacity
        if self.queued and self.free > 0 and not self._granting:
            self._grant()

    def cancel(self, waiter: Waiter[T]) -> None:
        """Withdraw `waiter`: it will never be granted. Cancelling twice, or after the
        grant, does nothing. Costs O(queue length), paid only by holders that give up.
        """
        key = id(waiter)
        if key in self._cancelled or not any(w is waiter for w in self.waiting):
            return
        self._cancelled.add(key)
        self.queued -= 1
        # A cancelled head may have been blocking smaller requests behind it.
        if self.queued and not self._granting:
            self._grant()

    def withdraw(self, holder: T) -> bool:
        """Cancel the waiter of `holder`, if it is queued here; True if it was. Costs
        O(queue length), paid only when a holder gives up without its token at hand."""
        cancelled = self._cancelled
        for waiter in self.waiting:
            if waiter[0] is holder and id(waiter) not in cancelled:
                self.cancel(waiter)
                return True
        return False

    def drain(self) -> list[T]:
        """Take every waiter out at once, granting nothing; returns their holders in order.
        O(queue length), paid only when a whole queue is given up (a server that fails)."""
        cancelled = self._cancelled
        holders = [w[0] for w in self.waiting if id(w) not in cancelled]
        self.waiting.clear()
        cancelled.clear()
        self.queued = 0
        return holders

    def _grant(self) -> None:
        self._granting = True
        waiting = self.waiting
        cancelled = self._cancelled
        try:
            while waiting:
                head = waiting[0]
                if cancelled and id(head) in cancelled:
                    waiting.popleft()
                    cancelled.discard(id(head))
                    continue
                holder, granted, amount = head
                if amount > self.free:
                    break
                waiting.popleft()
                self.free -= amount
                self.queued -= 1
                granted(holder)
        finally:
            self._granting = False

    @property
    def in_use(self) -> float:
        """Units held right now."""
        return self.capacity - self.free
