"""`asyncflow worker`: Dramatiq worker processes that execute runs from the Redis queue."""

import contextlib
import os
from pathlib import Path

BROKER = "asyncflow_backend.jobs.broker_entry:broker"
AUTOGROUP = Path("/proc/self/autogroup")


def lower_priority(niceness: int) -> None:
    """Make this process (and the processes it starts) `niceness` steps nicer.

    Linux first shares the CPU fairly between sessions (its "autogroups"),
    and only then by nice value within each; so a worker that leads its own
    session, as a service manager or `setsid` starts it, also lowers its
    session's weight, or its nice value would count for nothing against an
    API running in another session.
    """
    if niceness <= 0:
        return
    os.nice(niceness)
    if os.getsid(0) == os.getpid() and AUTOGROUP.exists():
        with contextlib.suppress(OSError, ValueError):
            current = int(AUTOGROUP.read_text().split()[-1])  # "/autogroup-42 nice 0"
            if current < niceness:
                AUTOGROUP.write_text(str(niceness))


def run_worker(processes: int | None = None, queue_name: str | None = None) -> int:
    """Run `processes` worker processes (default: one per CPU) until stopped; returns the exit code.

    Each process runs one simulation at a time (one thread: simulations are
    CPU-bound) and fetches one message at a time, so it never holds back a
    run that another idle worker could start. A worker that is killed has
    its run delivered again (see `asyncflow_backend.jobs.redis_queue`).
    SIGTERM stops the workers after their current runs. The processes run
    at a lower CPU priority (`worker_nice`), inherited from this one, so that
    an API sharing the host answers promptly while they simulate.
    """
    # Read by dramatiq when its worker module is imported, so set before that.
    os.environ.setdefault("dramatiq_queue_prefetch", "1")
    from dramatiq import cli as dramatiq_cli

    from asyncflow_backend.config.settings import get_settings

    settings = get_settings()
    queue = queue_name or settings.queue_name
    lower_priority(settings.worker_nice)
    count = processes or os.cpu_count() or 1
    parser = dramatiq_cli.make_argument_parser()  # type: ignore[no-untyped-call]
    args = parser.parse_args(
        [BROKER, "--processes", str(count), "--threads", "1", "--queues", queue, "--path"]
    )
    code: int = dramatiq_cli.main(args)  # type: ignore[no-untyped-call]
    return code
