"""From measurements at one low load to the scenario the engine needs.

Every number of the scenario comes from the low-load runs, none from the topology's spec:

- each service's endpoint repeats its parts as steps: a CPU burst becomes a
  ``cpu_bound_operation`` fitted to the burst's measured CPU seconds, a sleep an ``io_wait``, a
  Postgres query an ``io_db`` holding one of the pool's connections (``db_connection_pool``)
  for the measured query time, a Redis cache a ``cache`` step with the measured hit ratio, the
  lookup and write-back times as ``io_cache`` steps, a call a ``call`` step;
- the framework's own CPU, the *overhead*, is the process's CPU per request (from /proc) less
  the CPU of its timed bursts; it becomes an ``initial_parsing`` step, or, with ``loop_cost``,
  the server's ``event_loop`` (`loopcost.event_loop_costs`: a cost per loop wake-up and one
  per callback, from the wake-ups per request; the ``initial_parsing`` step is then the
  arrival's callback, of `SMALLEST_S`);
- the network is the idle round trip of ``/ping`` less the servers' CPU per ping, halved for
  each direction; a call's edges are the measured call time less the called service's own
  handler time and overhead, halved.

`Calibration.scenario(rate, horizon_s)` gives the scenario at any open Poisson load (the
engine's ``arrival_rate``), `Calibration.utilisation(rate)` the busiest resource's load.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmarks.real_system.fitting import SMALLEST_S, fit_duration
from benchmarks.real_system.loopcost import (
    WakeupCost,
    bursts_per_visit,
    event_loop_costs,
    ping_split,
)
from benchmarks.real_system.spec import (
    Cache,
    Call,
    Cpu,
    Part,
    Postgres,
    Sleep,
    TopologySpec,
)

CLIENT = "client"
GENERATOR = "load"
BALANCER = "proxy"
SAMPLE_PERIOD_S = 0.1


@dataclass(frozen=True)
class Measurements:
    """What the runs at the calibration load measured.

    ``parts``: one mapping per answered request, the ``parts`` of its answer (seconds, named
    ``service.index.kind``). ``cpu_s``: CPU seconds each server process (by service name;
    ``proxy`` for the proxy) used over those requests. ``ping_rtt_s``: the median round trip
    of ``/ping`` through the entry on an idle system; ``ping_cpu_s``: the servers' CPU seconds
    per ping; ``ping_wakeups``: their event-loop wake-ups per ping. ``server_cores``: how many
    cores the servers were pinned to. ``wakeups``: the event-loop wake-ups
    (`cpu.tree_wakeups`) of each server process over those requests.
    """

    topology: TopologySpec
    parts: Sequence[dict[str, float]]
    cpu_s: dict[str, float]
    ping_rtt_s: float
    ping_cpu_s: float
    server_cores: int
    wakeups: dict[str, float] = field(default_factory=dict)
    ping_wakeups: float = float("nan")


def visits(parts: Sequence[dict[str, float]], service: str) -> int:
    """How many of the requests ran at least one part of ``service``."""
    prefix = f"{service}."
    return sum(1 for row in parts if any(key.startswith(prefix) for key in row))


def samples(parts: Sequence[dict[str, float]], key: str) -> np.ndarray:
    """Every measured value of one part key, over the requests that have it."""
    return np.array([row[key] for row in parts if key in row], dtype=float)


def timed_cpu_per_visit(parts: Sequence[dict[str, float]], service: str) -> float:
    """Mean CPU seconds of the service's timed bursts per visit (requests without one count 0)."""
    prefix = f"{service}."
    totals = [
        sum(value for key, value in row.items() if key.startswith(prefix) and key.endswith(".cpu"))
        for row in parts
        if any(key.startswith(prefix) for key in row)
    ]
    return float(np.mean(totals)) if totals else 0.0


def one_way_latency(round_trip_s: float, server_cpu_s: float) -> float:
    """Half of a round trip once the servers' CPU is taken out, never below `SMALLEST_S`."""
    return max((round_trip_s - server_cpu_s) / 2.0, SMALLEST_S)


@dataclass(frozen=True)
class ServiceLoad:
    """What one service costs per request entering the system (for the utilisation)."""

    visits_per_request: float
    cpu_per_visit_s: float
    cores: int
    pool_size: int | None
    pool_hold_per_visit_s: float


@dataclass
class Calibration:
    """The calibrated scenario template, where each number came from, and the load model."""

    topology: str
    template: dict[str, Any]
    loads: dict[str, ServiceLoad]
    notes: list[str] = field(default_factory=list)

    def scenario(
        self, rate_per_s: float, horizon_s: float, seed: int | None = None
    ) -> dict[str, Any]:
        """The scenario under an open Poisson load of ``rate_per_s`` for ``horizon_s`` seconds."""
        scenario = copy.deepcopy(self.template)
        scenario["rqs_input"]["arrival_rate"]["points"][0]["rate_per_s"] = rate_per_s
        scenario["sim_settings"]["total_simulation_time"] = horizon_s
        if seed is not None:
            scenario["seed"] = seed
        return scenario

    def utilisation(self, rate_per_s: float) -> tuple[float, str]:
        """The highest utilisation at this rate, of the cores or a pool, and whose it is."""
        busiest, where = 0.0, "nothing"
        for name, load in self.loads.items():
            cpu = rate_per_s * load.visits_per_request * load.cpu_per_visit_s / load.cores
            if cpu > busiest:
                busiest, where = cpu, f"{name} cores"
            if load.pool_size:
                pool = rate_per_s * load.visits_per_request * load.pool_hold_per_visit_s
                if pool / load.pool_size > busiest:
                    busiest, where = pool / load.pool_size, f"{name} pool"
        return busiest, where

    def rate_at(self, utilisation: float) -> float:
        """The rate (req/s) at which the busiest resource reaches ``utilisation``."""
        at_one, _ = self.utilisation(1.0)
        if at_one <= 0:
            raise ValueError("the calibration measured no work: no utilisation to aim at")
        return utilisation / at_one


class _StepWriter:
    """Turns a service's parts into scenario steps, fitting each to its measured values."""

    def __init__(self, parts: Sequence[dict[str, float]], notes: list[str]) -> None:
        self.parts = parts
        self.notes = notes

    def fit(self, key: str, fallback: str | None = None) -> dict[str, Any]:
        values = samples(self.parts, key)
        if values.size == 0 and fallback is not None:
            values = samples(self.parts, fallback)
        if values.size == 0:
            self.notes.append(f"{key}: never measured; written as {SMALLEST_S} s")
            return {"mean": SMALLEST_S, "distribution": "deterministic"}
        fitted = fit_duration(values)
        self.notes.append(
            f"{key}: {fitted['distribution']} mean {fitted['mean'] * 1e3:.3f} ms"
            f" from {values.size} measurements"
        )
        return fitted

    def steps(self, name: str, parts: Sequence[Part]) -> list[dict[str, Any]]:
        steps: list[dict[str, Any]] = []
        for index, part in enumerate(parts):
            key = f"{name}.{index}"
            if isinstance(part, Cpu):
                steps.append(
                    {
                        "kind": "cpu_bound_operation",
                        "step_operation": {"cpu_time": self.fit(f"{key}.cpu")},
                    }
                )
            elif isinstance(part, Sleep):
                steps.append(
                    {
                        "kind": "io_wait",
                        "step_operation": {"io_waiting_time": self.fit(f"{key}.sleep")},
                    }
                )
            elif isinstance(part, Postgres):
                steps.append(
                    {
                        "kind": "io_db",
                        "step_operation": {"io_waiting_time": self.fit(f"{key}.pg_query")},
                    }
                )
            elif isinstance(part, Cache):
                steps.append(self._cache(key, part))
            elif isinstance(part, Call):
                steps.append({"kind": "call", "target": part.target})
        return steps

    def _cache(self, key: str, part: Cache) -> dict[str, Any]:
        hits = samples(self.parts, f"{key}.cache_hit")
        hit_ratio = float(hits.mean()) if hits.size else 0.0
        self.notes.append(f"{key}.cache_hit: ratio {hit_ratio:.3f} from {hits.size} lookups")
        get = f"{key}.cache_get"
        hit_rows = [row for row in self.parts if row.get(f"{key}.cache_hit") == 1.0]
        miss_rows = [row for row in self.parts if row.get(f"{key}.cache_hit") == 0.0]
        hit_get = _StepWriter(hit_rows or self.parts, self.notes).fit(get)
        miss_writer = _StepWriter(miss_rows or self.parts, self.notes)
        miss_get = miss_writer.fit(get)
        return {
            "kind": "cache",
            "hit_ratio": hit_ratio,
            "hit": [{"kind": "io_cache", "step_operation": {"io_waiting_time": hit_get}}],
            "miss": [
                {"kind": "io_cache", "step_operation": {"io_waiting_time": miss_get}},
                *miss_writer.steps(f"{key}.miss", part.miss),
                {
                    "kind": "io_cache",
                    "step_operation": {"io_waiting_time": miss_writer.fit(f"{key}.cache_set")},
                },
            ],
        }


def _edge(source: str, target: str, latency_s: float) -> dict[str, Any]:
    return {
        "id": f"{source}-{target}",
        "source": source,
        "target": target,
        "latency": {"mean": max(latency_s, SMALLEST_S), "distribution": "deterministic"},
        "dropout_rate": 0.0,
    }


def _callers(topology: TopologySpec) -> list[tuple[str, str, str]]:
    """(caller, callee, part key) of every call part, cache misses included."""
    found: list[tuple[str, str, str]] = []

    def walk(service: str, name: str, parts: Sequence[Part]) -> None:
        for index, part in enumerate(parts):
            if isinstance(part, Call):
                found.append((service, part.target, f"{name}.{index}"))
            elif isinstance(part, Cache):
                walk(service, f"{name}.{index}.miss", part.miss)

    for service in topology.services:
        walk(service.name, service.name, service.parts)
    return found


def _pool_hold(parts: Sequence[dict[str, float]], service: str) -> float:
    prefix = f"{service}."
    holds = [
        sum(v for k, v in row.items() if k.startswith(prefix) and k.endswith(".pg_query"))
        for row in parts
        if any(key.startswith(prefix) for key in row)
    ]
    return float(np.mean(holds)) if holds else 0.0


def _ping_split(measured: Measurements) -> WakeupCost | None:
    """The wake-up cost from the idle ``/ping`` and the entry service's requests at the
    calibration load; None behind a proxy (the ping's CPU is then two processes') or when
    `loopcost.ping_split` finds it undetermined."""
    topology = measured.topology
    if topology.balanced or math.isnan(measured.ping_wakeups):
        return None
    count = visits(measured.parts, topology.entry)
    if count == 0:
        return None
    overhead = measured.cpu_s[topology.entry] / count - timed_cpu_per_visit(
        measured.parts, topology.entry
    )
    wakeups = measured.wakeups.get(topology.entry, 0.0) / count
    return ping_split(overhead, wakeups, measured.ping_cpu_s, measured.ping_wakeups)


def calibrate(
    measured: Measurements,
    loop_cost: bool = False,
    fits: Mapping[str, WakeupCost] | None = None,
) -> Calibration:
    """The scenario template and load model of ``measured``; ValueError without requests.

    With ``loop_cost`` each server's overhead becomes its ``event_loop``, split between the
    cost per wake-up and per request by ``fits`` (per service, over the runs at two loads) where
    given, else by the idle ``/ping`` against the entry service (`loopcost.ping_split`; the
    cost of a wake-up is the framework's, so it holds for every service), else all per
    wake-up (`loopcost.event_loop_costs`).
    """
    topology = measured.topology
    rows = measured.parts
    if not rows:
        raise ValueError("no answered requests to calibrate from")
    notes: list[str] = []
    writer = _StepWriter(rows, notes)
    servers: list[dict[str, Any]] = []
    loads: dict[str, ServiceLoad] = {}
    overheads: dict[str, float] = {}
    by_ping = _ping_split(measured) if loop_cost else None
    for service in topology.services:
        count = visits(rows, service.name)
        if count == 0:
            raise ValueError(f"no request reached service {service.name!r}")
        cpu_per_visit = measured.cpu_s[service.name] / count
        timed = timed_cpu_per_visit(rows, service.name)
        overhead = cpu_per_visit - timed
        if overhead < SMALLEST_S:
            notes.append(
                f"{service.name}: CPU per request {cpu_per_visit * 1e3:.3f} ms is not above its"
                f" timed bursts ({timed * 1e3:.3f} ms): the /proc reading is too coarse for this"
                " run; overhead written as 0"
            )
            overhead = SMALLEST_S
        overheads[service.name] = overhead
        notes.append(
            f"{service.name}: overhead {overhead * 1e3:.3f} ms = CPU per request"
            f" {cpu_per_visit * 1e3:.3f} ms (/proc, {count} requests)"
            f" - timed bursts {timed * 1e3:.3f} ms"
        )
        cores = min(service.workers, measured.server_cores)
        if cores < service.workers:
            notes.append(
                f"{service.name}: {service.workers} event loops share {cores} core(s);"
                f" the scenario has cpu_cores: {cores}"
            )
        resources: dict[str, Any] = {"cpu_cores": cores}
        pool = service.pool_size * service.workers if service.uses("postgres") else None
        if pool:
            resources["db_connection_pool"] = pool
        steps = writer.steps(service.name, service.parts)
        # A coroutine that awaited I/O or a call needs its loop again to write the answer:
        # that resumption waits in the ready queue like any callback, so it is a CPU step,
        # and the overhead is shared by the arrival's callback and it.
        resumes = bool(steps) and steps[-1]["kind"] != "cpu_bound_operation"
        callbacks = 2 if resumes else 1
        parsing = SMALLEST_S if loop_cost else max(overhead / callbacks, SMALLEST_S)
        if resumes:
            steps.append(
                {
                    "kind": "cpu_bound_operation",
                    "step_operation": {
                        "cpu_time": {"mean": parsing, "distribution": "deterministic"}
                    },
                }
            )
            notes.append(
                f"{service.name}: the answer's callback after the last await is a CPU step"
                + ("" if loop_cost else f" carrying half the overhead ({parsing * 1e3:.3f} ms)")
            )
        server: dict[str, Any] = {
            "id": service.name,
            "server_resources": resources,
            "endpoints": [
                {
                    "endpoint_name": "/work",
                    "steps": [
                        {
                            "kind": "initial_parsing",
                            "step_operation": {
                                "cpu_time": {"mean": parsing, "distribution": "deterministic"}
                            },
                        },
                        *steps,
                    ],
                }
            ],
        }
        if loop_cost:
            bursts = bursts_per_visit(server["endpoints"][0]["steps"])
            wakeups = measured.wakeups.get(service.name, 0.0) / count
            # The arrival's callback (and the answer's) carry SMALLEST_S of CPU already.
            server["event_loop"], note = event_loop_costs(
                max(overhead - callbacks * SMALLEST_S, 0.0),
                wakeups,
                bursts,
                (fits or {}).get(service.name) or by_ping,
            )
            notes.append(f"{service.name}: {note}")
        servers.append(server)
        loads[service.name] = ServiceLoad(
            visits_per_request=count / len(rows),
            cpu_per_visit_s=cpu_per_visit,
            cores=cores,
            pool_size=pool,
            pool_hold_per_visit_s=_pool_hold(rows, service.name),
        )

    network = one_way_latency(measured.ping_rtt_s, measured.ping_cpu_s)
    notes.append(
        f"network: {network * 1e3:.3f} ms each way = (idle /ping round trip"
        f" {measured.ping_rtt_s * 1e3:.3f} ms - server CPU per ping"
        f" {measured.ping_cpu_s * 1e3:.3f} ms) / 2"
    )
    nodes: dict[str, Any] = {"client": {"id": CLIENT}, "servers": servers}
    edges = [_edge(GENERATOR, CLIENT, SMALLEST_S)]
    if topology.balanced:
        nodes["load_balancer"] = {
            "id": BALANCER,
            "algorithms": "round_robin",
            "server_covered": list(topology.balanced),
        }
        edges.append(_edge(CLIENT, BALANCER, network))
        for name in topology.balanced:
            edges.append(_edge(BALANCER, name, SMALLEST_S))
            edges.append(_edge(name, CLIENT, network))
    else:
        edges.append(_edge(CLIENT, topology.entry, network))
        edges.append(_edge(topology.entry, CLIENT, network))
    for caller, callee, key in _callers(topology):
        call = samples(rows, f"{key}.call")
        remote = samples(rows, f"{key}.remote_server")
        if call.size == 0:
            raise ValueError(f"the call {key} was never measured")
        hop = one_way_latency(float(call.mean() - remote.mean()), overheads[callee])
        notes.append(
            f"{caller} -> {callee}: {hop * 1e3:.3f} ms each way = (call {call.mean() * 1e3:.3f} ms"
            f" - {callee}'s handler {remote.mean() * 1e3:.3f} ms - its overhead"
            f" {overheads[callee] * 1e3:.3f} ms) / 2"
        )
        edges.append(_edge(caller, callee, hop))
        edges.append(_edge(callee, caller, hop))

    template: dict[str, Any] = {
        "name": f"real system: {topology.name}",
        "description": f"Calibrated from measurements at one low load. {topology.description}",
        "rqs_input": {
            "id": GENERATOR,
            "arrival_rate": {"shape": "steps", "points": [{"at_s": 0, "rate_per_s": 1.0}]},
        },
        "topology_graph": {"nodes": nodes, "edges": edges},
        "sim_settings": {
            "total_simulation_time": 60,
            "sample_period_s": SAMPLE_PERIOD_S,
            "enabled_sample_metrics": ["ready_queue_len"],
        },
    }
    return Calibration(topology.name, template, loads, notes)
