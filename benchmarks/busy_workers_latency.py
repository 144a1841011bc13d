"""How fast the API answers while its workers are busy with CPU-bound runs on the same host.

Starts the deployed shape (`api_load.service`: fresh Postgres database, Redis
queue, `asyncflow serve`, `--workers` workers with `ASYNCFLOW_WORKER_NICE` =
`--worker-nice` and `ASYNCFLOW_WORKER_SCHED_IDLE` = `--worker-sched-idle`),
submits `--long-runs` runs of seconds each so that every worker computes flat
out, then `--clients` clients read a run's status, each
pausing `--interval` seconds between reads, for `--duration` seconds, and it
prints the reads per second and the p50 / p99 / max of their round trips. Run it
with `--worker-nice 0 --worker-sched-idle false` and the defaults to see what lowering
the workers' priority buys the API.

    python benchmarks/busy_workers_latency.py [--worker-nice 10] [--worker-sched-idle true]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_load import service, small_scenario


def long_scenario(index: int) -> dict[str, Any]:
    """`small_scenario` stretched to about 200,000 requests: a minute or so of one core."""
    scenario = small_scenario(index)
    scenario["sim_settings"]["total_simulation_time"] = 20_000
    return scenario


async def probe(
    url: str, long_runs: int, duration_s: float, interval_s: float, clients: int
) -> list[float]:
    """Round trips of status reads while the long runs execute."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        ids = []
        for index in range(long_runs):
            answer = await client.post("/api/v1/simulations", json=long_scenario(index))
            answer.raise_for_status()
            ids.append(answer.json()["id"])
        while (await client.get(f"/api/v1/simulations/{ids[0]}")).json()["status"] != "running":
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)  # every worker busy by now
        times: list[float] = []
        deadline = time.monotonic() + duration_s

        async def reader() -> None:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                status = await client.get(f"/api/v1/simulations/{ids[-1]}")
                times.append(time.perf_counter() - started)
                status.raise_for_status()
                await asyncio.sleep(interval_s)

        await asyncio.gather(*(reader() for _ in range(clients)))
        running = [(await client.get(f"/api/v1/simulations/{i}")).json()["status"] for i in ids]
        print(f"  statuses at the end of the probe: {running}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-nice", type=int, default=10)
    parser.add_argument(
        "--worker-sched-idle", choices=["true", "false"], default="true", help="SCHED_IDLE workers."
    )
    parser.add_argument("--long-runs", type=int, default=16)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=0.05, help="Pause of each reader.")
    parser.add_argument("--clients", type=int, default=1, help="Concurrent readers.")
    parser.add_argument("--postgres-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()

    priority = {
        "ASYNCFLOW_WORKER_NICE": str(args.worker_nice),
        "ASYNCFLOW_WORKER_SCHED_IDLE": args.worker_sched_idle,
    }
    with (
        tempfile.TemporaryDirectory(prefix="asyncflow-busy-") as logs,
        service(args.postgres_dsn, args.redis_url, args.workers, Path(logs), None, priority) as url,
    ):
        print(
            f"service at {url}: {args.workers} workers at nice {args.worker_nice}, "
            f"SCHED_IDLE {args.worker_sched_idle}"
        )
        reads = probe(url, args.long_runs, args.duration, args.interval, args.clients)
        times = np.array(asyncio.run(reads))
    p50, p99 = (float(np.percentile(times, q)) * 1000 for q in (50, 99))
    print(
        f"  {times.size} status reads ({times.size / args.duration:.0f}/s) by {args.clients} "
        f"clients: p50 {p50:.1f} ms  p99 {p99:.1f} ms  "
        f"max {times.max() * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
