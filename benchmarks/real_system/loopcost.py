"""How a server's CPU per request splits into a cost per request and a cost per loop wake-up.

An event loop (asyncio's ``_run_once``, uvloop's libuv iteration) that has nothing ready
blocks in its poll and the kernel wakes it for the next event; one that has callbacks ready
goes straight round. Each wake-up costs CPU whatever then runs (the context switch, the
poll's return, the clock, the timers), and a busy loop wakes rarely. Over runs at several
loads, the CPU per request c is then linear in the wake-ups per request w (`cpu.tree_wakeups`):

    c = c_request + c_wakeup x w

`fit_wakeup_cost` finds c_request and c_wakeup by least squares (scipy's ``linregress``). The
harness prints it over all its runs as a diagnostic.

`event_loop_costs` turns a service's measured overhead into the scenario's ``event_loop`` (asked
for with ``run.py --loop-cost``; docs/semantics.md, "Event-loop cost"). The engine charges
``per_wakeup_s`` to a CPU burst that finds its core idle and ``per_callback_s`` to every
burst, and at a low load every burst finds it idle. With B bursts per visit
(`bursts_per_visit`), w wake-ups per visit and the overhead o = c_request + c_wakeup x w at
the calibration load:

    per_wakeup_s = c_wakeup x w / B,    per_callback_s = c_request / B

so that the model's overhead per visit at that load, B x (per_wakeup_s + per_callback_s),
is exactly o (the wake-ups a real loop spends on events that cost no modelled CPU, such as
the timer that ends an ``asyncio.sleep``, are folded into the bursts'). The split of o into
c_request and c_wakeup x w needs a second wake-up level. At the calibration load alone the
idle ``/ping`` gives one (`ping_split`: the framework's work without a burst, at about one
wake-up); a fit over the runs of one more load (`fit_wakeup_cost`) gives another. Without
either the whole overhead is taken as paid per wake-up (c_request = 0); the note says which.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scipy import stats


@dataclass(frozen=True)
class WakeupCost:
    """CPU seconds per request and per wake-up, with the fit's r² and number of runs."""

    per_request_s: float
    per_wakeup_s: float
    r_squared: float
    runs: int
    basis: str = ""
    """Where the line comes from when it is not a fit over runs (then r² and runs are unused)."""

    def describe(self) -> str:
        where = self.basis or f"r² {self.r_squared:.2f}, {self.runs} runs"
        return (
            f"CPU per request = {self.per_request_s * 1e3:.3f} ms"
            f" {self.per_wakeup_s * 1e3:+.3f} ms x wake-ups per request ({where})"
        )


def ping_split(
    overhead_s: float, wakeups_per_visit: float, ping_cpu_s: float, ping_wakeups: float
) -> WakeupCost | None:
    """The line through two kinds of request measured at the calibration load alone: the
    idle ``/ping`` (the framework's work per request and its wake-ups, no burst) and the
    endpoint's overhead beyond its timed bursts with its wake-ups. None when the two woke
    the loop about as often (less than 0.2 wake-ups apart) or the slope is below 0: the
    split is then undetermined.
    """
    apart = wakeups_per_visit - ping_wakeups
    if apart < 0.2:
        return None
    per_wakeup = (overhead_s - ping_cpu_s) / apart
    if per_wakeup < 0:
        return None
    return WakeupCost(
        per_request_s=ping_cpu_s - per_wakeup * ping_wakeups,
        per_wakeup_s=per_wakeup,
        r_squared=float("nan"),
        runs=0,
        basis=f"/ping at {ping_wakeups:.2f} wake-ups and {ping_cpu_s * 1e3:.3f} ms of CPU",
    )


def fit_wakeup_cost(
    cpu_per_request_s: Sequence[float],
    wakeups_per_request: Sequence[float],
    min_runs: int = 3,
) -> WakeupCost:
    """Least-squares line of CPU per request against wake-ups per request, one point per run.

    ValueError with fewer than ``min_runs`` runs (a calibration from two loads of one run each
    passes 2: the line through them), or when every run had the same wake-ups (the slope is
    then undetermined).
    """
    if len(cpu_per_request_s) != len(wakeups_per_request):
        raise ValueError("one CPU figure per run and one wake-up figure per run")
    if len(cpu_per_request_s) < max(min_runs, 2):
        raise ValueError(f"a line through fewer than {max(min_runs, 2)} runs says nothing")
    if max(wakeups_per_request) == min(wakeups_per_request):
        raise ValueError("every run woke the loop as often: the cost per wake-up is undetermined")
    line = stats.linregress(wakeups_per_request, cpu_per_request_s)
    return WakeupCost(
        per_request_s=float(line.intercept),
        per_wakeup_s=float(line.slope),
        r_squared=float(line.rvalue**2),
        runs=len(cpu_per_request_s),
    )


CPU_KINDS = frozenset({"initial_parsing", "cpu_bound_operation"})
"""Step kinds that hold a core: consecutive ones are one burst."""


def bursts_per_visit(steps: Sequence[Mapping[str, Any]]) -> float:
    """Mean CPU bursts (core grants) of one visit to an endpoint of scenario ``steps``.

    A CPU step after a step that gave the core back (I/O, a call) starts a burst; a cache step
    runs its ``hit`` branch with probability ``hit_ratio`` and its ``miss`` branch otherwise.
    Exact in expectation: the bursts and the chance of holding a core are linear in the chance
    of holding one before.
    """

    def walk(branch: Sequence[Mapping[str, Any]], on_core: float) -> tuple[float, float]:
        bursts = 0.0
        for step in branch:
            kind = step["kind"]
            if kind in CPU_KINDS:
                bursts += 1.0 - on_core
                on_core = 1.0
            elif kind == "cache":
                ratio = float(step["hit_ratio"])
                hit, hit_on = walk(step.get("hit", []), on_core)
                miss, miss_on = walk(step.get("miss", []), on_core)
                bursts += ratio * hit + (1 - ratio) * miss
                on_core = ratio * hit_on + (1 - ratio) * miss_on
            else:
                on_core = 0.0
        return bursts, on_core

    return walk(steps, 0.0)[0]


def event_loop_costs(
    overhead_s: float,
    wakeups_per_visit: float,
    bursts: float,
    fit: WakeupCost | None = None,
) -> tuple[dict[str, float], str]:
    """The scenario's ``event_loop`` for a service and a note of where it came from.

    ``overhead_s``: CPU seconds per visit beyond the timed bursts at the calibration load;
    ``wakeups_per_visit`` there; ``bursts``: `bursts_per_visit` of its endpoint; ``fit``: the
    line through the runs at two loads, if measured. A fitted part below 0 (noise) is set to 0
    and the whole overhead given to the other. ValueError without bursts or with an overhead
    below 0.
    """
    if bursts <= 0:
        raise ValueError("an endpoint without a CPU burst has no callback to charge")
    if overhead_s < 0:
        raise ValueError("the overhead per visit is below 0")
    if fit is None:
        per_wakeup = overhead_s
        source = "one load: the whole overhead is taken as paid per wake-up"
    else:
        per_wakeup = min(max(fit.per_wakeup_s * wakeups_per_visit, 0.0), overhead_s)
        source = f"split by {fit.describe()}"
    per_request = overhead_s - per_wakeup
    costs = {"per_wakeup_s": per_wakeup / bursts, "per_callback_s": per_request / bursts}
    note = (
        f"event_loop: per_wakeup_s {costs['per_wakeup_s'] * 1e3:.4f} ms, per_callback_s"
        f" {costs['per_callback_s'] * 1e3:.4f} ms = overhead {overhead_s * 1e3:.3f} ms"
        f" ({wakeups_per_visit:.2f} wake-ups per visit) over {bursts:.2f} bursts per visit;"
        f" {source}"
    )
    return costs, note
