"""Load on the REST service: many clients submitting small scenarios and polling them.

Each client loops for the whole duration: it submits a small scenario
(about 100 simulated requests), then polls the run's status every
`--poll-interval` seconds until the run is finished, then submits again. So
the API sees a steady mix of submissions and status reads, and the workers
a steady stream of runs. At the end it prints accepted runs per second,
finished runs per second, and the p50 / p99 latency of the submit and status
endpoints as the clients measured them (HTTP round trip on loopback). The
clients start one after another over `--ramp-up` seconds, as users arrive,
rather than all in the same millisecond, and every request from the first
on is counted.

The load generator shares the machine with what it measures, so it is kept
light: aiohttp (a fraction of httpx's CPU per request), and its own garbage
collector kept off its startup objects, so that its pauses are not reported
as the service's.

Without `--url`, it starts the service the way it is deployed: a fresh
Postgres database (dropped at the end), a Redis queue of its own, `asyncflow
serve` (with `--api-processes` processes) and `--workers` `asyncflow worker`
processes; with `--url` it loads an already running service instead.

    python benchmarks/api_load.py [--clients 50] [--duration 60] [--workers 2]
    python benchmarks/api_load.py --url http://127.0.0.1:8000 --duration 30

Needs PostgreSQL and Redis on loopback (or --postgres-dsn / --redis-url) when
it starts the service itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
import numpy as np
import redis

ASYNCFLOW = Path(sys.executable).with_name("asyncflow")
FINAL = {"succeeded", "failed", "cancelled"}
WORKER_PRIORITY = {
    "idle": {},
    "nice": {"ASYNCFLOW_WORKER_SCHED_IDLE": "false"},
}
"""Settings of the workers' CPU priority that `--worker-priority` chooses between."""


def small_scenario(index: int) -> dict[str, Any]:
    """About 100 requests to one server over 10 simulated seconds; a fresh seed each time."""
    hop = {"mean": 0.002, "distribution": "exponential"}
    return {
        "rqs_input": {
            "id": "gen",
            "avg_active_users": {"mean": 10, "distribution": "poisson"},
            "avg_request_per_minute_per_user": {"mean": 60},
        },
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
                                        "kind": "initial_parsing",
                                        "step_operation": {"cpu_time": 0.002},
                                    },
                                    {"kind": "io_db", "step_operation": {"io_waiting_time": 0.01}},
                                ],
                            }
                        ],
                    }
                ],
            },
            "edges": [
                {"id": "gen-client", "source": "gen", "target": "client", "latency": hop},
                {"id": "client-srv", "source": "client", "target": "srv", "latency": hop},
                {"id": "srv-client", "source": "srv", "target": "client", "latency": hop},
            ],
        },
        "sim_settings": {"total_simulation_time": 10, "sample_period_s": 0.1},
        "seed": index,
    }


@dataclass
class Tally:
    """What the clients saw."""

    submit_s: list[float] = field(default_factory=list)
    status_s: list[float] = field(default_factory=list)
    submit_codes: Counter[int] = field(default_factory=Counter)
    status_codes: Counter[int] = field(default_factory=Counter)
    finished: Counter[str] = field(default_factory=Counter)
    transport_errors: int = 0


TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError)
"""What a request raises when no answer came back."""


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, its body read whole."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def open_client(url: str, clients: int) -> aiohttp.ClientSession:
    """One connection per client to `url`, kept alive; a minute at most per request."""
    return aiohttp.ClientSession(
        base_url=url,
        connector=aiohttp.TCPConnector(limit=clients),
        timeout=aiohttp.ClientTimeout(total=60),
    )


async def fetch(client: aiohttp.ClientSession, method: str, path: str, **kwargs: Any) -> Answer:
    """One request; raises one of `TRANSPORT_ERRORS` if no answer came back."""
    async with client.request(method, path, **kwargs) as response:
        return Answer(response.status, response.headers, await response.read())


async def client_loop(
    client: aiohttp.ClientSession, number: int, deadline: float, poll_s: float, tally: Tally
) -> None:
    """Submit, poll until finished, repeat until the deadline."""
    sequence = 0
    while time.monotonic() < deadline:
        sequence += 1
        scenario = small_scenario(number * 1_000_000 + sequence)
        started = time.perf_counter()
        try:
            answer = await fetch(client, "POST", "/api/v1/simulations", json=scenario)
        except TRANSPORT_ERRORS:
            tally.transport_errors += 1
            await asyncio.sleep(poll_s)
            continue
        tally.submit_s.append(time.perf_counter() - started)
        tally.submit_codes[answer.status] += 1
        if answer.status != 202:
            await asyncio.sleep(poll_s)
            continue
        await follow(client, answer.headers["location"], deadline, poll_s, tally)


async def follow(
    client: aiohttp.ClientSession, location: str, deadline: float, poll_s: float, tally: Tally
) -> str | None:
    """Poll a run's status every `poll_s` until it is final or the deadline passes.

    Returns the final status, or None if the deadline came first.
    """
    while time.monotonic() < deadline:
        await asyncio.sleep(poll_s)
        started = time.perf_counter()
        try:
            status = await fetch(client, "GET", location)
        except TRANSPORT_ERRORS:
            tally.transport_errors += 1
            continue
        tally.status_s.append(time.perf_counter() - started)
        tally.status_codes[status.status] += 1
        if status.status == 200 and (final := status.json()["status"]) in FINAL:
            tally.finished[final] += 1
            return str(final)
    return None


def keep_collector_off_startup_objects() -> None:
    """Spare the load generator full collections of everything it imported.

    They take a few hundred milliseconds here, during which no answer is
    read; the clients would report that pause as the service's latency.
    """
    gc.collect()
    gc.freeze()


async def staggered(delay_s: float, work: Any) -> Any:
    """`work` (a coroutine) after `delay_s` seconds."""
    await asyncio.sleep(delay_s)
    return await work


async def load(
    url: str, clients: int, duration_s: float, poll_s: float, ramp_up_s: float
) -> tuple[Tally, float]:
    """Run `clients` client loops against `url` for `duration_s`; returns the tally and the time.

    Client n starts n x `ramp_up_s` / `clients` seconds after the first.
    """
    tally = Tally()
    keep_collector_off_startup_objects()
    async with open_client(url, clients) as client:
        started = time.monotonic()
        deadline = started + duration_s
        await asyncio.gather(
            *(
                staggered(n * ramp_up_s / clients, client_loop(client, n, deadline, poll_s, tally))
                for n in range(clients)
            )
        )
        elapsed = time.monotonic() - started
    return tally, elapsed


def _percentile_ms(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)) * 1000, 1) if values else None


def report(tally: Tally, elapsed: float, clients: int, workers: str) -> dict[str, Any]:
    """Print the figures and return them as data."""
    accepted = tally.submit_codes.get(202, 0)
    finished = sum(tally.finished.values())
    figures = {
        "clients": clients,
        "workers": workers,
        "duration_s": round(elapsed, 1),
        "accepted_runs": accepted,
        "accepted_runs_per_s": round(accepted / elapsed, 2),
        "finished_runs": finished,
        "finished_runs_per_s": round(finished / elapsed, 2),
        "finished_by_status": dict(tally.finished),
        "submit_requests": len(tally.submit_s),
        "submit_p50_ms": _percentile_ms(tally.submit_s, 50),
        "submit_p99_ms": _percentile_ms(tally.submit_s, 99),
        "submit_codes": dict(tally.submit_codes),
        "status_requests": len(tally.status_s),
        "status_p50_ms": _percentile_ms(tally.status_s, 50),
        "status_p99_ms": _percentile_ms(tally.status_s, 99),
        "status_codes": dict(tally.status_codes),
        "transport_errors": tally.transport_errors,
    }
    print(f"\n{clients} clients for {elapsed:.1f} s, {workers}")
    print(f"  accepted runs   {accepted:7d}  {figures['accepted_runs_per_s']:8.2f} /s")
    rate = figures["finished_runs_per_s"]
    print(f"  finished runs   {finished:7d}  {rate:8.2f} /s  {dict(tally.finished)}")
    for name in ("submit", "status"):
        print(
            f"  {name:6s} {figures[f'{name}_requests']:7d} requests  "
            f"p50 {figures[f'{name}_p50_ms']} ms  p99 {figures[f'{name}_p99_ms']} ms  "
            f"codes {figures[f'{name}_codes']}"
        )
    print(f"  transport errors {tally.transport_errors}")
    return figures


# --- starting the service --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _admin(dsn: str, statement: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(dsn, timeout=10)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _wait_until_up(url: str, server: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"asyncflow serve exited with {server.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise SystemExit(f"the service at {url} did not become ready in {timeout_s} s")


@contextlib.contextmanager
def service(
    postgres_dsn: str,
    redis_url: str,
    workers: int,
    logs: Path,
    database_name: str | None = None,
    extra_env: dict[str, str] | None = None,
    api_processes: int = 1,
) -> Iterator[str]:
    """A fresh database, a queue, the API and `workers` workers; yields the API's URL.

    The database is `database_name` (default: a random name) on the server of
    `postgres_dsn`; `extra_env` adds ASYNCFLOW_* settings for every process;
    the API runs as `api_processes` processes.
    """
    name = database_name or f"asyncflow_bench_{uuid.uuid4().hex[:12]}"
    queue = name
    base, _, _ = postgres_dsn.rpartition("/")
    database_url = f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)
    env = {
        **os.environ,
        "ASYNCFLOW_DATABASE_URL": database_url,
        "ASYNCFLOW_REDIS_URL": redis_url,
        "ASYNCFLOW_QUEUE_NAME": queue,
        # Every client submits from this one address: no per-client submission limit.
        "ASYNCFLOW_SUBMIT_RATE_LIMIT": "",
        **(extra_env or {}),
    }
    _admin(postgres_dsn, f'CREATE DATABASE "{name}"')
    processes: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run([str(ASYNCFLOW), "db", "upgrade"], env=env, check=True, capture_output=True)
        for i in range(workers):
            processes.append(
                _start(
                    [str(ASYNCFLOW), "worker", "--processes", "1"], env, logs / f"worker-{i}.log"
                )
            )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        serve = [str(ASYNCFLOW), "serve", "--host", "127.0.0.1", "--port", str(port)]
        server = _start([*serve, "--processes", str(api_processes)], env, logs / "api.log")
        processes.append(server)
        _wait_until_up(url, server)
        yield url
    finally:
        for process in reversed(processes):
            _stop(process)
        _admin(postgres_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        client = redis.Redis.from_url(redis_url)
        try:
            keys = list(client.scan_iter(match=f"{queue}:*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="Load this running service instead of starting one.")
    parser.add_argument("--clients", type=int, default=50, help="Concurrent clients.")
    parser.add_argument("--duration", type=float, default=60.0, help="Seconds of load.")
    parser.add_argument(
        "--poll-interval", type=float, default=0.2, help="Seconds between two status reads."
    )
    parser.add_argument(
        "--ramp-up", type=float, default=2.0, help="Seconds over which the clients start."
    )
    parser.add_argument("--workers", type=int, default=2, help="Worker processes to start.")
    parser.add_argument(
        "--api-processes",
        type=int,
        default=2,
        help="Processes of `asyncflow serve` (2, as docker-compose.yml deploys it).",
    )
    parser.add_argument(
        "--worker-priority",
        choices=["idle", "nice"],
        default="idle",
        help="idle: the defaults (nice 10 and SCHED_IDLE); nice: nice 10 only.",
    )
    parser.add_argument(
        "--postgres-dsn",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="Maintenance database of the server where a fresh database is created.",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()

    if args.url:
        tally, elapsed = asyncio.run(
            load(args.url, args.clients, args.duration, args.poll_interval, args.ramp_up)
        )
        figures = report(tally, elapsed, args.clients, "workers of the running service")
    else:
        with (
            tempfile.TemporaryDirectory(prefix="asyncflow-load-") as logs,
            service(
                args.postgres_dsn,
                args.redis_url,
                args.workers,
                Path(logs),
                extra_env=WORKER_PRIORITY[args.worker_priority],
                api_processes=args.api_processes,
            ) as url,
        ):
            shape = (
                f"{args.api_processes} API process(es), "
                f"{args.workers} workers ({args.worker_priority})"
            )
            print(f"service at {url}: {shape}, Postgres and Redis; loading...")
            tally, elapsed = asyncio.run(
                load(url, args.clients, args.duration, args.poll_interval, args.ramp_up)
            )
            figures = report(tally, elapsed, args.clients, shape)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
