"""Rendered charts kept in memory, and rendering only for clients still waiting.

A succeeded run's charts never change, and drawing one costs tens of
milliseconds to seconds of CPU. Charts are kept per (run, chart, format) in
a least-recently-used cache bounded in bytes (`chart_cache_mb`). Renders
take turns (`RENDER_CONCURRENCY` at a time: matplotlib holds the interpreter
lock, so more threads would not draw faster); requests for a chart being
drawn wait for that drawing and read the cache, so several requests for one
chart draw it once. A request whose client went away while it waited
draws nothing.
"""

import asyncio
import threading
from collections.abc import Awaitable, Callable

import anyio
from cachetools import LRUCache
from starlette.requests import ClientDisconnect

RENDER_CONCURRENCY = 2

ChartKey = tuple[str, str, str]
"""(run id, chart name, image format)."""


class ChartCache:
    """Images by `ChartKey`, at most `max_bytes` in all; 0 keeps nothing."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._images: LRUCache[ChartKey, bytes] = LRUCache(maxsize=max(1, max_bytes), getsizeof=len)
        self._lock = threading.Lock()
        self._turns: anyio.CapacityLimiter | None = None  # made in the event loop, on first use
        self._drawing: dict[ChartKey, asyncio.Lock] = {}

    def get(self, key: ChartKey) -> bytes | None:
        """The cached image, or None."""
        with self._lock:
            return self._images.get(key)

    def put(self, key: ChartKey, image: bytes) -> None:
        """Keep `image`, evicting the least recently used ones; too large an image is not kept."""
        if len(image) > self.max_bytes:
            return
        with self._lock:
            self._images[key] = image

    async def get_or_render(
        self,
        key: ChartKey,
        render: Callable[[], bytes],
        client_gone: Callable[[], Awaitable[bool]],
    ) -> bytes:
        """The image of `key`, drawn by `render` in a worker thread if it is not cached.

        Raises `ClientDisconnect` instead of drawing if `client_gone()` says
        the client went away while the request waited for its turn.
        """
        image = self.get(key)
        if image is not None:
            return image
        # One drawing per chart at a time: the others wait for it and read the cache.
        drawing = self._drawing.setdefault(key, asyncio.Lock())
        try:
            async with drawing:
                image = self.get(key)
                if image is not None:
                    return image
                if self._turns is None:
                    self._turns = anyio.CapacityLimiter(RENDER_CONCURRENCY)
                async with self._turns:
                    if await client_gone():
                        raise ClientDisconnect()
                    image = await anyio.to_thread.run_sync(render)
                self.put(key, image)
                return image
        finally:
            if not drawing.locked() and self._drawing.get(key) is drawing:
                del self._drawing[key]
