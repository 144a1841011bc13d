"""The named topologies ``run.py --topology NAME`` starts.

- ``cpu_io``: one event loop, a CPU burst (exponential, mean 4 ms) then I/O (``asyncio.sleep``,
  exponential, mean 10 ms): the single-server case of the first outside measurement.
- ``db_pool``: a 2 ms CPU burst then ``SELECT pg_sleep`` (exponential, mean 10 ms) through an
  asyncpg pool of 2 connections, which saturates (at 200 req/s it is ~100 % busy) before the
  core does.
- ``balanced``: two ``cpu_io`` services behind the harness's round-robin proxy.
- ``cached_call``: an API (2 ms CPU) calling a second service (1 ms CPU) that reads through a
  Redis cache (80 % hits over 1,000 keys) in front of an indexed Postgres lookup.
- ``cpu_io_workers``: ``cpu_io`` under gunicorn with 2 uvicorn workers (two event loops; give
  it two server cores, ``--server-cores 2``, for the scenario's ``cpu_cores: 2`` to hold).
"""

from __future__ import annotations

from benchmarks.real_system.spec import (
    Cache,
    Call,
    Cpu,
    Duration,
    Postgres,
    ServiceSpec,
    Sleep,
    TopologySpec,
)

_CPU_IO = (Cpu(Duration(0.004)), Sleep(Duration(0.010)))

TOPOLOGIES: dict[str, TopologySpec] = {
    "cpu_io": TopologySpec(
        name="cpu_io",
        description="one uvicorn event loop: CPU exp(4 ms) then asyncio.sleep exp(10 ms)",
        services=(ServiceSpec("api", _CPU_IO),),
        entry="api",
    ),
    "db_pool": TopologySpec(
        name="db_pool",
        description="CPU exp(2 ms) then pg_sleep exp(10 ms) through an asyncpg pool of 2",
        services=(
            ServiceSpec(
                "api",
                (Cpu(Duration(0.002)), Postgres("pg_sleep", Duration(0.010))),
                pool_size=2,
            ),
        ),
        entry="api",
    ),
    "balanced": TopologySpec(
        name="balanced",
        description="two cpu_io services behind a round-robin proxy",
        services=(ServiceSpec("api-1", _CPU_IO, seed=1), ServiceSpec("api-2", _CPU_IO, seed=2)),
        entry="api-1",
        balanced=("api-1", "api-2"),
    ),
    "cached_call": TopologySpec(
        name="cached_call",
        description=(
            "API (CPU exp(2 ms)) calling a service (CPU exp(1 ms)) with a Redis cache"
            " (80 % hits) in front of an indexed Postgres lookup (pool of 4)"
        ),
        services=(
            ServiceSpec("api", (Cpu(Duration(0.002)), Call("store"))),
            ServiceSpec(
                "store",
                (
                    Cpu(Duration(0.001)),
                    Cache(hit_ratio=0.8, key_space=1_000, miss=(Postgres("indexed"),)),
                ),
                pool_size=4,
            ),
        ),
        entry="api",
    ),
    "cpu_io_workers": TopologySpec(
        name="cpu_io_workers",
        description="cpu_io under gunicorn with 2 uvicorn workers",
        services=(ServiceSpec("api", _CPU_IO, server="gunicorn", workers=2),),
        entry="api",
    ),
}


def topology(name: str) -> TopologySpec:
    """The topology of this name; KeyError listing the known names otherwise."""
    try:
        return TOPOLOGIES[name]
    except KeyError:
        raise KeyError(f"unknown topology {name!r}; known: {', '.join(TOPOLOGIES)}") from None
