"""How a server's CPU per request splits into a cost per request and a cost per loop wake-up.

An event loop (asyncio's ``_run_once``, uvloop's libuv iteration) pays some work once per
iteration, whatever it then runs: the poll, the clock reading, the timers, uvloop's flush of
queued writes. When the loop is busy an iteration serves many ready callbacks, so that work is
shared. Over runs at several loads, the CPU per request c is then linear in the wake-ups per
request w (`cpu.tree_wakeups`):

    c = c_request + c_wakeup x w

`fit_wakeup_cost` finds c_request and c_wakeup by least squares (scipy's ``linregress``). The
harness prints it over all its runs as a diagnostic: the scenario it writes does not use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats


@dataclass(frozen=True)
class WakeupCost:
    """CPU seconds per request and per wake-up, with the fit's r² and number of runs."""

    per_request_s: float
    per_wakeup_s: float
    r_squared: float
    runs: int

    def describe(self) -> str:
        return (
            f"CPU per request = {self.per_request_s * 1e3:.3f} ms"
            f" {self.per_wakeup_s * 1e3:+.3f} ms x wake-ups per request"
            f" (r² {self.r_squared:.2f}, {self.runs} runs)"
        )


def fit_wakeup_cost(
    cpu_per_request_s: Sequence[float], wakeups_per_request: Sequence[float]
) -> WakeupCost:
    """Least-squares line of CPU per request against wake-ups per request, one point per run.

    ValueError with fewer than three runs, or when every run had the same wake-ups (the slope
    is then undetermined).
    """
    if len(cpu_per_request_s) != len(wakeups_per_request):
        raise ValueError("one CPU figure per run and one wake-up figure per run")
    if len(cpu_per_request_s) < 3:
        raise ValueError("a line through fewer than three runs says nothing")
    if max(wakeups_per_request) == min(wakeups_per_request):
        raise ValueError("every run woke the loop as often: the cost per wake-up is undetermined")
    line = stats.linregress(wakeups_per_request, cpu_per_request_s)
    return WakeupCost(
        per_request_s=float(line.intercept),
        per_wakeup_s=float(line.slope),
        r_squared=float(line.rvalue**2),
        runs=len(cpu_per_request_s),
    )
