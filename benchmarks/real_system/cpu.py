"""CPU time of server processes, read from /proc, and the CPU each request cost.

``/proc/<pid>/stat`` fields 14 and 15 (utime, stime; proc(5)) count the clock ticks a process
spent in user and kernel mode; ``os.sysconf('SC_CLK_TCK')`` ticks make a second (100 on Linux,
so one reading is good to 10 ms: runs must be long enough for that to vanish in the total).
A gunicorn master's workers are its children: `tree_cpu_s` adds up a process and its live
descendants.

Wake-ups: an event loop's thread sleeps only in its poll (``epoll_wait``) when nothing is
ready, so the voluntary context switches of its main thread (``voluntary_ctxt_switches`` in
``/proc/<pid>/status``) count the loop's wake-ups from an idle wait. Per request they fall as
the loop gets busier and serves more callbacks per wake-up: the quantity a per-wake-up cost is
paid on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")
_UTIME_FIELD = 14  # proc(5) numbers the fields from 1: pid, (comm), state, ppid, ...
_STIME_FIELD = 15
_PPID_FIELD = 4
_FIRST_AFTER_NAME = 3


def parse_stat_cpu_ticks(stat_line: str) -> int:
    """utime + stime, in clock ticks, of one ``/proc/<pid>/stat`` line.

    The command name (field 2) is in parentheses and may hold spaces, so the fields are split
    after its closing parenthesis. ValueError on a line that is not a stat line.
    """
    close = stat_line.rfind(")")
    if close < 0:
        raise ValueError("not a /proc/<pid>/stat line: no command name")
    fields = stat_line[close + 2 :].split()
    return int(fields[_UTIME_FIELD - _FIRST_AFTER_NAME]) + int(
        fields[_STIME_FIELD - _FIRST_AFTER_NAME]
    )


def parse_stat_ppid(stat_line: str) -> int:
    """The parent pid (field 4) of one ``/proc/<pid>/stat`` line."""
    return int(stat_line[stat_line.rfind(")") + 2 :].split()[_PPID_FIELD - _FIRST_AFTER_NAME])


def _stat(pid: int) -> str | None:
    try:
        return (PROC / str(pid) / "stat").read_text()
    except OSError:  # the process ended between the listing and the read
        return None


def descendants(root: int) -> list[int]:
    """``root`` and every live process below it, by walking the parent pids in /proc."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (line := _stat(int(entry.name))) is not None:
            children.setdefault(parse_stat_ppid(line), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_cpu_s(roots: Iterable[int]) -> float:
    """CPU seconds (user + system) used so far by these processes and their descendants."""
    ticks = 0
    for root in roots:
        for pid in descendants(root):
            if (line := _stat(pid)) is not None:
                ticks += parse_stat_cpu_ticks(line)
    return ticks / os.sysconf("SC_CLK_TCK")


def parse_voluntary_switches(status_text: str) -> int:
    """``voluntary_ctxt_switches`` of one ``/proc/<pid>/status`` text; ValueError if absent."""
    for line in status_text.splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    raise ValueError("no voluntary_ctxt_switches line: not a /proc/<pid>/status text")


def tree_wakeups(roots: Iterable[int]) -> int:
    """Voluntary context switches so far of these processes' and their descendants' main threads."""
    total = 0
    for root in roots:
        for pid in descendants(root):
            try:
                total += parse_voluntary_switches((PROC / str(pid) / "status").read_text())
            except OSError:  # ended since the listing
                continue
    return total


def cpu_per_request_s(before_s: float, after_s: float, requests: int) -> float:
    """CPU seconds per request between two readings; ValueError without requests."""
    if requests <= 0:
        raise ValueError("CPU per request needs at least one request")
    if after_s < before_s:
        raise ValueError("the CPU reading went backwards: was a process restarted?")
    return (after_s - before_s) / requests
