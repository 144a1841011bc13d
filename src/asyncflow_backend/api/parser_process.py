"""Large bodies parsed and checked in a separate process, so that their CPU never stalls the API.

Reading a scenario costs CPU in proportion to its size: PyYAML about 1.9 ms per
KB (JSON about 0.31), then the model's validation, hundreds of milliseconds for
a large scenario. All of it holds the GIL: in a worker thread it would still
take the interpreter from the event loop, and every other request, `/health`
included, would wait. One spawned process per API process does that work for
large bodies, one at a time (so at most one core of it per API process), and
sends back the result, which costs a few percent of the work to receive.
"""

import asyncio
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar, TypeVarTuple

from asyncflow_backend.api.errors import ServiceUnavailable
from asyncflow_backend.schemas.loading import load_yaml

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

PARSER_PROCESSES = 1
"""Bodies parsed at once per API process: at most one core of parsing each."""

INLINE_YAML_CHARS = 4 * 1024
"""YAML texts up to this many characters are parsed in the calling thread: under ~8 ms of
work, less than the trip to the parser process and back."""


class _Parser:
    """The parser process, started on first use and again after it died."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # Spawned, not forked: the API process has threads and an event loop.
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(PARSER_PROCESSES, mp_context=context)
            return self._pool

    def broken(self, pool: ProcessPoolExecutor) -> ServiceUnavailable:
        self._discard(pool)
        return ServiceUnavailable("the body parser stopped; send the body again")

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)

    def stop(self) -> None:
        with self._lock:
            pool = self._pool
        if pool is not None:
            self._discard(pool)


_parser = _Parser()


async def run_elsewhere(function: Callable[[*Ts], T], *args: *Ts) -> T:
    """`function(*args)` run in the parser process: its result, or the exception it
    raised, sent back (both must pickle: a module-level function, plain data).

    Awaiting holds no thread: bodies waiting for the parser wait on the event loop.
    Raises `ServiceUnavailable` (503) if the parser process died (it is started again
    for the next call).
    """
    pool = _parser.pool()
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, function, *args)
    except BrokenProcessPool:
        raise _parser.broken(pool) from None


def load_yaml_elsewhere(text: str) -> Any:
    """`load_yaml`, run in the parser process unless `text` is short: the data, or the
    exception it raised. Blocks the calling thread (call it from a worker thread), not
    the interpreter; `ServiceUnavailable` (503) if the parser process died."""
    if len(text) <= INLINE_YAML_CHARS:
        return load_yaml(text)
    pool = _parser.pool()
    try:
        return pool.submit(load_yaml, text).result()
    except BrokenProcessPool:
        raise _parser.broken(pool) from None


def stop_parser() -> None:
    """Stop the parser process, if one was started (at the API's shutdown)."""
    _parser.stop()
