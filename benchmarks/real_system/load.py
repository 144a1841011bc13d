"""An open-loop load: a seeded Poisson schedule, a client that keeps it, and a check that it did.

Open loop means a request is sent at its scheduled time whether or not earlier ones have been
answered (unlike a closed loop of N clients, which slows down with the server and hides its
queue). The client runs in a process of its own, pinned to the load core, on uvloop with an
aiohttp session (one connection per request in flight, kept alive for reuse). It sleeps until
``spin_s`` before each send time, then yields to the loop until the time has come, because the
event loop's timers round to the millisecond. Times are read from ``time.perf_counter``, never
from the loop's clock: uvloop's ``loop.time()`` counts whole milliseconds (libuv's cached
``uv_now``). Every send's lateness (actual minus scheduled time) is recorded; `check_schedule`
refuses a run whose lateness shows the client fell behind, since its arrivals were then not
the process the scenario describes.

    python -m benchmarks.real_system.load --url URL --rate R --duration S --seed N --out CSV

writes one CSV row per request (`CSV_FIELDS`) and prints a JSON summary on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

CSV_FIELDS = ("scheduled_s", "lateness_s", "latency_s", "status", "server_s", "parts")
DEFAULT_SPIN_S = 0.001
REQUEST_TIMEOUT_S = 30.0


def poisson_schedule(rate_per_s: float, duration_s: float, seed: int) -> np.ndarray:
    """Send times (seconds from the start, increasing) of a Poisson process on [0, duration_s).

    Gaps are exponential with mean 1 / rate_per_s, drawn from numpy's PCG64 seeded with
    ``seed``: the same arguments give the same schedule on any machine. ValueError on a rate or
    duration that is not > 0.
    """
    if not rate_per_s > 0 or not duration_s > 0:
        raise ValueError("rate_per_s and duration_s must be > 0")
    rng = np.random.default_rng(seed)
    # Draw in blocks so that a long run does not need a Python loop per arrival.
    block = max(16, int(rate_per_s * duration_s * 1.2) + 16)
    times = np.cumsum(rng.exponential(1.0 / rate_per_s, size=block))
    while times[-1] < duration_s:
        more = times[-1] + np.cumsum(rng.exponential(1.0 / rate_per_s, size=block))
        times = np.concatenate([times, more])
    return times[times < duration_s]


@dataclass(frozen=True)
class LatenessPolicy:
    """How late sends may be before a run is refused.

    The p99 of the lateness must be at most ``max_p99_s`` and no more than ``max_share_late``
    of the sends later than ``late_s``. The defaults (2 ms, 1 % later than 5 ms) keep the
    arrival process within two milliseconds of Poisson, under the mean CPU burst of every
    topology (2-4 ms) and a tenth of the response times measured; at 1 ms, one send in a
    hundred behind a single aiohttp callback on the load core refused loads at 100 req/s.
    """

    max_p99_s: float = 0.002
    late_s: float = 0.005
    max_share_late: float = 0.01


@dataclass(frozen=True)
class ScheduleVerdict:
    """Whether the client kept its schedule, with the figures that decided it (seconds)."""

    kept: bool
    sends: int
    mean_s: float
    p99_s: float
    max_s: float
    share_late: float
    reason: str


def check_schedule(
    lateness_s: Sequence[float] | np.ndarray, policy: LatenessPolicy
) -> ScheduleVerdict:
    """Judge a run's lateness (one value per send, seconds) against ``policy``.

    An empty run is refused (nothing was sent, so nothing can be reported).
    """
    late = np.asarray(lateness_s, dtype=float)
    if late.size == 0:
        return ScheduleVerdict(False, 0, math.nan, math.nan, math.nan, math.nan, "no sends")
    p99 = float(np.quantile(late, 0.99))
    share = float(np.mean(late > policy.late_s))
    reasons = []
    if p99 > policy.max_p99_s:
        reasons.append(f"p99 lateness {p99 * 1e3:.2f} ms > {policy.max_p99_s * 1e3:.2f} ms")
    if share > policy.max_share_late:
        reasons.append(
            f"{share:.1%} of sends later than {policy.late_s * 1e3:.1f} ms"
            f" > {policy.max_share_late:.1%}"
        )
    return ScheduleVerdict(
        kept=not reasons,
        sends=int(late.size),
        mean_s=float(late.mean()),
        p99_s=p99,
        max_s=float(late.max()),
        share_late=share,
        reason="; ".join(reasons) or "kept",
    )


@dataclass(frozen=True)
class Record:
    """One request: when it was due, how late it went out, its latency and the server's view."""

    scheduled_s: float
    lateness_s: float
    latency_s: float
    status: int
    server_s: float
    parts: str


async def _drive(url: str, times: np.ndarray, spin_s: float) -> list[Record]:
    import aiohttp

    clock = time.perf_counter
    records: list[Record] = []
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def send(due: float, lateness: float) -> None:
            sent = clock()
            status, server_s, parts = -1, math.nan, "{}"
            try:
                async with session.get(url) as response:
                    body = await response.read()
                    status = response.status
                if status == 200:
                    answer = json.loads(body)
                    server_s = float(answer.get("server_s", math.nan))
                    parts = json.dumps(answer.get("parts", {}), separators=(",", ":"))
            except (aiohttp.ClientError, TimeoutError):
                pass
            records.append(Record(due, lateness, clock() - sent, status, server_s, parts))

        start = clock() + 0.2
        tasks = []
        for due in times:
            target = start + float(due)
            coarse = target - spin_s - clock()
            if coarse > 0:
                await asyncio.sleep(coarse)
            while clock() < target:
                await asyncio.sleep(0)
            tasks.append(asyncio.create_task(send(float(due), clock() - target)))
        if tasks:
            await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT_S)
    return sorted(records, key=lambda record: record.scheduled_s)


def write_records(records: Sequence[Record], path: Path) -> None:
    """One CSV row per request, columns `CSV_FIELDS`, times in seconds."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for record in records:
            writer.writerow(asdict(record))


def read_records(path: Path) -> list[Record]:
    """The rows `write_records` wrote."""
    with path.open(newline="") as handle:
        return [
            Record(
                float(row["scheduled_s"]),
                float(row["lateness_s"]),
                float(row["latency_s"]),
                int(row["status"]),
                float(row["server_s"]),
                row["parts"],
            )
            for row in csv.DictReader(handle)
        ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, required=True, help="seconds of load")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--spin-s", type=float, default=DEFAULT_SPIN_S)
    args = parser.parse_args(argv)

    import uvloop

    times = poisson_schedule(args.rate, args.duration, args.seed)
    # A collection pauses the loop for as long as the heap takes to walk; the run's records
    # are a few MB, so the generator keeps them all and never collects.
    gc.disable()
    records = uvloop.run(_drive(args.url, times, args.spin_s))
    write_records(records, args.out)
    ok = sum(1 for record in records if record.status == 200)
    print(json.dumps({"scheduled": len(times), "answered": len(records), "ok": ok}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
