"""The API's memory and responsiveness when an experiment of many replications is submitted.

Starts the embedded service (`asyncflow serve` on a fresh SQLite file, with
its local worker pool) once per replication count, submits one experiment of
that many replications of a legal scenario of about 890 KB (an open workload
whose `trace` schedule has ~22,400 points; each replication simulates a few
seconds), and prints:

- the growth of the API process's resident memory (VmRSS, from /proc) from
  just before the POST to its peak over the POST and the `--follow` seconds
  after it, while replications run and are planned;
- how long the POST took to answer;
- the slowest `GET /health` over the same window, read every `--probe-every`
  seconds by a separate client (the target is under 100 ms).

The API is stopped if its memory passes `--rss-cap-mb` or the POST takes longer
than `--post-timeout` seconds; the figures then say so.

    python benchmarks/experiment_memory.py [--replications 10 10000] [--follow 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_load import ASYNCFLOW, free_port

TRACE_POINTS = 22_400


def large_scenario(horizon_s: float = 5.0, points: int = TRACE_POINTS) -> dict[str, Any]:
    """A legal scenario of about 890 KB of JSON: one server fed by a long rate trace."""
    step = horizon_s / points
    trace = [
        {"at_s": round(i * step, 6), "rate_per_s": round(20.0 + (i % 7) * 0.5, 3)}
        for i in range(points)
    ]
    latency = {"mean": 0.001, "distribution": "exponential"}
    return {
        "rqs_input": {"id": "gen", "arrival_rate": {"shape": "trace", "points": trace}},
        "topology_graph": {
            "nodes": {
                "client": {"id": "client"},
                "servers": [
                    {
                        "id": "srv",
                        "server_resources": {"cpu_cores": 2, "ram_mb": 1024},
                        "endpoints": [
                            {
                                "endpoint_name": "/api",
                                "steps": [
                                    {
                                        "kind": "cpu_bound_operation",
                                        "step_operation": {"cpu_time": 0.002},
                                    }
                                ],
                            }
                        ],
                    }
                ],
            },
            "edges": [
                {"id": "gen-client", "source": "gen", "target": "client", "latency": latency},
                {"id": "client-srv", "source": "client", "target": "srv", "latency": latency},
                {"id": "srv-client", "source": "srv", "target": "client", "latency": latency},
            ],
        },
        "sim_settings": {"total_simulation_time": horizon_s, "sample_period_s": 0.1},
    }


def rss_mb(pid: int) -> float:
    """Resident memory of process `pid` in MB (Linux /proc), 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class Figures:
    """What one submission cost the API."""

    replications: int
    rss_growth_mb: float
    post_s: float | None
    post_status: int | None
    worst_health_ms: float
    health_reads: int
    note: str = ""


async def measure(
    url: str, pid: int, body: bytes, replications: int, args: argparse.Namespace
) -> Figures:
    """Submit `body` and watch the API's memory and /health until `--follow` s after it answers."""
    baseline = rss_mb(pid)
    peak = baseline
    worst = 0.0
    reads = 0
    done = asyncio.Event()
    note = ""

    async def probe() -> None:
        nonlocal worst, reads, peak
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            while not done.is_set():
                started = time.perf_counter()
                try:
                    await client.get("/health")
                except httpx.HTTPError:
                    # Unanswered until the API was stopped: it counts for as long as it waited.
                    worst = max(worst, time.perf_counter() - started)
                    break
                worst = max(worst, time.perf_counter() - started)
                reads += 1
                peak = max(peak, rss_mb(pid))
                await asyncio.sleep(args.probe_every)

    async def watch_memory() -> None:
        nonlocal peak, note
        while not done.is_set():
            current = rss_mb(pid)
            peak = max(peak, current)
            if current > args.rss_cap_mb:
                elapsed = time.perf_counter() - posted
                note = f"stopped: RSS passed {args.rss_cap_mb:g} MB {elapsed:.0f} s after the POST"
                os.killpg(pid, signal.SIGKILL)
                return
            await asyncio.sleep(0.05)

    posted = time.perf_counter()
    probing = asyncio.create_task(probe())
    watching = asyncio.create_task(watch_memory())
    post_s: float | None = None
    status: int | None = None
    async with httpx.AsyncClient(base_url=url, timeout=args.post_timeout) as client:
        started = time.perf_counter()
        try:
            answer = await client.post(
                "/api/v1/experiments", content=body, headers={"Content-Type": "application/json"}
            )
            post_s = time.perf_counter() - started
            status = answer.status_code
        except httpx.TimeoutException:
            note = note or f"no answer in {args.post_timeout:g} s"
        except httpx.HTTPError as exc:
            note = note or f"the API went away ({type(exc).__name__})"
    if status is not None and args.follow > 0:
        await asyncio.sleep(args.follow)
    done.set()
    await asyncio.gather(probing, watching)
    return Figures(replications, peak - baseline, post_s, status, worst * 1000, reads, note)


def run_once(replications: int, body: bytes, args: argparse.Namespace) -> Figures:
    """A fresh embedded service, one experiment of `replications` replications."""
    with tempfile.TemporaryDirectory(prefix="asyncflow-expmem-") as folder:
        env = {
            **os.environ,
            "ASYNCFLOW_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/asyncflow.db",
            "ASYNCFLOW_SUBMIT_RATE_LIMIT": "",
            "ASYNCFLOW_LOCAL_WORKERS": str(args.local_workers),
        }
        env.pop("ASYNCFLOW_REDIS_URL", None)
        subprocess.run([str(ASYNCFLOW), "db", "upgrade"], env=env, check=True, capture_output=True)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with (Path(folder) / "api.log").open("wb") as log:
            server = subprocess.Popen(
                [str(ASYNCFLOW), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _wait_until_ready(url, server)
            # One small request first, so that lazy imports are not counted.
            httpx.get(f"{url}/api/v1/experiments", timeout=30)
            return asyncio.run(measure(url, server.pid, body, replications, args))
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGTERM)
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait(timeout=10)


def _wait_until_ready(url: str, server: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"asyncflow serve exited with {server.returncode}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the service at {url} did not become ready in {timeout_s} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replications", type=int, nargs="+", default=[10, 10_000])
    parser.add_argument("--follow", type=float, default=15.0, help="Seconds watched after POST.")
    parser.add_argument("--probe-every", type=float, default=0.05, help="Seconds between /health.")
    parser.add_argument("--post-timeout", type=float, default=120.0)
    parser.add_argument("--rss-cap-mb", type=float, default=2048.0)
    parser.add_argument("--local-workers", type=int, default=1)
    args = parser.parse_args()

    scenario = large_scenario()
    print(f"scenario: {len(json.dumps(scenario)) / 1000:.0f} KB of JSON")
    for replications in args.replications:
        document = {"scenario": scenario, "seed": 1, "replications": replications}
        body = json.dumps(document).encode()
        figures = run_once(replications, body, args)
        answered = (
            "no answer"
            if figures.post_s is None
            else f"{figures.post_status} in {figures.post_s * 1000:.0f} ms"
        )
        print(
            f"{replications:>6} replications: API RSS +{figures.rss_growth_mb:.0f} MB, "
            f"POST {answered}, worst /health {figures.worst_health_ms:.1f} ms "
            f"({figures.health_reads} reads)" + (f"  [{figures.note}]" if figures.note else "")
        )
    print(f"load average: {Path('/proc/loadavg').read_text().split()[:3]}")


if __name__ == "__main__":
    main()
