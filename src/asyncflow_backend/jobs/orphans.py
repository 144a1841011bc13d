"""Worker processes that end when the process that started them ends, however it ended.

A process killed with SIGKILL cannot stop its children: without this, a
killed `asyncflow serve` would leave its pool processes simulating (and
holding hundreds of megabytes) for nobody, and with them multiprocessing's
resource tracker, which waits for the last of them to close its pipe.
"""

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal this process gets when its parent ends (Linux)."""

WATCH_INTERVAL_S = 1.0


def die_with_parent(parent_pid: int) -> None:
    """End this process (SIGKILL) as soon as `parent_pid`, its parent, ends.

    On Linux the kernel does it (`prctl(PR_SET_PDEATHSIG, SIGKILL)`); if the
    parent ended before that call took effect, the process ends at once.
    Elsewhere a daemon thread polls the parent's id every second.
    """
    if sys.platform.startswith("linux") and _set_parent_death_signal(signal.SIGKILL):
        if os.getppid() != parent_pid:
            os._exit(1)  # the parent ended before the kernel watched for it
        return
    threading.Thread(
        target=_watch_parent, args=(parent_pid,), name="parent-watch", daemon=True
    ).start()


def _set_parent_death_signal(signum: int) -> bool:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0)
    return False


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(WATCH_INTERVAL_S)
    os._exit(1)
