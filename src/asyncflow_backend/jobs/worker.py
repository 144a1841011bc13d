"""`asyncflow worker`: Dramatiq worker processes that execute runs from the Redis queue."""

import contextlib
import os
from pathlib import Path

AUTOGROUP = Path("/proc/self/autogroup")


def lower_priority(niceness: int, sched_idle: bool) -> None:
    """Make this process (and the processes it starts) `niceness` steps nicer.

    Linux first shares the CPU fairly between sessions (its "autogroups"),
    and only then by nice value within each; so a worker that leads its own
    session, as a service manager or `setsid` starts it, also lowers its
    session's weight, or its nice value would count for nothing against an
    API running in another session.

    With `sched_idle`, the process also takes the SCHED_IDLE policy (Linux
    only): the scheduler hands it the CPU only when no ordinary process wants
    it and takes it back the moment one wakes. Nice alone still lets a
    simulation keep a core for a few milliseconds after the API wakes up,
    several times over in one request, which is what made the API's slowest
    answers slow.
    """
    if niceness > 0:
        os.nice(niceness)
        if os.getsid(0) == os.getpid() and AUTOGROUP.exists():
            with contextlib.suppress(OSError, ValueError):
                current = int(AUTOGROUP.read_text().split()[-1])  # "/autogroup-42 nice 0"
                if current < niceness:
                    AUTOGROUP.write_text(str(niceness))
    if sched_idle and hasattr(os, "SCHED_IDLE"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def run_worker(processes: int | None = None, queue_name: str | None = None) -> int:
    """Run `processes` worker processes (default: one per CPU) until stopped; returns the exit code.

    Each process runs one simulation at a time (one thread: simulations are
    CPU-bound) and fetches one message at a time, so it never holds back a
    run that another idle worker could start. A worker process that dies is
    replaced, and its run delivered again at once (see
    `asyncflow_backend.jobs.supervisor`). SIGTERM or SIGINT stops the
    workers after their current runs. The processes run at a lower CPU
    priority (`worker_nice`, `worker_sched_idle`), inherited from this one,
    so that an API sharing the host answers promptly while they simulate.
    """
    # Read by dramatiq when its worker module is imported, so set before that
    # (the worker processes inherit the environment).
    os.environ.setdefault("dramatiq_queue_prefetch", "1")
    from asyncflow_backend.config.settings import get_settings
    from asyncflow_backend.jobs.supervisor import WorkerSupervisor

    settings = get_settings()
    lower_priority(settings.worker_nice, settings.worker_sched_idle)
    count = processes or os.cpu_count() or 1
    return WorkerSupervisor(settings, queue_name or settings.queue_name, count).run()
