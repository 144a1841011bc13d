"""A run's memory budget: the resident memory a run may add to the process running it.

It is checked between slices of simulated time (each a small fraction of a second
of work), so a run that piles up work in memory, such as retries whose timed-out
attempts keep working, fails early with its reason while its process lives on to
take the next run.
"""

import gc
import os
import resource
import sys

from asyncflow_backend.config.environment import env_name

MB = 2**20


def resident_bytes() -> int:
    """This process's resident set size, in bytes: now, from /proc/self/statm (Linux);
    elsewhere its peak so far (getrusage, in bytes on macOS, KiB on other systems)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def memory_message(limit_mb: int) -> str:
    """The error of a run stopped by its memory budget."""
    return f"used more than its memory budget of {limit_mb} MB ({env_name('max_run_memory_mb')})"


class MemoryBudgetExceeded(Exception):
    """The run's resident memory grew by more than its budget."""

    def __init__(self, limit_mb: int) -> None:
        super().__init__(memory_message(limit_mb))
        self.limit_mb = limit_mb


class MemoryBudget:
    """The resident memory a run may add, counted from when the budget is made.

    Make it just before the run starts and call `check` between slices; the
    growth, not the whole process, is charged, so the code and data a worker
    process holds for every run do not count against one.
    """

    def __init__(self, limit_mb: int) -> None:
        self.limit_mb = limit_mb
        self.baseline = resident_bytes()

    def used_bytes(self) -> int:
        """Resident bytes added since the budget was made (0 if the process shrank)."""
        return max(0, resident_bytes() - self.baseline)

    def check(self) -> None:
        """Raise `MemoryBudgetExceeded` once the run has used more than its budget."""
        if self.used_bytes() > self.limit_mb * MB:
            raise MemoryBudgetExceeded(self.limit_mb)


def release_memory() -> None:
    """After a run stopped by its budget: collect its objects (SimPy's processes and
    events refer to each other in cycles), so the process takes the next run small."""
    gc.collect()
