"""CPU cores and RAM are handed out first come, first served."""

from asyncflow_backend.resources import CoreSet, RamPool


class Grants:
    """Records the holders granted, in order."""

    def __init__(self) -> None:
        self.order: list[str] = []

    def __call__(self, holder: str) -> None:
        self.order.append(holder)


def test_free_cores_are_granted_at_once() -> None:
    cores: CoreSet[str] = CoreSet(2)
    granted = Grants()

    cores.acquire("a", granted)
    cores.acquire("b", granted)

    assert granted.order == ["a", "b"]
    assert (cores.busy, cores.free, len(cores.waiting)) == (2, 0, 0)


def test_busy_cores_queue_holders_in_fifo_order() -> None:
    cores: CoreSet[str] = CoreSet(1)
    granted = Grants()
    for holder in "abcd":
        cores.acquire(holder, granted)
    assert granted.order == ["a"]
    assert len(cores.waiting) == 3

    for _ in range(3):
        cores.release()

    assert granted.order == ["a", "b", "c", "d"]
    assert cores.busy == 1
    assert not cores.waiting


def test_a_released_core_goes_back_when_nobody_waits() -> None:
    cores: CoreSet[str] = CoreSet(2)
    granted = Grants()
    cores.acquire("a", granted)

    cores.release()

    assert (cores.busy, cores.free) == (0, 2)
    cores.acquire("b", granted)
    assert granted.order == ["a", "b"]


def test_a_released_core_passes_straight_to_the_next_holder() -> None:
    cores: CoreSet[str] = CoreSet(2)
    granted = Grants()
    for holder in "abc":
        cores.acquire(holder, granted)

    cores.release()

    # The core changed hands without ever being free.
    assert granted.order == ["a", "b", "c"]
    assert (cores.busy, cores.free) == (2, 0)


def test_ram_that_fits_is_reserved_at_once() -> None:
    ram: RamPool[str] = RamPool(1024)
    granted = Grants()

    ram.reserve(300, "a", granted)
    ram.reserve(700, "b", granted)

    assert granted.order == ["a", "b"]
    assert ram.in_use == 1000
    assert ram.free == 24


def test_ram_blocks_at_the_head_of_the_line() -> None:
    """A small reservation that would fit still waits behind a large one that does not."""
    ram: RamPool[str] = RamPool(1000)
    granted = Grants()
    ram.reserve(600, "first", granted)
    ram.reserve(500, "large", granted)
    ram.reserve(100, "small", granted)

    assert granted.order == ["first"]
    assert ram.free == 400

    ram.release(600)

    assert granted.order == ["first", "large", "small"]
    assert ram.in_use == 600


def test_ram_release_serves_as_many_waiting_reservations_as_fit_in_order() -> None:
    ram: RamPool[str] = RamPool(1000)
    granted = Grants()
    ram.reserve(1000, "all", granted)
    for holder, amount in (("b", 400), ("c", 400), ("d", 400), ("e", 100)):
        ram.reserve(amount, holder, granted)

    ram.release(1000)

    # b and c fit (800 MB); d does not, and e waits behind d although 200 MB are free.
    assert granted.order == ["all", "b", "c"]
    assert ram.in_use == 800
    assert [holder for _, holder, _ in ram.waiting] == ["d", "e"]

    ram.release(400)

    assert granted.order == ["all", "b", "c", "d", "e"]
    assert ram.in_use == 900
    assert not ram.waiting
