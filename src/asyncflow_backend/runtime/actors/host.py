"""What a server's collaborators see of it: its resources and its hooks.

The collaborators (`calls`, `cancellation`, `failures`...) are typed against this
protocol rather than the server class, so that the server can own them without their
modules importing it back.
"""

from collections.abc import Callable
from typing import Protocol

import simpy

from asyncflow_backend.config.constants import EndReason
from asyncflow_backend.metrics.collector import MetricsCollector
from asyncflow_backend.resources import ConnectionPool, CoreSet, RamPool
from asyncflow_backend.runtime.request import Fired, RequestState

Handler = Callable[[RequestState], None]
"""A hook that takes a request: `receive`, `advance`, `finish`, `take_core`."""
Callback = Callable[[Fired], None]
"""A hook SimPy calls with the event that fired."""
PoolGrant = Callable[[ConnectionPool[RequestState], RequestState], None]
"""A hook a pool calls when it grants a request a connection."""


class ServerHost(Protocol):
    """A server as its collaborators use it. The hooks are attributes bound when the
    server is built: a collaborator wraps one by keeping the callable it finds and
    putting its own in its place."""

    id: str
    env: simpy.Environment
    collector: MetricsCollector
    cores: CoreSet[RequestState]
    ram: RamPool[RequestState]
    pools: list[ConnectionPool[RequestState]]
    io_waiting: int
    """Requests in an I/O wait."""
    io_slot: int
    """The hop slot (`metrics.breakdown`) of the server's I/O waits."""
    pool_wait_slot: int
    """The hop slot of its waits for a pool connection."""

    receive: Handler
    advance: Handler
    take_core: Handler
    burn: Callable[[RequestState, float], None]
    finish: Handler
    fail: Callable[[RequestState, str, str], None]
    reject: Callable[[RequestState, EndReason], None]
    sleep: Callable[[RequestState, float], None]
    take_connection: PoolGrant
    wake_from_io: Callback
    wake_from_pooled_io: Callback

    def let_go(self, request: RequestState, *, holds_ram: bool = True) -> None:
        """`request` leaves the server without finishing, giving back its plan and RAM."""
