"""One measured run against a deployment: the load, the CPU it cost, and the idle round trip.

`measure_run` reads every server process's CPU time and wake-ups (`cpu.tree_cpu_s`,
`cpu.tree_wakeups`), starts the load generator (`load`, a child pinned to the load cores),
waits for it, reads them again and returns the per-request records with the CPU and wake-ups
of each process. `idle_round_trip` sends
``/ping`` at a trickle with the same client, for the network latency.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from benchmarks.real_system.cpu import tree_cpu_s, tree_wakeups
from benchmarks.real_system.load import LatenessPolicy, Record, check_schedule, read_records
from benchmarks.real_system.pinning import CorePlan, load_average, pinned
from benchmarks.real_system.report import RealRun
from benchmarks.real_system.services import ROOT, Deployment

LOAD_GRACE_S = 60.0


def _processes(deployment: Deployment) -> dict[str, int]:
    pids = {name: server.pid for name, server in deployment.servers.items()}
    if deployment.proxy is not None:
        pids["proxy"] = deployment.proxy.pid
    return pids


def _cpu(deployment: Deployment) -> dict[str, float]:
    return {name: tree_cpu_s([pid]) for name, pid in _processes(deployment).items()}


def _wakeups(deployment: Deployment) -> dict[str, int]:
    return {name: tree_wakeups([pid]) for name, pid in _processes(deployment).items()}


@dataclass(frozen=True)
class Measured:
    """A run's records (all of them, warm-up included), CPU seconds and wake-ups per process,
    and the load average at its end."""

    rate_per_s: float
    repeat: int
    records: list[Record]
    cpu_s: dict[str, float]
    load_average: str
    wakeups: dict[str, int] = field(default_factory=dict)

    def answered(self, warmup_s: float = 0.0) -> list[Record]:
        """Records answered with status 200, sent at or after ``warmup_s``."""
        return [r for r in self.records if r.status == 200 and r.scheduled_s >= warmup_s]

    def parts(self) -> list[dict[str, float]]:
        """The answers' timed parts, every answered request (the CPU covers them all)."""
        return [json.loads(r.parts) for r in self.records if r.status == 200]

    def real_run(self, warmup_s: float, policy: LatenessPolicy) -> RealRun:
        kept = self.answered(warmup_s)
        failed = sum(1 for r in self.records if r.status != 200 and r.scheduled_s >= warmup_s)
        return RealRun(
            rate_per_s=self.rate_per_s,
            repeat=self.repeat,
            latencies_s=np.array([r.latency_s for r in kept]),
            failed=failed,
            verdict=check_schedule([r.lateness_s for r in self.records], policy),
        )


def measure_run(
    deployment: Deployment,
    plan: CorePlan,
    rate_per_s: float,
    duration_s: float,
    seed: int,
    out: Path,
    repeat: int = 0,
    path: str = "/work",
) -> Measured:
    """Drive ``path`` at ``rate_per_s`` for ``duration_s``; the records go to ``out``."""
    before, woken = _cpu(deployment), _wakeups(deployment)
    command = [
        sys.executable, "-m", "benchmarks.real_system.load",
        "--url", f"{deployment.entry_url}{path}", "--rate", str(rate_per_s),
        "--duration", str(duration_s), "--seed", str(seed), "--out", str(out),
    ]  # fmt: skip
    subprocess.run(
        pinned(command, plan.load_cores),
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=duration_s + LOAD_GRACE_S,
    )
    after, awake = _cpu(deployment), _wakeups(deployment)
    return Measured(
        rate_per_s=rate_per_s,
        repeat=repeat,
        records=read_records(out),
        cpu_s={name: after[name] - before[name] for name in before},
        load_average=load_average(),
        wakeups={name: awake[name] - woken[name] for name in woken},
    )


def idle_round_trip(
    deployment: Deployment, plan: CorePlan, out: Path, rate_per_s: float = 50.0, pings: int = 200
) -> tuple[float, float, float]:
    """(median round trip of ``/ping`` in seconds, the servers' CPU seconds per ping, their
    event-loop wake-ups per ping).

    Pings at ``rate_per_s`` (a trickle: no ping waits for another) from the load generator,
    so that the client's own cost is the one the real runs pay.
    """
    run = measure_run(deployment, plan, rate_per_s, pings / rate_per_s, 0, out, path="/ping")
    answered = run.answered()
    if not answered:
        raise RuntimeError("no /ping was answered")
    cpu_per_ping = sum(run.cpu_s.values()) / len(answered)
    wakeups_per_ping = sum(run.wakeups.values()) / len(answered)
    return float(np.median([r.latency_s for r in answered])), cpu_per_ping, wakeups_per_ping


def warm_up(deployment: Deployment, requests: int = 50) -> None:
    """A few sequential requests so that first-call costs (imports, pools) are paid."""
    with httpx.Client(base_url=deployment.entry_url, timeout=30.0) as client:
        for _ in range(requests):
            client.get("/work").raise_for_status()
