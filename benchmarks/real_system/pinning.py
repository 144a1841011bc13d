"""Which cores the servers and the load generator run on, and how a child is pinned there.

The servers under test get one set of cores and the load generator another, so that the load's
own CPU never takes time from the servers (``taskset``, inherited by every child process). The
plan says which cores it used and the machine's load average, printed on every run: other
processes on the machine can still run on those cores, which is what the load average shows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

LOADAVG = Path("/proc/loadavg")


@dataclass(frozen=True)
class CorePlan:
    """Cores of the servers and of the load generator (disjoint, non-empty)."""

    server_cores: frozenset[int]
    load_cores: frozenset[int]

    def describe(self) -> str:
        return (
            f"servers on cores {sorted(self.server_cores)},"
            f" load generator on cores {sorted(self.load_cores)}"
        )


def plan_cores(available: frozenset[int] | None = None, server_cores: int = 1) -> CorePlan:
    """Give the first ``server_cores`` available cores to the servers, the rest to the load.

    ``available`` defaults to this process's own affinity. ValueError when fewer than
    ``server_cores + 1`` cores are available: the load generator needs a core of its own.
    """
    cores = sorted(available if available is not None else os.sched_getaffinity(0))
    if server_cores < 1 or len(cores) < server_cores + 1:
        raise ValueError(
            f"{len(cores)} core(s) available: need {server_cores} for the servers"
            " and at least one for the load generator"
        )
    return CorePlan(frozenset(cores[:server_cores]), frozenset(cores[server_cores:]))


def pinned(command: list[str], cores: frozenset[int]) -> list[str]:
    """``command`` run under ``taskset``, pinned (with every child it starts) to ``cores``."""
    return ["taskset", "--cpu-list", ",".join(str(core) for core in sorted(cores)), *command]


def affinity(pid: int) -> frozenset[int]:
    """The cores a running process may use."""
    return frozenset(os.sched_getaffinity(pid))


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as /proc/loadavg gives them."""
    return " ".join(LOADAVG.read_text().split()[:3])
