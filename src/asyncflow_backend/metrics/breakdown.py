"""Where the response time goes: request-seconds per hop and category.

The run keeps one list of floats, `totals`, with a slot per (place, category)
of the scenario: an edge's network time, a server's CPU time, I/O time, pool
wait, call wait. Every request holds a reference to the list its spans go to
and the actors add each span to it as it starts or ends (one list add, no
per-request object): requests from the client and the sub-request of a call
to a single target add to `totals` (the database's CPU then shows as the
database's, not as a wait of its caller); the sub-requests of a parallel call
overlap, so they add to `scratch`, and their caller books the join's wait as
`calls` instead. Each instant of a request's life is thus booked once.

A server's time waiting for a core (or for RAM before its first step) is not
added on the hot path: it is the rest of its visits (read off the visit times
every server keeps per endpoint) once the other categories are taken off.
Hidden slots serve that: `nested`, the single-target calls whose hops are
booked where they happen, and, in `scratch`, `visit`, the visits of parallel
branches.

`totals` counts every request, completed or not (dropped, failed, still in
flight at the horizon). The breakdown in the results splits the mean latency
of the completed requests in proportion to these request-seconds, so its parts
sum to the mean latency exactly; by Little's law each part is the share of the
requests in the system found there. With no losses and a long run, each part
tends to the mean time a completed request spends there.
"""

from enum import StrEnum


class HopKind(StrEnum):
    """What a part of the breakdown belongs to."""

    EDGE = "edge"
    SERVER = "server"


class HopCategory(StrEnum):
    """What the time of a part was spent on."""

    NETWORK = "network"
    """On an edge: its latency draw plus any spike."""
    WAIT = "wait"
    """On a server, queued for a core, or for RAM before the first step."""
    CPU = "cpu"
    """On a server, running a CPU step."""
    IO = "io"
    """On a server, in an I/O wait (with or without a pool connection)."""
    POOL_WAIT = "pool_wait"
    """On a server, queued for a pool connection."""
    CALLS = "calls"
    """On a server, waiting for the answers of a parallel call (fork-join or first k)."""
    VISIT = "visit"
    """Hidden, in `scratch` only: a server's visits by parallel call branches."""
    NESTED = "nested"
    """Hidden: a server's single-target calls, whose hops are booked where they happen."""


HIDDEN = frozenset({HopCategory.VISIT, HopCategory.NESTED})
SERVER_PARTS = (
    HopCategory.WAIT,
    HopCategory.CPU,
    HopCategory.IO,
    HopCategory.POOL_WAIT,
    HopCategory.CALLS,
)
"""The parts of a server, in the order a request meets them."""


class HopTotals:
    """The slots of a run's hop totals, and the totals: request-seconds per slot.

    `slot` is called while the model is built; `freeze` then makes the lists.
    """

    def __init__(self) -> None:
        self.slots: dict[tuple[HopKind, str, HopCategory], int] = {}
        self.frozen = False
        self.totals: list[float] = []
        self.scratch: list[float] = []
        """Where the sub-requests of parallel calls add their spans: the load they put on
        the servers they visit, read for utilisation, not for the breakdown."""

    def slot(self, kind: HopKind, place: str, category: HopCategory) -> int:
        """The index of (`place`, `category`) in `totals`, made on first asking.

        Raises `RuntimeError` once the slots are frozen.
        """
        key = (kind, place, category)
        index = self.slots.get(key)
        if index is not None:
            return index
        if self.frozen:
            raise RuntimeError("the slots are frozen; they are made while the model is built")
        self.slots[key] = len(self.slots)
        return len(self.slots) - 1

    def freeze(self) -> None:
        """Fix the number of slots: every slot has been made. `totals` and `scratch` stay
        the same list objects from the start (generators take them while being built)
        and are only ever added to in place, since requests hold references to them."""
        self.frozen = True
        self.totals.extend([0.0] * len(self.slots))
        self.scratch.extend([0.0] * len(self.slots))

    def seconds(self) -> dict[tuple[HopKind, str, HopCategory], float]:
        """Request-seconds by slot (`totals`)."""
        return {key: self.totals[index] for key, index in self.slots.items()}
