"""The FastAPI application a real service runs: ``GET /work`` runs the spec's parts in order.

Started by `services` as ``uvicorn benchmarks.real_system.app:create_app --factory`` (or under
gunicorn's uvicorn workers), configured through the environment:

- ``REAL_SYSTEM_SERVICE``: the `spec.ServiceSpec` as JSON;
- ``REAL_SYSTEM_POSTGRES_DSN``: the harness's own database (needed by ``postgres`` parts);
- ``REAL_SYSTEM_REDIS_URL`` and ``REAL_SYSTEM_REDIS_PREFIX``: its Redis db and key prefix;
- ``REAL_SYSTEM_PEERS``: JSON mapping of service name to base URL, for ``call`` parts.

``/work`` answers ``{"server_s": S, "parts": {NAME: SECONDS, ...}}``: the handler's wall time
and each part's, named ``service.index.kind`` (a sleep until its timer fired and the wait for
the coroutine to resume apart, a pool's wait for a connection and the query apart, a cache's
lookup, hit flag, miss parts and write back apart, a call's nested parts under the called
service's names). The calibration reads them. ``/ping`` answers at once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import FastAPI

from benchmarks.real_system.spec import (
    Cache,
    Call,
    Cpu,
    Part,
    Postgres,
    ServiceSpec,
    Sleep,
    service_from_json,
)

CACHE_EXPIRY_S = 60


@dataclass
class _Clients:
    """What a service's parts talk to, opened at start-up only when a part needs it."""

    pool: Any = None
    redis: Any = None
    http: Any = None
    peers: dict[str, str] = field(default_factory=dict)
    prefix: str = "realsys"


def burn_cpu(seconds: float) -> float:
    """Busy-loop until this thread has used ``seconds`` of CPU; returns the CPU seconds used.

    Thread CPU time, not wall time, so that a preemption by another process on the core makes
    the burst last longer instead of doing less work.
    """
    start = time.thread_time()
    end = start + seconds
    now = start
    while now < end:
        now = time.thread_time()
    return now - start


async def timer(seconds: float) -> float:
    """``asyncio.sleep(seconds)`` that returns when (``perf_counter``) its timer fired.

    The timer's callback runs in the loop's timer phase; the coroutine resumes only once the
    loop reaches it in a later pass over the ready callbacks. The firing time is the I/O's end
    as the loop saw it, without the wait in the ready queue that the engine models itself.
    """
    loop = asyncio.get_running_loop()
    fired: asyncio.Future[float] = loop.create_future()

    def fire() -> None:
        if not fired.done():
            fired.set_result(time.perf_counter())

    handle = loop.call_later(seconds, fire)
    try:
        return await fired
    finally:
        handle.cancel()


class _Worker:
    """Runs the parts of one service with its own seeded stream of draws."""

    def __init__(self, spec: ServiceSpec, clients: _Clients, stream: int) -> None:
        self.spec = spec
        self.clients = clients
        self.rng = np.random.default_rng([spec.seed, stream])
        self.cold_keys = itertools.count()

    async def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        parts: dict[str, float] = {}
        for index, part in enumerate(self.spec.parts):
            await self._part(f"{self.spec.name}.{index}", part, parts)
        return {"server_s": time.perf_counter() - started, "parts": parts}

    async def _part(self, name: str, part: Part, parts: dict[str, float]) -> None:
        started = time.perf_counter()
        if isinstance(part, Cpu):
            parts[f"{name}.cpu"] = burn_cpu(part.duration.draw(self.rng))
        elif isinstance(part, Sleep):
            fired = await timer(part.duration.draw(self.rng))
            parts[f"{name}.sleep"] = fired - started
            parts[f"{name}.sleep_resume"] = time.perf_counter() - fired
        elif isinstance(part, Postgres):
            await self._query(name, part, parts)
        elif isinstance(part, Cache):
            await self._cache(name, part, parts)
        elif isinstance(part, Call):
            response = await self.clients.http.get(f"{self.clients.peers[part.target]}/work")
            response.raise_for_status()
            parts[f"{name}.call"] = time.perf_counter() - started
            answer = response.json()
            parts[f"{name}.remote_server"] = answer["server_s"]
            parts.update(answer["parts"])

    async def _query(self, name: str, part: Postgres, parts: dict[str, float]) -> None:
        started = time.perf_counter()
        async with self.clients.pool.acquire() as connection:
            acquired = time.perf_counter()
            if part.mode == "pg_sleep":
                assert part.duration is not None  # checked by Postgres.__post_init__
                await connection.execute("SELECT pg_sleep($1)", part.duration.draw(self.rng))
            else:
                row_id = int(self.rng.integers(1, part.table_rows + 1))
                await connection.fetchval("SELECT payload FROM items WHERE id = $1", row_id)
            done = time.perf_counter()
        parts[f"{name}.pg_wait"] = acquired - started
        parts[f"{name}.pg_query"] = done - acquired

    async def _cache(self, name: str, part: Cache, parts: dict[str, float]) -> None:
        prefix = self.clients.prefix
        hit = bool(self.rng.random() < part.hit_ratio)
        if hit:
            key = f"{prefix}:hot:{int(self.rng.integers(part.key_space))}"
        else:
            key = f"{prefix}:cold:{os.getpid()}:{next(self.cold_keys)}"
        started = time.perf_counter()
        value = await self.clients.redis.get(key)
        parts[f"{name}.cache_get"] = time.perf_counter() - started
        parts[f"{name}.cache_hit"] = float(value is not None)
        if value is None:
            for index, miss in enumerate(part.miss):
                await self._part(f"{name}.miss.{index}", miss, parts)
            started = time.perf_counter()
            await self.clients.redis.set(key, b"v", ex=CACHE_EXPIRY_S)
            parts[f"{name}.cache_set"] = time.perf_counter() - started


def create_app() -> FastAPI:
    """The service of ``REAL_SYSTEM_SERVICE``; KeyError if that variable is missing."""
    spec = service_from_json(os.environ["REAL_SYSTEM_SERVICE"])
    clients = _Clients(
        peers=json.loads(os.environ.get("REAL_SYSTEM_PEERS", "{}")),
        prefix=os.environ.get("REAL_SYSTEM_REDIS_PREFIX", "realsys"),
    )
    # A gunicorn worker draws its own stream; a lone uvicorn process always stream 0.
    stream = os.getpid() if spec.workers > 1 else 0
    worker = _Worker(spec, clients, stream)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if spec.uses("postgres"):
            import asyncpg

            clients.pool = await asyncpg.create_pool(
                os.environ["REAL_SYSTEM_POSTGRES_DSN"],
                min_size=spec.pool_size,
                max_size=spec.pool_size,
            )
        if spec.uses("cache"):
            import redis.asyncio

            clients.redis = redis.asyncio.Redis.from_url(os.environ["REAL_SYSTEM_REDIS_URL"])
        if spec.uses("call"):
            import httpx

            limits = httpx.Limits(max_connections=None, max_keepalive_connections=256)
            clients.http = httpx.AsyncClient(limits=limits, timeout=30.0)
        try:
            yield
        finally:
            if clients.http is not None:
                await clients.http.aclose()
            if clients.redis is not None:
                await clients.redis.aclose()
            if clients.pool is not None:
                await clients.pool.close()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/work")
    async def work() -> dict[str, Any]:
        return await worker.run()

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    return app
