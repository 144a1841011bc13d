"""Cores, RAM and connection pools: first come, first served, cancellable, granted by a loop."""

import sys

from asyncflow_backend.resources import ConnectionPool, CoreSet, RamPool


class Grants:
    """Records the holders granted, in order."""

    def __init__(self) -> None:
        self.order: list[str] = []

    def __call__(self, holder: str) -> None:
        self.order.append(holder)


def test_free_cores_are_granted_at_once() -> None:
    cores: CoreSet[str] = CoreSet(2)
    granted = Grants()

    cores.request("a", granted)
    cores.request("b", granted)

    assert granted.order == ["a", "b"]
    assert (cores.busy, cores.free, cores.queued) == (2, 0, 0)


def test_busy_cores_queue_holders_in_fifo_order() -> None:
    cores: CoreSet[str] = CoreSet(1)
    granted = Grants()
    for holder in "abcd":
        cores.request(holder, granted)
    assert granted.order == ["a"]
    assert cores.queued == 3

    for _ in range(3):
        cores.release()

    assert granted.order == ["a", "b", "c", "d"]
    assert cores.busy == 1
    assert not cores.queued


def test_a_released_core_goes_back_when_nobody_waits() -> None:
    cores: CoreSet[str] = CoreSet(2)
    granted = Grants()
    cores.request("a", granted)

    cores.release()

    assert (cores.busy, cores.free) == (0, 2)
    cores.request("b", granted)
    assert granted.order == ["a", "b"]


def test_a_released_core_passes_straight_to_the_next_holder() -> None:
    cores: CoreSet[str] = CoreSet(2)
    granted = Grants()
    for holder in "abc":
        cores.request(holder, granted)

    cores.release()

    # The core changed hands without ever being free.
    assert granted.order == ["a", "b", "c"]
    assert (cores.busy, cores.free) == (2, 0)


def test_ram_that_fits_is_reserved_at_once() -> None:
    ram: RamPool[str] = RamPool(1024)
    granted = Grants()

    ram.request("a", granted, 300)
    ram.request("b", granted, 700)

    assert granted.order == ["a", "b"]
    assert ram.in_use == 1000
    assert ram.free == 24


def test_ram_blocks_at_the_head_of_the_line() -> None:
    """A small reservation that would fit still waits behind a large one that does not."""
    ram: RamPool[str] = RamPool(1000)
    granted = Grants()
    ram.request("first", granted, 600)
    ram.request("large", granted, 500)
    ram.request("small", granted, 100)

    assert granted.order == ["first"]
    assert ram.free == 400

    ram.release(600)

    assert granted.order == ["first", "large", "small"]
    assert ram.in_use == 600


def test_ram_release_serves_as_many_waiting_reservations_as_fit_in_order() -> None:
    ram: RamPool[str] = RamPool(1000)
    granted = Grants()
    ram.request("all", granted, 1000)
    for holder, amount in (("b", 400), ("c", 400), ("d", 400), ("e", 100)):
        ram.request(holder, granted, amount)

    ram.release(1000)

    # b and c fit (800 MB); d does not, and e waits behind d although 200 MB are free.
    assert granted.order == ["all", "b", "c"]
    assert ram.in_use == 800
    assert [holder for holder, _, _ in ram.waiting] == ["d", "e"]

    ram.release(400)

    assert granted.order == ["all", "b", "c", "d", "e"]
    assert ram.in_use == 900
    assert not ram.queued


def test_a_cancelled_waiter_is_never_granted_and_leaves_the_queue() -> None:
    cores: CoreSet[str] = CoreSet(1)
    granted = Grants()
    cores.request("a", granted)
    waiter = cores.request("b", granted)
    cores.request("c", granted)
    assert waiter is not None
    assert cores.queued == 2

    cores.cancel(waiter)
    cores.cancel(waiter)  # twice does nothing

    assert cores.queued == 1
    cores.release()
    cores.release()
    assert granted.order == ["a", "c"]
    assert (cores.busy, cores.queued) == (0, 0)


def test_cancelling_after_the_grant_does_nothing() -> None:
    pool: ConnectionPool[str] = ConnectionPool("s:db", 1)
    granted = Grants()
    pool.request("a", granted)
    waiter = pool.request("b", granted)
    assert waiter is not None
    pool.release()
    assert granted.order == ["a", "b"]

    pool.cancel(waiter)

    assert (pool.in_use, pool.queued) == (1, 0)


def test_cancelling_a_blocking_head_lets_the_requests_behind_it_in() -> None:
    ram: RamPool[str] = RamPool(1000)
    granted = Grants()
    ram.request("first", granted, 600)
    large = ram.request("large", granted, 500)
    ram.request("small", granted, 100)
    assert large is not None

    ram.cancel(large)

    assert granted.order == ["first", "small"]
    assert ram.in_use == 700


def test_a_grant_chain_of_any_length_loops_instead_of_recursing() -> None:
    """Each holder releases at once when granted (an endpoint that is a single RAM step):
    the release inside a grant must hand on without growing the stack.
    """
    ram: RamPool[int] = RamPool(256)
    depth: list[int] = []

    def release_at_once(holder: int) -> None:
        frame, level = sys._getframe(), 0
        while frame.f_back is not None:
            frame, level = frame.f_back, level + 1
        depth.append(level)
        ram.release(1)

    ram.request(-1, lambda _: None, 256)
    waiters = 5 * sys.getrecursionlimit()
    for holder in range(waiters):
        ram.request(holder, release_at_once, 1)
    ram.release(256)

    assert len(depth) == waiters
    assert max(depth) - min(depth) == 0
    assert (ram.in_use, ram.queued) == (0, 0)
