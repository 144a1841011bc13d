"""How fast `/health` answers while one caller posts large YAML scenarios, and what they cost.

Starts `asyncflow serve` on the embedded setup (SQLite in a temporary
folder, the local pool, the default `ASYNCFLOW_SUBMIT_RATE_LIMIT` unless
`--rate-limit` says otherwise, no API keys, so the caller is its address).
One greedy caller posts a large, valid YAML scenario (the largest topology the
default limits allow: 98 servers, 1,000 steps) to `/api/v1/scenarios/validate`
at `--rate` requests per second, open loop, whatever the answers; meanwhile a
probe reads `/health` every `--probe-interval` seconds. At the end it prints
the probe's p50 / p99 / max round trip, the greedy caller's answers by status,
and the CPU seconds per second spent by the API process and by its child
processes (where large bodies are parsed, if anywhere).

Run it against two source trees to compare them (the API runs whatever
`PYTHONPATH` points at):

    PYTHONPATH=$PWD/src python benchmarks/yaml_health.py [--duration 30] [--rate 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml

ASYNCFLOW = Path(sys.executable).with_name("asyncflow")
TICKS = os.sysconf("SC_CLK_TCK")


def large_scenario(servers: int = 98, steps: int = 10) -> dict[str, Any]:
    """The largest topology within the default limits: 100 nodes, 198 edges, 100 endpoints
    and 1,000 steps, each step with a random variable written out."""
    hop = {"mean": 0.001, "distribution": "exponential"}
    ids = [f"server-{i:03d}" for i in range(servers)]
    edges = [
        {"id": "gen-client", "source": "gen", "target": "client", "latency": hop},
        {"id": "client-lb", "source": "client", "target": "lb", "latency": hop},
    ]
    nodes = []
    for index, sid in enumerate(ids):
        endpoints = 2 if index < 2 else 1  # 100 endpoints in all
        nodes.append(
            {
                "id": sid,
                "server_resources": {"cpu_cores": 2, "ram_mb": 1024},
                "endpoints": [
                    {
                        "endpoint_name": f"/endpoint-{j}",
                        "steps": [_step(k) for k in range(steps)],
                    }
                    for j in range(endpoints)
                ],
            }
        )
        edges.append({"id": f"lb-{sid}", "source": "lb", "target": sid, "latency": hop})
        edges.append({"id": f"{sid}-client", "source": sid, "target": "client", "latency": hop})
    return {
        "rqs_input": {
            "id": "gen",
            "avg_active_users": {"mean": 10, "distribution": "poisson"},
            "avg_request_per_minute_per_user": {"mean": 60},
        },
        "topology_graph": {
            "nodes": {
                "client": {"id": "client"},
                "load_balancer": {"id": "lb", "server_covered": ids},
                "servers": nodes,
            },
            "edges": edges,
        },
        "sim_settings": {"total_simulation_time": 60, "sample_period_s": 0.1},
    }


def _step(k: int) -> dict[str, Any]:
    if k % 2 == 0:
        work = {"cpu_time": {"mean": 0.0001, "distribution": "exponential"}}
        return {"kind": "cpu_bound_operation", "step_operation": work}
    wait = {"io_waiting_time": {"mean": 0.001, "distribution": "exponential"}}
    return {"kind": "io_db", "step_operation": wait}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def children_cpu(pid: int) -> float:
    total = 0.0
    for child in children(pid):
        try:
            total += cpu_seconds(child)
        except OSError:
            continue
    return total


async def wait_until_up(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=2) as client:
        for _ in range(600):
            try:
                if (await client.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("asyncflow serve did not start")


async def greedy(url: str, body: bytes, rate: float, stop: float, codes: Counter[int]) -> None:
    headers = {"content-type": "application/yaml"}
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        pending: set[asyncio.Task[None]] = set()

        async def post() -> None:
            answer = await client.post("/api/v1/scenarios/validate", content=body, headers=headers)
            codes[answer.status_code] += 1

        while time.monotonic() < stop:
            task = asyncio.create_task(post())
            pending.add(task)
            task.add_done_callback(pending.discard)
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*pending, return_exceptions=True)


async def probe(url: str, interval: float, stop: float, round_trips: list[float]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        while time.monotonic() < stop:
            started = time.perf_counter()
            answer = await client.get("/health")
            round_trips.append(time.perf_counter() - started)
            assert answer.status_code == 200, answer.text
            await asyncio.sleep(interval)


async def measure(args: argparse.Namespace, url: str, pid: int, body: bytes) -> None:
    await wait_until_up(url)
    round_trips: list[float] = []
    codes: Counter[int] = Counter()
    api_before, children_before = cpu_seconds(pid), children_cpu(pid)
    started = time.monotonic()
    stop = started + args.duration
    await asyncio.gather(
        greedy(url, body, args.rate, stop, codes),
        probe(url, args.probe_interval, stop, round_trips),
    )
    elapsed = time.monotonic() - started
    api_cpu = (cpu_seconds(pid) - api_before) / elapsed
    child_cpu = (children_cpu(pid) - children_before) / elapsed
    trips = np.array(round_trips) * 1000
    print(f"body: {len(body) / 1024:.0f} KiB of YAML, posted {args.rate:g}/s for {elapsed:.0f} s")
    print(f"greedy caller's answers: {dict(sorted(codes.items()))}")
    p50, p99 = np.percentile(trips, [50, 99])
    print(
        f"/health: {trips.size} reads, p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {trips.max():.1f} ms"
    )
    print(f"CPU: API process {api_cpu:.2f} s/s, its child processes {child_cpu:.2f} s/s")
    print(f"load average: {Path('/proc/loadavg').read_text().strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=2.0, help="Large posts per second.")
    parser.add_argument("--probe-interval", type=float, default=0.05)
    parser.add_argument("--rate-limit", default="120/minute", help="ASYNCFLOW_SUBMIT_RATE_LIMIT")
    args = parser.parse_args()
    body = yaml.safe_dump(large_scenario(), sort_keys=False).encode()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **os.environ,
            "ASYNCFLOW_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/bench.db",
            "ASYNCFLOW_SUBMIT_RATE_LIMIT": args.rate_limit,
        }
        env.pop("ASYNCFLOW_REDIS_URL", None)
        server = subprocess.Popen(
            [str(ASYNCFLOW), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            asyncio.run(measure(args, url, server.pid, body))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
