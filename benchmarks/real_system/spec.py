"""The small language the harness's services are written in: parts, services, topologies.

A service is one FastAPI endpoint, ``GET /work``, whose handler runs a list of parts in order:

- ``cpu``: a busy loop that burns a drawn number of CPU seconds (thread CPU time, so a
  preemption by another process does not shorten the work);
- ``sleep``: ``await asyncio.sleep`` of a drawn number of seconds (I/O without a core);
- ``postgres``: one query through the service's asyncpg pool: ``SELECT pg_sleep($1)`` with a
  drawn duration, or an indexed primary-key lookup on a table the harness creates;
- ``cache``: a Redis GET over a key space, hitting with a given probability; a miss runs its
  ``miss`` parts (a Postgres query, say) and writes the value back with SET;
- ``call``: an httpx GET of another service's ``/work``.

Every spec is a frozen dataclass that turns into JSON and back, so that it can be handed to a
server process in an environment variable. Durations are in seconds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

DistributionName = Literal["deterministic", "exponential", "uniform"]
ServerKind = Literal["uvicorn", "gunicorn"]
PostgresMode = Literal["pg_sleep", "indexed"]


@dataclass(frozen=True)
class Duration:
    """A random duration in seconds: ``mean`` > 0 and a distribution.

    ``uniform`` draws on [0, 2 x mean]; ``exponential`` has rate 1 / mean.
    """

    mean: float
    distribution: DistributionName = "exponential"

    def __post_init__(self) -> None:
        if not self.mean > 0:
            raise ValueError(f"a duration's mean must be > 0 seconds, not {self.mean!r}")

    def draw(self, rng: np.random.Generator) -> float:
        """One draw, in seconds (never negative)."""
        if self.distribution == "deterministic":
            return self.mean
        if self.distribution == "exponential":
            return float(rng.exponential(self.mean))
        return float(rng.uniform(0.0, 2.0 * self.mean))


@dataclass(frozen=True)
class Cpu:
    """A CPU burst: a busy loop of ``duration`` CPU seconds."""

    duration: Duration
    kind: Literal["cpu"] = "cpu"


@dataclass(frozen=True)
class Sleep:
    """I/O that holds no core: ``await asyncio.sleep(duration)``."""

    duration: Duration
    kind: Literal["sleep"] = "sleep"


@dataclass(frozen=True)
class Postgres:
    """One query through the service's pool.

    ``pg_sleep`` runs ``SELECT pg_sleep($1)`` with a draw of ``duration`` (required);
    ``indexed`` looks one row up by primary key in a table of ``table_rows`` rows.
    """

    mode: PostgresMode = "pg_sleep"
    duration: Duration | None = None
    table_rows: int = 10_000
    kind: Literal["postgres"] = "postgres"

    def __post_init__(self) -> None:
        if self.mode == "pg_sleep" and self.duration is None:
            raise ValueError("a pg_sleep query needs a duration")


@dataclass(frozen=True)
class Cache:
    """A Redis lookup that hits with probability ``hit_ratio`` over ``key_space`` hot keys.

    A miss looks up a key that was never written (so the lookup really misses), runs the
    ``miss`` parts, then writes the value back with a short expiry.
    """

    hit_ratio: float
    key_space: int = 1_000
    miss: tuple[Part, ...] = ()
    kind: Literal["cache"] = "cache"

    def __post_init__(self) -> None:
        if not 0.0 <= self.hit_ratio <= 1.0:
            raise ValueError(f"hit_ratio must be within [0, 1], not {self.hit_ratio!r}")


@dataclass(frozen=True)
class Call:
    """An HTTP call (httpx) to the ``/work`` endpoint of the service named ``target``."""

    target: str
    kind: Literal["call"] = "call"


Part = Cpu | Sleep | Postgres | Cache | Call


@dataclass(frozen=True)
class ServiceSpec:
    """One real service: its parts, how it is served, its pool size and its seed.

    ``workers`` > 1 needs ``server: gunicorn`` (N uvicorn workers, N event loops). ``pool_size``
    is the number of asyncpg connections of each worker; ``seed`` seeds the draws of the parts
    (each gunicorn worker adds its pid, so workers draw different streams).
    """

    name: str
    parts: tuple[Part, ...]
    server: ServerKind = "uvicorn"
    workers: int = 1
    pool_size: int = 4
    seed: int = 1

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("a service needs at least one worker")
        if self.workers > 1 and self.server != "gunicorn":
            raise ValueError("several workers need server='gunicorn'")

    def uses(self, kind: str) -> bool:
        """Whether any part (a cache's miss parts included) is of this kind."""
        return any(part_kind == kind for part_kind in _kinds(self.parts))


@dataclass(frozen=True)
class TopologySpec:
    """Services, the one the load enters, and whether a round-robin proxy fronts ``balanced``.

    ``balanced`` lists the services the proxy spreads the load over (empty: the load goes
    straight to ``entry``). ``description`` is printed on every run.
    """

    name: str
    description: str
    services: tuple[ServiceSpec, ...]
    entry: str
    balanced: tuple[str, ...] = field(default=())

    def service(self, name: str) -> ServiceSpec:
        """The service of this name; KeyError names it when it does not exist."""
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(f"topology {self.name!r} has no service {name!r}")

    def uses(self, kind: str) -> bool:
        """Whether any service has a part of this kind."""
        return any(service.uses(kind) for service in self.services)


def _kinds(parts: tuple[Part, ...]) -> list[str]:
    kinds: list[str] = []
    for part in parts:
        kinds.append(part.kind)
        if isinstance(part, Cache):
            kinds.extend(_kinds(part.miss))
    return kinds


def service_to_json(service: ServiceSpec) -> str:
    """The service as a JSON text (every part carries its ``kind``)."""
    return json.dumps(asdict(service))


def service_from_json(text: str) -> ServiceSpec:
    """The inverse of `service_to_json`; ValueError on an unknown part kind."""
    raw = json.loads(text)
    return ServiceSpec(
        name=raw["name"],
        parts=tuple(_part(item) for item in raw["parts"]),
        server=raw["server"],
        workers=raw["workers"],
        pool_size=raw["pool_size"],
        seed=raw["seed"],
    )


def _duration(raw: dict[str, Any] | None) -> Duration | None:
    return None if raw is None else Duration(raw["mean"], raw["distribution"])


def _part(raw: dict[str, Any]) -> Part:
    kind = raw["kind"]
    if kind == "cpu":
        return Cpu(Duration(**raw["duration"]))
    if kind == "sleep":
        return Sleep(Duration(**raw["duration"]))
    if kind == "postgres":
        return Postgres(raw["mode"], _duration(raw["duration"]), raw["table_rows"])
    if kind == "cache":
        return Cache(raw["hit_ratio"], raw["key_space"], tuple(_part(p) for p in raw["miss"]))
    if kind == "call":
        return Call(raw["target"])
    raise ValueError(f"unknown part kind {kind!r}")
