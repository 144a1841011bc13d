"""The chart cache: bounded in bytes, one drawing per chart, nothing drawn for a gone client."""

import asyncio

import pytest
from starlette.requests import ClientDisconnect

from asyncflow_backend.api.chart_cache import ChartCache


async def _present() -> bool:
    return False


async def _gone() -> bool:
    return True


async def test_a_cached_chart_is_not_drawn_again() -> None:
    cache = ChartCache(1_000)
    drawn: list[int] = []

    def render() -> bytes:
        drawn.append(1)
        return b"png"

    first = await cache.get_or_render(("r", "ram", "png"), render, _present)
    again = await cache.get_or_render(("r", "ram", "png"), render, _present)
    other = await cache.get_or_render(("r", "ram", "svg"), render, _present)

    assert first == again == other == b"png"
    assert len(drawn) == 2


async def test_concurrent_requests_for_one_chart_draw_it_once() -> None:
    cache = ChartCache(1_000)
    drawn: list[int] = []

    def render() -> bytes:
        drawn.append(1)
        return b"svg"

    images = await asyncio.gather(
        *(cache.get_or_render(("r", "dashboard", "svg"), render, _present) for _ in range(5))
    )

    assert images == [b"svg"] * 5
    assert len(drawn) == 1


async def test_nothing_is_drawn_for_a_client_that_went_away() -> None:
    cache = ChartCache(1_000)

    def render() -> bytes:
        raise AssertionError("drawn for nobody")

    with pytest.raises(ClientDisconnect):
        await cache.get_or_render(("r", "ram", "png"), render, _gone)
    assert cache.get(("r", "ram", "png")) is None


def test_the_cache_keeps_at_most_its_bytes_least_recently_used_out_first() -> None:
    cache = ChartCache(10)
    cache.put(("a", "ram", "png"), b"1234")
    cache.put(("b", "ram", "png"), b"1234")
    assert cache.get(("a", "ram", "png")) == b"1234"  # now the most recently used
    cache.put(("c", "ram", "png"), b"1234")
    cache.put(("d", "ram", "png"), b"x" * 11)  # larger than the whole cache: not kept

    assert cache.get(("b", "ram", "png")) is None
    assert cache.get(("a", "ram", "png")) == cache.get(("c", "ram", "png")) == b"1234"
    assert cache.get(("d", "ram", "png")) is None
    assert ChartCache(0).get(("a", "ram", "png")) is None
